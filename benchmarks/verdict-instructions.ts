/**
 * Instructions per verdict, counted by valgrind's callgrind: the verdicts scenario
 * (verdicts.bench.ts) in a figure the machine's load does not move.
 *
 * Run: `npx tsx benchmarks/verdict-instructions.ts [--young] [--node 24]` (needs `valgrind` and a built
 * `dist/`: `npm run build`; about 10 minutes a mode). Not part of `npm run bench`.
 *
 * Each row of the scenario (the same rows, from verdict-rows.ts) runs in a process of its own under
 * `node --single-threaded`, ROUNDS times: N executions started from an `fs.stat` callback (the poll
 * phase), a forced collection (as in verdicts.bench.ts; with `--young` none, as in precision.bench.ts,
 * so that the pending executions are still in the young generation when the verdicts run and every
 * scavenge among them copies them), then every bound passes and the verdicts run in the timers phase
 * (and the check phase, for entries that come due while the expiry runs). Only those two phases
 * are counted (`--toggle-collect` on libuv's `uv__run_timers` and `uv__run_check`): the verdicts,
 * the caller's handlers, the aborts after them, and the collections they cause. The figure is
 * (count(N2) − count(N1)) / (ROUNDS × (N2 − N1)): start-up and the compiler's first work cancel out.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, stat } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { callgrindCount, nodeFromArgv } from './callgrind.js';
import { makeStart, ROWS, type RowKey } from './verdict-rows.js';

const N1 = 2_000;
const N2 = 10_000;
const ROUNDS = 4;

// --- child mode: ROUNDS rounds of n verdicts of one row ---------------------------------------------

async function child(row: RowKey, n: number, young: boolean): Promise<void> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const start = await makeStart(row);
  const script = fileURLToPath(import.meta.url);
  for (let round = 0; round < ROUNDS; round++) {
    // The starts run in a poll-phase callback, outside the counted phases.
    const settled = await new Promise<Promise<void>>((started) =>
      stat(script, () => {
        let left = n;
        const all = new Promise<void>((resolve, reject) => {
          for (let i = 0; i < n; i++)
            start().then(
              () => reject(new Error(`${ROWS[row]}: an execution fulfilled`)),
              () => {
                if (--left === 0) resolve();
              },
            );
        });
        if (!young) gc();
        started(all);
      }),
    );
    await settled;
  }
}

// --- parent mode ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1] as RowKey, Number(argv[2]), argv[3] === 'young');
  const young = argv.includes('--young');
  const node = nodeFromArgv(argv);
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  const script = fileURLToPath(import.meta.url);
  const dir = mkdtempSync(join(tmpdir(), 'asyncbackoff-callgrind-'));
  const toggles = ['--toggle-collect=uv__run_timers', '--toggle-collect=uv__run_check'];
  const figures = new Map<RowKey, number>();
  try {
    for (const row of Object.keys(ROWS) as RowKey[]) {
      const count = (n: number) =>
        callgrindCount(
          node,
          script,
          ['--child', row, String(n), young ? 'young' : 'collected'],
          dir,
          toggles,
        );
      const perVerdict = (count(N2) - count(N1)) / (ROUNDS * (N2 - N1));
      figures.set(row, perVerdict);
      console.error(`${row}: ${Math.round(perVerdict)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const floor = figures.get('floor')!;
  const executions = young ? 'pending executions still young' : 'pending executions collected';
  console.log(`# Instructions per verdict (callgrind, ${executions}), Node ${version}\n`);
  console.log('| row | instructions/verdict | x context floor |');
  console.log('| --- | ---: | ---: |');
  for (const [row, perVerdict] of figures)
    console.log(
      `| ${ROWS[row]} | ${Math.round(perVerdict).toLocaleString('en-US')} | ${(perVerdict / floor).toFixed(2)}x |`,
    );
}

await main();
