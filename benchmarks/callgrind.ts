/**
 * Counting instructions with valgrind's callgrind, for instructions.ts and
 * verdict-instructions.ts: which node runs, and the count of one child process.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The node binary: this one, or with `--node <major>` the one `npx -y node@<major>` brings. */
export function nodeFromArgv(argv: readonly string[]): string {
  const index = argv.indexOf('--node');
  if (index === -1) return process.execPath;
  return execFileSync('npx', ['-y', `node@${argv[index + 1]}`, '-p', 'process.execPath'], {
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .at(-1)!;
}

/**
 * Instructions callgrind collected in `node --single-threaded --import tsx script ...args` (no
 * background compiler or GC threads, so the count repeats). `valgrindArgs` go before the node
 * binary, e.g. `--toggle-collect=<function>` to count only inside it.
 */
export function callgrindCount(
  node: string,
  script: string,
  args: readonly string[],
  dir: string,
  valgrindArgs: readonly string[] = [],
): number {
  const run = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${join(dir, 'callgrind.out')}`,
      ...valgrindArgs,
      node,
      '--single-threaded',
      '--import',
      'tsx',
      script,
      ...args,
    ],
    { encoding: 'utf8', env: process.env, maxBuffer: 64 * 1024 * 1024 },
  );
  const match = /Collected : (\d+)/.exec(run.stderr);
  if (run.status !== 0 || match === null)
    throw new Error(
      `valgrind failed for ${args.join(' ')} (${run.status}):\n${run.stderr.slice(-2000)}`,
    );
  return Number(match[1]);
}
