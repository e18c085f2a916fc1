/**
 * The `asyncbackoff` CLI end to end: real child processes, real signals, real exit statuses.
 *
 * The CLI runs from source (`node --import tsx src/cli/bin.ts`), the commands it retries are
 * `node -e` scripts. Nothing here sleeps to wait: every step waits for an event (a line the
 * command prints, the CLI's exit).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/bin.ts');
const NODE = process.execPath;
const dir = mkdtempSync(join(tmpdir(), 'asyncbackoff-cli-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The `--json` summary: the last stdout line, parsed. */
  readonly summary: Record<string, unknown>;
}

interface Running {
  readonly process: ChildProcess;
  /** Resolves with the first stdout line matching `pattern` (the command's output passes through). */
  line(pattern: RegExp): Promise<RegExpExecArray>;
  /** Resolves when stderr has a line matching `pattern`. */
  errLine(pattern: RegExp): Promise<RegExpExecArray>;
  readonly done: Promise<Outcome>;
}

/** Starts the CLI with `args`. */
function cli(...args: string[]): Running {
  const child = spawn(NODE, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters = { out: [] as Waiter[], err: [] as Waiter[] };
  type Waiter = { pattern: RegExp; resolve: (m: RegExpExecArray) => void };
  const lines = { out: [] as string[], err: [] as string[] };
  const feed = (kind: 'out' | 'err', line: string) => {
    lines[kind].push(line);
    for (const waiter of [...waiters[kind]]) {
      const match = waiter.pattern.exec(line);
      if (match) {
        waiters[kind].splice(waiters[kind].indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdout += `${line}\n`;
    feed('out', line);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr += `${line}\n`;
    feed('err', line);
  });
  const done = new Promise<Outcome>((resolve) => {
    child.on('close', (code, signal) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      let summary: Record<string, unknown> = {};
      try {
        summary = JSON.parse(last);
      } catch {}
      resolve({ code, signal, stdout, stderr, summary });
    });
  });
  const wait = (kind: 'out' | 'err') => (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      for (const line of lines[kind]) {
        const match = pattern.exec(line);
        if (match) return resolve(match);
      }
      waiters[kind].push({ pattern, resolve });
      void done.then((o) =>
        reject(
          new Error(`CLI exited (${o.code}) before printing ${pattern}:\n${o.stdout}${o.stderr}`),
        ),
      );
    });
  return { process: child, line: wait('out'), errLine: wait('err'), done };
}

/** Runs the CLI to the end. */
const run = (...args: string[]) => cli(...args).done;

/**
 * Whether `pid` is a live process. A zombie counts as dead: an orphan re-parented to a PID 1
 * that does not reap (as in many containers) stays one, but it no longer runs.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ESRCH');
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // gone meanwhile, or no /proc (macOS): kill() succeeded, assume alive
  }
}

/** A command that exits 1 until it has run `n` times (counted in `file`), then 0. */
function failUntil(n: number, file: string): string[] {
  const script = `const fs = require('fs'); const f = process.argv[1];
    const count = (fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8')) : 0) + 1;
    fs.writeFileSync(f, String(count)); process.exit(count < ${n} ? 1 : 0);`;
  return [NODE, '-e', script, file];
}

/**
 * A command that starts a grandchild, prints "pids <child> <grandchild>" and then runs forever.
 * With `ignoreTerm`, both ignore SIGTERM, so only SIGKILL stops them.
 */
function forever(ignoreTerm: boolean): string[] {
  const trap = ignoreTerm ? "process.on('SIGTERM', () => {});" : '';
  const grandchild = `${trap} console.log('ready'); setInterval(() => {}, 1e6);`;
  const script = `${trap}
    const g = require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}], { stdio: ['ignore', 'pipe', 'inherit'] });
    g.stdout.once('data', () => console.log('pids', process.pid, g.pid));
    setInterval(() => {}, 1e6);`;
  return [NODE, '-e', script];
}

describe('asyncbackoff CLI', () => {
  it('retries a failing command until it succeeds', async () => {
    const counter = join(dir, 'until-3');
    const o = await run(
      '--pause',
      '10ms',
      '--max-tries',
      '5',
      '--json',
      '--',
      ...failUntil(3, counter),
    );
    expect(o.code).toBe(0);
    expect(readFileSync(counter, 'utf8')).toBe('3');
    expect(o.summary).toMatchObject({
      ok: true,
      exitCode: 0,
      attempts: 3,
      timeouts: 0,
      reason: 'success',
    });
    expect(o.summary.elapsedMs).toEqual(expect.any(Number));
    expect(o.stderr).toMatch(
      /^asyncbackoff: attempt 1\/5 failed \(exit 1\) after \d+(ms|\.\ds|s); next in 10ms$/m,
    );
    expect(o.stderr).toMatch(
      /^asyncbackoff: attempt 2\/5 failed \(exit 1\) after .*; next in 10ms$/m,
    );
    expect(o.stderr).toMatch(
      /^asyncbackoff: attempt 3\/5 succeeded after .* \(3 attempts in .*\)$/m,
    );
  });

  it('exits with the last exit code when out of tries; --quiet prints nothing', async () => {
    const o = await run(
      '-n',
      '2',
      '-p',
      '0',
      '--quiet',
      '--json',
      '--',
      NODE,
      '-e',
      'process.exit(3)',
    );
    expect(o.code).toBe(3);
    expect(o.stderr).toBe('');
    expect(o.summary).toMatchObject({ ok: false, exitCode: 3, attempts: 2, reason: 'max-tries' });
  });

  it('retries only the --retry-on codes, and stops at once on the others', async () => {
    const [retried, stopped, excluded] = await Promise.all([
      run('-n', '2', '-p', '0', '--retry-on', '1,3', '--json', '--', NODE, '-e', 'process.exit(3)'),
      run('-n', '5', '-p', '0', '--retry-on', '1', '--json', '--', NODE, '-e', 'process.exit(2)'),
      run(
        '-n',
        '5',
        '-p',
        '0',
        '--retry-except',
        '2',
        '--json',
        '--',
        NODE,
        '-e',
        'process.exit(2)',
      ),
    ]);
    expect(retried.summary).toMatchObject({ exitCode: 3, attempts: 2, reason: 'max-tries' });
    for (const o of [stopped, excluded]) {
      expect(o.code).toBe(2);
      expect(o.summary).toMatchObject({ exitCode: 2, attempts: 1, reason: 'not-retriable' });
      expect(o.stderr).toMatch(
        /attempt 1\/5 failed \(exit 2\) after .*; exit code 2 is not retried/,
      );
    }
  });

  it('reports a command killed by a signal as 128 + n', async () => {
    const o = await run(
      '-n',
      '1',
      '--json',
      '--',
      NODE,
      '-e',
      "process.kill(process.pid, 'SIGKILL')",
    );
    expect(o.code).toBe(137);
    expect(o.stderr).toMatch(/attempt 1\/1 failed \(killed by SIGKILL\)/);
  });

  it('exits 127 for a missing command and 126 for one it cannot execute, without retrying', async () => {
    const script = join(dir, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n');
    chmodSync(script, 0o644);
    const [missing, denied] = await Promise.all([
      run('-n', '3', '-p', '0', '--json', '--', 'asyncbackoff-no-such-command'),
      run('-n', '3', '-p', '0', '--json', '--', script),
    ]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain(
      "cannot run 'asyncbackoff-no-such-command': command not found",
    );
    expect(missing.summary).toMatchObject({ attempts: 1, reason: 'spawn-error' });
    expect(denied.code).toBe(126);
    expect(denied.stderr).toContain('permission denied');
    expect(denied.summary).toMatchObject({ attempts: 1, reason: 'spawn-error' });
  });

  it('kills the whole process group on an attempt timeout: SIGTERM, then SIGKILL after --grace', async () => {
    const c = cli('-t', '1s', '-n', '1', '--grace', '200ms', '--json', '--', ...forever(true));
    const [, child, grandchild] = (await c.line(/^pids (\d+) (\d+)$/)).map(Number);
    expect(alive(child!) && alive(grandchild!)).toBe(true);
    const o = await c.done;
    expect(o.code).toBe(124);
    expect(o.summary).toMatchObject({ ok: false, exitCode: 124, attempts: 1, timeouts: 1 });
    expect(o.stderr).toMatch(/attempt 1\/1 timed out after 1s; giving up after 1 attempt$/m);
    expect(alive(child!)).toBe(false);
    expect(alive(grandchild!)).toBe(false);
  });

  it('starts the next attempt only once the timed-out one is dead', async () => {
    // Each attempt prints whether the previous attempt's process still runs.
    const file = join(dir, 'previous-pid');
    const script = `const fs = require('fs'); process.on('SIGTERM', () => {});
      let previous = 'none';
      try { const pid = Number(fs.readFileSync(${JSON.stringify(file)}, 'utf8'));
        try { process.kill(pid, 0); previous = 'alive'; } catch { previous = 'dead'; } } catch {}
      fs.writeFileSync(${JSON.stringify(file)}, String(process.pid));
      console.log('previous ' + previous); setInterval(() => {}, 1e6);`;
    const o = await run(
      '-t',
      '800ms',
      '-n',
      '2',
      '-p',
      '0',
      '--grace',
      '100ms',
      '--',
      NODE,
      '-e',
      script,
    );
    expect(o.code).toBe(124);
    expect(o.stdout).toBe('previous none\nprevious dead\n');
    expect(o.stderr).toMatch(/attempt 1\/2 timed out after 800ms; retrying now/);
  });

  it('stops what an attempt leaves running before the next attempt, and exits without waiting for it', async () => {
    // The command of the issue: a background job that ignores SIGTERM, and the shell exits 1.
    // Each attempt prints "bg<attempt> <pid of the job>".
    const counter = join(dir, 'leftover-count');
    const script = `n=$(cat "$1" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$1"
      (trap "" TERM; exec sleep 99) & echo "bg$n $!"; exit 1`;
    const started = performance.now();
    const c = cli(
      '-n',
      '2',
      '-p',
      '0',
      '--grace',
      '300ms',
      '--json',
      'sh',
      '-c',
      script,
      'sh',
      counter,
    );
    const first = Number((await c.line(/^bg1 (\d+)$/))[1]);
    const second = Number((await c.line(/^bg2 (\d+)$/))[1]);
    // The second attempt started only once the first one's job was gone.
    expect(alive(first)).toBe(false);
    // `close` comes once every writer of the CLI's stdout is gone, as `$(asyncbackoff ...)` waits:
    // the job holds it until it is killed, so this is well before its 99 s.
    const o = await c.done;
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(alive(second)).toBe(false);
    expect(o.code).toBe(1);
    expect(o.summary).toMatchObject({ exitCode: 1, attempts: 2, reason: 'max-tries' });
    expect(o.stderr).toMatch(
      /^asyncbackoff: attempt 1\/2: the command left processes running; stopping them$/m,
    );
    expect(o.stderr).toMatch(
      /^asyncbackoff: attempt 2\/2: the command left processes running; stopping them$/m,
    );
  });

  it('stops a job left behind by a command that succeeded, and keeps its exit status 0', async () => {
    const c = cli(
      '--grace',
      '200ms',
      '--json',
      '--',
      'sh',
      '-c',
      '(trap "" TERM; exec sleep 99) & echo "bg $!"',
    );
    const job = Number((await c.line(/^bg (\d+)$/))[1]);
    const o = await c.done;
    expect(o.code).toBe(0);
    expect(o.summary).toMatchObject({ ok: true, attempts: 1, reason: 'success' });
    expect(alive(job)).toBe(false);
  });

  it('sends a left-behind job SIGTERM first, and SIGKILL only when it outlives --grace', async () => {
    // The job traps SIGTERM, reports it and exits: it never needs the SIGKILL 10 s later.
    const job = join(dir, 'term-job.sh');
    writeFileSync(
      job,
      `trap 'echo "job got TERM"; exit 0' TERM; echo "job $$"; while :; do sleep 0.05; done\n`,
    );
    const started = performance.now();
    const c = cli('--grace', '10s', 'sh', '-c', 'sh "$1" & sleep 0.2; exit 0', 'sh', job);
    await c.line(/^job (\d+)$/);
    const o = await c.done;
    expect(o.code).toBe(0);
    expect(o.stdout).toMatch(/^job got TERM$/m);
    expect(performance.now() - started).toBeLessThan(8_000);
  });

  it('exits 124 on the deadline and stops the running command', async () => {
    const c = cli('--deadline', '1s', '-p', '0', '--json', '--', ...forever(false));
    const [, child, grandchild] = (await c.line(/^pids (\d+) (\d+)$/)).map(Number);
    const o = await c.done;
    expect(o.code).toBe(124);
    expect(o.summary).toMatchObject({ ok: false, exitCode: 124, attempts: 1, reason: 'deadline' });
    expect(o.stderr).toMatch(/deadline of 1s reached after 1 attempt$/m);
    expect(alive(child!)).toBe(false);
    expect(alive(grandchild!)).toBe(false);
  });

  it('exits 124 when the deadline leaves no time for another attempt', async () => {
    const o = await run(
      '--deadline',
      '2s',
      '--pause',
      '5s',
      '--json',
      '--',
      NODE,
      '-e',
      'process.exit(1)',
    );
    expect(o.code).toBe(124);
    expect(o.summary).toMatchObject({ attempts: 1, reason: 'deadline' });
    expect(o.stderr).toMatch(
      /attempt 1 failed \(exit 1\) after .*; the next attempt would start past the deadline of 2s; giving up after 1 attempt$/m,
    );
    expect(o.summary.elapsedMs as number).toBeLessThan(2000);
  });

  it('forwards SIGQUIT to the command as timeout(1) does: it does not outlive asyncbackoff', async () => {
    const script = `process.on('SIGQUIT', () => {
        console.log('child got SIGQUIT');
        process.exit(3);
      });
      console.log('ready ' + process.pid); setInterval(() => {}, 1e6);`;
    const c = cli('--grace', '10s', '--json', '--', NODE, '-e', script);
    const [, child] = (await c.line(/^ready (\d+)$/)).map(Number);
    c.process.kill('SIGQUIT');
    await c.line(/^child got SIGQUIT$/);
    const o = await c.done;
    expect(o.code).toBe(3);
    expect(o.summary).toMatchObject({ exitCode: 3, attempts: 1, reason: 'interrupted' });
    expect(o.stderr).toMatch(/received SIGQUIT; stopping/);
    expect(alive(child!)).toBe(false);
  });

  it('forwards SIGTERM to the command, stops retrying and exits with its status', async () => {
    const script = `process.on('SIGTERM', () => {
        console.log('child got SIGTERM');
        process.removeAllListeners('SIGTERM');
        process.kill(process.pid, 'SIGTERM');
      });
      console.log('ready'); setInterval(() => {}, 1e6);`;
    const c = cli('--grace', '10s', '--json', '--', NODE, '-e', script);
    await c.line(/^ready$/);
    const sent = performance.now();
    c.process.kill('SIGTERM');
    await c.line(/^child got SIGTERM$/);
    const o = await c.done;
    expect(performance.now() - sent).toBeLessThan(3000); // well before --grace
    expect(o.code).toBe(143);
    expect(o.summary).toMatchObject({
      ok: false,
      exitCode: 143,
      attempts: 1,
      reason: 'interrupted',
    });
    expect(o.stderr).toMatch(/received SIGTERM; stopping/);
  });

  it('exits 130 on SIGINT during a pause', async () => {
    const c = cli('--pause', '30s', '--json', '--', NODE, '-e', 'process.exit(1)');
    await c.errLine(/next in 30s$/);
    c.process.kill('SIGINT');
    const o = await c.done;
    expect(o.code).toBe(130);
    expect(o.summary).toMatchObject({ exitCode: 130, attempts: 1, reason: 'interrupted' });
  });

  it('rejects bad command lines with exit 125 and a usage message, running nothing', async () => {
    // Every rule has a unit test (test/cli/args.test.ts); these check the exit status and output.
    const marker = join(dir, 'usage-ran');
    const touch = [NODE, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`];
    const cases: [string[], RegExp][] = [
      [['--bogus', '--', ...touch], /^asyncbackoff: unknown option '--bogus'$/m],
      [['--pause', '5sec', '--', ...touch], /--pause: '5sec' is not a duration/],
      [['--deadline=-5s', '--', ...touch], /--deadline/],
      [['--max-tries', '0', ...touch], /--max-tries must be a whole number/],
      // A bare number is neither silently milliseconds nor seconds.
      [
        ['-t', '5', ...touch],
        /^asyncbackoff: --attempt-timeout: '5' needs a unit: 5s \(5000ms\) or 5ms$/m,
      ],
      // The old spelling names the new one.
      [
        ['--no-retry-on', '2', ...touch],
        /^asyncbackoff: --no-retry-on was renamed: use --retry-except <codes>$/m,
      ],
      [['-n', '2', '-n', '3', ...touch], /^asyncbackoff: --max-tries given more than once$/m],
      [['-n', '2'], /^asyncbackoff: missing the command to run$/m],
    ];
    const outcomes = await Promise.all(cases.map(([args]) => run(...args)));
    for (const [i, o] of outcomes.entries()) {
      const [args, message] = cases[i]!;
      expect(o.code, args.join(' ')).toBe(125);
      expect(o.stderr, args.join(' ')).toMatch(message);
      expect(o.stderr).toMatch(
        /^asyncbackoff: .+\nUsage: asyncbackoff \[options\] \[--\] <command> \[args\.\.\.\]\nTry 'asyncbackoff --help' for more information\.\n$/,
      );
      expect(o.stdout).toBe('');
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('runs the command that follows the options without --, its own flags untouched', async () => {
    const o = await run(
      '-n',
      '2',
      '-p',
      '0',
      '--json',
      NODE,
      '-e',
      'console.log(JSON.stringify(process.argv.slice(1))); process.exit(3)',
      '--',
      '-n',
      '--json',
    );
    expect(o.code).toBe(3);
    expect(o.stdout.split('\n').slice(0, 2)).toEqual(['["-n","--json"]', '["-n","--json"]']);
    expect(o.summary).toMatchObject({ exitCode: 3, attempts: 2, reason: 'max-tries' });
  });

  it('prints --help and --version', async () => {
    const [help, version] = await Promise.all([run('--help'), run('--version')]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: asyncbackoff [options] [--] <command> [args...]');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`${pkg.version}\n`);
  });
});
