/**
 * The `asyncbackoff` CLI end to end: real child processes, real signals, real exit statuses.
 *
 * The CLI runs from source (`node --import tsx src/cli/main.ts`), the commands it retries are
 * `node -e` scripts. Nothing here sleeps to wait: every step waits for an event (a line the
 * command prints, the CLI's exit).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
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
        '--no-retry-on',
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
      /attempt 1 failed \(exit 1\) after .*; deadline of 2s reached after 1 attempt$/m,
    );
    expect(o.summary.elapsedMs as number).toBeLessThan(2000);
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

  it('rejects bad command lines with exit 2 and a usage message', async () => {
    // Every rule has a unit test (test/cli/args.test.ts); these check the exit status and output.
    const cases = [
      ['--bogus', '--', 'true'],
      ['--pause', '5sec', '--', 'true'],
      ['--deadline=-5s', '--', 'true'],
      ['--max-tries', '0', '--', 'true'],
      ['--max-tries', '3', 'true'],
    ];
    const outcomes = await Promise.all(cases.map((args) => run(...args)));
    for (const [i, o] of outcomes.entries()) {
      expect(o.code, cases[i]!.join(' ')).toBe(2);
      expect(o.stderr).toMatch(
        /^asyncbackoff: .+\nUsage: asyncbackoff \[options\] -- <command> \[args\.\.\.\]\n/,
      );
      expect(o.stdout).toBe('');
    }
  });

  it('prints --help and --version', async () => {
    const [help, version] = await Promise.all([run('--help'), run('--version')]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: asyncbackoff [options] -- <command> [args...]');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`${pkg.version}\n`);
  });
});
