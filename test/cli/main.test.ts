/**
 * src/cli/main.ts in-process: `main(argv, io)` with real, short `node -e` commands, its output
 * captured and its signals emitted on an EventEmitter of the test's own. Waiting is on events (a
 * progress line, a command's report through a socket), never a sleep.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HELP } from '../../src/cli/args.js';
import { parseDuration } from '../../src/cli/duration.js';
import { type CliIo, FORWARDED, main, version } from '../../src/cli/main.js';
import { alive, leaving, type Mailbox, mailbox, NODE, node, tempDir } from '../support/cli.js';

const posix = process.platform !== 'win32';
const dir = tempDir();
let mb: Mailbox;
beforeAll(async () => {
  mb = await mailbox(dir);
});
afterAll(() => mb.close());

/** A duration as formatDuration writes it. */
const DUR = String.raw`(?:\d+ms|\d+(?:\.\d)?s|\d+m\d+s)`;

interface Run {
  readonly io: CliIo;
  readonly signals: EventEmitter;
  readonly done: Promise<number>;
  stdout(): string;
  stderr(): string;
  /** The `--json` summary: stdout's last line. */
  summary(): Record<string, unknown>;
  /** Resolves with the first stderr line matching `pattern`. */
  line(pattern: RegExp): Promise<string>;
}

/** Runs `main(argv)` with captured output and a signal emitter of its own. */
function cli(...argv: string[]): Run {
  const out: string[] = [];
  const err: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const signals = new EventEmitter();
  const io: CliIo = {
    stdout: { write: (text) => out.push(text) },
    stderr: {
      write: (text) => {
        err.push(text);
        for (const waiter of [...waiters])
          if (waiter.pattern.test(text)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(text);
          }
      },
    },
    signals,
  };
  const done = main(argv, io);
  return {
    io,
    signals,
    done,
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    summary: () => JSON.parse(out.join('').trim().split('\n').at(-1)!),
    line: (pattern) => {
      const seen = err.find((text) => pattern.test(text));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ pattern, resolve }));
    },
  };
}

/** Runs `main(argv)` to the end. */
async function run(...argv: string[]) {
  const c = cli(...argv);
  const code = await c.done;
  // Nothing is left listening once main has answered.
  for (const signal of FORWARDED) expect(c.signals.listenerCount(signal)).toBe(0);
  const json = argv.includes('--json');
  return { code, stdout: c.stdout(), stderr: c.stderr(), summary: json ? c.summary() : undefined };
}

/** A command that exits 1 until it has run `n` times (counted in `file`), then 0. */
function failUntil(n: number, file: string): string[] {
  return node(
    `const fs = require('fs'); const f = process.argv[1];
    const count = (fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8')) : 0) + 1;
    fs.writeFileSync(f, String(count)); process.exit(count < ${n} ? 1 : 0);`,
    file,
  );
}

const forever = node('setInterval(() => {}, 1e6)');

describe('main: --help, --version, usage errors', () => {
  it('prints the help and the version', async () => {
    const help = await run('--help');
    expect(help).toMatchObject({ code: 0, stdout: HELP, stderr: '' });
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const v = await run('-V');
    expect(v).toMatchObject({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it('reads the version from the package.json above it, or says unknown', () => {
    const root = join(dir, 'version');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    const from = pathToFileURL(join(root, 'a', 'b', 'cli.js'));
    expect(version(from)).toBe('unknown');
    writeFileSync(join(root, 'package.json'), '{"name":"asyncbackoff","version":"9.8.7"}');
    expect(version(from)).toBe('9.8.7');
    writeFileSync(join(root, 'a', 'package.json'), '{"name":"another","version":"1.0.0"}');
    expect(version(from)).toBe('9.8.7');
  });

  it('refuses a bad command line with 125 and the synopsis, running nothing', async () => {
    for (const argv of [
      ['--bogus', 'true'],
      ['-n', '2'],
      ['-t', '5', 'true'],
      ['-d', '0.4ms', 'true'],
      ['-n', '2147483648', 'true'],
    ]) {
      const o = await run(...argv);
      expect(o.code, argv.join(' ')).toBe(125);
      expect(o.stdout).toBe('');
      expect(o.stderr).toMatch(
        /^asyncbackoff: .+\nUsage: asyncbackoff \[options\] \[--\] <command> \[args\.\.\.\]\nTry 'asyncbackoff --help' for more information\.\n$/,
      );
    }
    expect((await run('-n', '2')).stderr).toMatch(/^asyncbackoff: missing the command to run\n/);
  });

  it('reports a failure of its own with 125 and the stack, and never rejects', async () => {
    for (const thrown of [new Error('EPIPE, say'), 'EPIPE']) {
      const err: string[] = [];
      const io: CliIo = {
        stdout: {
          write: () => {
            throw thrown;
          },
        },
        stderr: { write: (text) => err.push(text) },
        signals: new EventEmitter(),
      };
      await expect(main(['--help'], io)).resolves.toBe(125);
      expect(err.join('')).toMatch(
        typeof thrown === 'string'
          ? /^asyncbackoff: EPIPE\n$/
          : /^asyncbackoff: Error: EPIPE, say\n {4}at /,
      );
    }
  });

  it('stops with 125 (internal-error) when a progress line cannot be written', async () => {
    const err: string[] = [];
    let writes = 0;
    const out: string[] = [];
    const io: CliIo = {
      stdout: { write: (text) => out.push(text) },
      stderr: {
        write: (text) => {
          if (++writes === 1) throw new Error('stderr is gone');
          err.push(text);
        },
      },
      signals: new EventEmitter(),
    };
    const argv = ['-n', '3', '-p', '0', '--json', ...node('process.exit(1)')];
    await expect(main(argv, io)).resolves.toBe(125);
    expect(err.join('')).toMatch(/^asyncbackoff: Error: stderr is gone\n {4}at /);
    expect(JSON.parse(out.join(''))).toMatchObject({
      ok: false,
      exitCode: 125,
      attempts: 1,
      reason: 'internal-error',
    });
  });

  it("uses the process's own streams by default", async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await expect(main(['--version'])).resolves.toBe(0);
      expect(write).toHaveBeenCalledWith(`${version()}\n`);
    } finally {
      write.mockRestore();
    }
  });
});

describe('main: running the command', () => {
  it('succeeds at once, silently', async () => {
    const o = await run('--json', '--', NODE, '-e', '');
    expect(o.code).toBe(0);
    expect(o.stderr).toBe('');
    expect(o.summary).toEqual({
      ok: true,
      exitCode: 0,
      attempts: 1,
      elapsedMs: expect.any(Number),
      timeouts: 0,
      reason: 'success',
    });
  });

  it('retries failures until the command succeeds, saying so', async () => {
    const counter = join(dir, 'until-3');
    const o = await run('-p', '10ms', '-n', '3', '--json', ...failUntil(3, counter));
    expect(o.code).toBe(0);
    expect(readFileSync(counter, 'utf8')).toBe('3');
    expect(o.summary).toMatchObject({ ok: true, attempts: 3, reason: 'success' });
    const lines = o.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      new RegExp(`^asyncbackoff: attempt 1/3 failed \\(exit 1\\) after ${DUR}; next in 10ms$`),
    );
    expect(lines[1]).toMatch(
      /^asyncbackoff: attempt 2\/3 failed \(exit 1\) after .+; next in 10ms$/,
    );
    expect(lines[2]).toMatch(
      new RegExp(`^asyncbackoff: attempt 3/3 succeeded after ${DUR} \\(3 attempts in ${DUR}\\)$`),
    );
  });

  it('gives up after --max-tries with the last exit code; --quiet says nothing', async () => {
    const loud = await run('-n', '2', '-p', '0', '--json', ...node('process.exit(3)'));
    expect(loud.code).toBe(3);
    expect(loud.summary).toMatchObject({
      ok: false,
      exitCode: 3,
      attempts: 2,
      reason: 'max-tries',
    });
    expect(loud.stderr).toMatch(
      new RegExp(
        `^asyncbackoff: attempt 1/2 failed \\(exit 3\\) after ${DUR}; retrying now\n` +
          `asyncbackoff: attempt 2/2 failed \\(exit 3\\) after ${DUR}; giving up after 2 attempts\n$`,
      ),
    );
    const quiet = await run('-n', '2', '-p', '0', '-q', ...node('process.exit(3)'));
    expect(quiet).toEqual({ code: 3, stdout: '', stderr: '', summary: undefined });
  });

  it('retries only the --retry-on codes, and none of the --retry-except ones', async () => {
    const [retried, stopped, excluded] = await Promise.all([
      run('-n', '2', '-p', '0', '--retry-on', '1,3', '--json', ...node('process.exit(3)')),
      run('-n', '5', '-p', '0', '--retry-on', '1', '--json', ...node('process.exit(2)')),
      run('-n', '5', '-p', '0', '--retry-except', '2', '--json', ...node('process.exit(2)')),
    ]);
    expect(retried.summary).toMatchObject({ exitCode: 3, attempts: 2, reason: 'max-tries' });
    for (const o of [stopped, excluded]) {
      expect(o.code).toBe(2);
      expect(o.summary).toMatchObject({ exitCode: 2, attempts: 1, reason: 'not-retriable' });
      expect(o.stderr).toMatch(
        new RegExp(
          `^asyncbackoff: attempt 1/5 failed \\(exit 2\\) after ${DUR}; exit code 2 is not retried\n$`,
        ),
      );
    }
  });

  it('reports a command killed by a signal as 128 + n', async () => {
    const o = await run('-n', '1', ...node("process.kill(process.pid, 'SIGKILL')"));
    expect(o.code).toBe(137);
    expect(o.stderr).toMatch(/^asyncbackoff: attempt 1\/1 failed \(killed by SIGKILL\) after /);
  });

  it('exits 127 for a command that is not found, without retrying', async () => {
    const o = await run('-n', '3', '-p', '0', '--json', 'asyncbackoff-no-such-command', '-x');
    expect(o.code).toBe(127);
    expect(o.stderr).toBe(
      "asyncbackoff: cannot run 'asyncbackoff-no-such-command': command not found\n",
    );
    expect(o.summary).toMatchObject({
      ok: false,
      exitCode: 127,
      attempts: 1,
      reason: 'spawn-error',
    });
  });

  it('times attempts out: the group is stopped, the attempt retried, 124 at the end', async () => {
    const o = await run(
      '-t',
      '100ms',
      '-n',
      '2',
      '-p',
      '0',
      '--grace',
      '50ms',
      '--json',
      ...forever,
    );
    expect(o.code).toBe(124);
    expect(o.summary).toMatchObject({
      exitCode: 124,
      attempts: 2,
      timeouts: 2,
      reason: 'max-tries',
    });
    expect(o.stderr).toBe(
      'asyncbackoff: attempt 1/2 timed out after 100ms; retrying now\n' +
        'asyncbackoff: attempt 2/2 timed out after 100ms; giving up after 2 attempts\n',
    );
  });

  it('exits 124 on the deadline, stopping the running command', async () => {
    const o = await run('-d', '150ms', '--grace', '50ms', '--json', ...forever);
    expect(o.code).toBe(124);
    expect(o.summary).toMatchObject({ exitCode: 124, attempts: 1, reason: 'deadline' });
    // The attempt's error is the deadline's own.
    expect(o.stderr).toMatch(
      new RegExp(
        `^asyncbackoff: attempt 1 failed \\(DeadlineExceededError: .*\\) after ${DUR}; deadline of 150ms reached after 1 attempt\n$`,
      ),
    );
  });

  it('exits 124 at once when the deadline leaves no time for the next attempt', async () => {
    const o = await run('-d', '20s', '-p', '30s', '--json', ...node('process.exit(1)'));
    expect(o.code).toBe(124);
    expect(o.summary).toMatchObject({ attempts: 1, reason: 'deadline' });
    expect(o.summary?.elapsedMs as number).toBeLessThan(20_000);
    expect(o.stderr).toMatch(
      new RegExp(
        `^asyncbackoff: attempt 1 failed \\(exit 1\\) after ${DUR}; the next attempt would start past the deadline of 20s; giving up after 1 attempt\n$`,
      ),
    );
  });

  it('exits 124 without running the command on a zero deadline (the deadline has passed)', async () => {
    const marker = join(dir, 'zero-deadline-ran');
    const touch = node(`require('fs').writeFileSync(process.argv[1], 'ran')`, marker);
    const o = await run('-d', '0', '--json', ...touch);
    expect(o.code).toBe(124);
    expect(o.summary).toMatchObject({ ok: false, exitCode: 124, attempts: 0, reason: 'deadline' });
    expect(o.stderr).toBe('asyncbackoff: deadline of 0ms reached after 0 attempts\n');
    expect(existsSync(marker)).toBe(false);
  });

  it.runIf(posix)('stops what the command leaves running, keeping its exit status', async () => {
    const o = await run(
      '-n',
      '1',
      '--grace',
      '50ms',
      ...node(
        leaving(
          5,
          `process.on('SIGTERM', () => {}); ${mb.report('process.pid')}
          process.stdout.write('ready'); setInterval(() => {}, 1e6);`,
        ),
      ),
    );
    expect(o.code).toBe(5);
    expect(o.stderr).toMatch(
      /^asyncbackoff: attempt 1\/1: the command left processes running; stopping them\n/,
    );
    expect(alive(Number(await mb.next()))).toBe(false);
  });
});

describe.runIf(posix)('main: signals', () => {
  it('forwards a signal to the command, stops retrying and exits with its status', async () => {
    // The command exits 7 on SIGTERM; a second signal is forwarded too, and changes nothing.
    const c = cli(
      '--grace',
      '10s',
      '--json',
      ...node(
        `process.on('SIGTERM', () => process.exit(7)); process.on('SIGINT', () => {});
        ${mb.report('process.pid')} setInterval(() => {}, 1e6);`,
      ),
    );
    await mb.next();
    c.signals.emit('SIGINT');
    c.signals.emit('SIGTERM');
    expect(await c.done).toBe(7);
    expect(c.summary()).toMatchObject({
      ok: false,
      exitCode: 7,
      attempts: 1,
      reason: 'interrupted',
    });
    expect(c.stderr()).toBe('asyncbackoff: received SIGINT; stopping\n');
    expect(c.signals.listenerCount('SIGTERM')).toBe(0);
  });

  it.each(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'])(
    'forwards %s: no retry, and the exit status is 128 + n without a running command',
    async (signal) => {
      const c = cli('-p', '30s', '--json', ...node('process.exit(1)'));
      await c.line(/next in 30s\n$/);
      c.signals.emit(signal);
      const code = 128 + (os.constants.signals as Record<string, number>)[signal]!;
      expect(await c.done).toBe(code);
      expect(c.summary()).toMatchObject({ exitCode: code, attempts: 1, reason: 'interrupted' });
      expect(c.stderr()).toMatch(new RegExp(`\nasyncbackoff: received ${signal}; stopping\n$`));
    },
  );

  it('exits 128 + n on a signal during a pause', async () => {
    const c = cli('-p', '30s', '--json', ...node('process.exit(1)'));
    await c.line(/next in 30s\n$/);
    c.signals.emit('SIGHUP');
    expect(await c.done).toBe(129);
    expect(c.summary()).toMatchObject({ exitCode: 129, attempts: 1, reason: 'interrupted' });
    expect(c.stderr()).toMatch(/\nasyncbackoff: received SIGHUP; stopping\n$/);
  });
});

describe('main: edges', () => {
  it('reports a thrown undefined or null as such, still with 125', async () => {
    for (const thrown of [undefined, null]) {
      const err: string[] = [];
      const io: CliIo = {
        stdout: {
          write: () => {
            throw thrown;
          },
        },
        stderr: { write: (text) => err.push(text) },
        signals: new EventEmitter(),
      };
      await expect(main(['--help'], io)).resolves.toBe(125);
      expect(err.join('')).toBe(`asyncbackoff: ${String(thrown)}\n`);
    }
  });

  it('prefers the package.json right above the file to the one two levels up', () => {
    const root = join(dir, 'version-near');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    writeFileSync(join(root, 'package.json'), '{"name":"asyncbackoff","version":"2.2.2"}');
    writeFileSync(join(root, 'a', 'package.json'), '{"name":"asyncbackoff","version":"1.1.1"}');
    expect(version(pathToFileURL(join(root, 'a', 'b', 'cli.js')))).toBe('1.1.1');
  });

  it('exits 126 for a command that cannot even be spawned (a NUL byte), not 125', async () => {
    const o = await run('-n', '3', '-p', '0', '--json', 'a\0b');
    expect(o.code).toBe(126);
    expect(o.stderr).toMatch(/^asyncbackoff: cannot run 'a\0b': .+\n$/);
    expect(o.summary).toMatchObject({ exitCode: 126, attempts: 1, reason: 'spawn-error' });
  });

  it('times each attempt from its own start, and the whole run from the first', async () => {
    // A clock far from 0, so that a sum of two readings cannot pass for a difference.
    const now = performance.now.bind(performance);
    const spy = vi.spyOn(performance, 'now').mockImplementation(() => now() + 3_600_000);
    try {
      const o = await run('-p', '0', '--json', ...failUntil(2, join(dir, 'timed-2')));
      expect(o.code).toBe(0);
      const elapsed = o.summary?.elapsedMs as number;
      const durations = [...o.stderr.matchAll(/(?:after|in) (\d[\d.hms]*)/g)].map((m) =>
        parseDuration(m[1]!),
      );
      // attempt 1 failed after X; attempt 2 succeeded after Y (2 attempts in Z)
      expect(durations).toHaveLength(3);
      // formatDuration rounds to a tenth of a second above 1s.
      for (const ms of durations) expect(ms).toBeLessThanOrEqual(elapsed + 50);
    } finally {
      spy.mockRestore();
    }
  });
});

describe.runIf(posix)('main: signals, edges', () => {
  it('takes a signal heard when no command could be started, exiting 128 + n', async () => {
    // The spawn fails synchronously, so no process group exists when the signal comes.
    const c = cli('--json', 'a\0b');
    expect(() => c.signals.emit('SIGINT')).not.toThrow();
    expect(await c.done).toBe(130);
    expect(c.summary()).toMatchObject({ exitCode: 130, reason: 'interrupted' });
    expect(c.stderr()).toBe('asyncbackoff: received SIGINT; stopping\n');
  });

  it('passes a forwarded signal on as it came, not as a SIGTERM besides', async () => {
    // The command ignores SIGINT and would exit 9 on SIGTERM: only SIGKILL after --grace ends it.
    const c = cli(
      '--grace',
      '200ms',
      ...node(
        `process.on('SIGINT', () => {}); process.on('SIGTERM', () => process.exit(9));
        ${mb.report('process.pid')} setInterval(() => {}, 1e6);`,
      ),
    );
    await mb.next();
    c.signals.emit('SIGINT');
    expect(await c.done).toBe(137);
  });

  it('does not send a SIGTERM twice: a forwarded one after a timeout is not repeated', async () => {
    const counter = join(dir, 'sigterms');
    const c = cli(
      '-t',
      '1s',
      '-n',
      '1',
      '--grace',
      '1s',
      ...node(
        `const fs = require('fs'); let n = 0;
        process.on('SIGTERM', () => {
          fs.writeFileSync(process.argv[1], String(++n));
          if (n === 1) { ${mb.report("'term'")} }
        });
        setInterval(() => {}, 1e6);`,
        counter,
      ),
    );
    expect(await mb.next()).toBe('term');
    c.signals.emit('SIGTERM');
    expect(await c.done).toBe(124);
    expect(readFileSync(counter, 'utf8')).toBe('1');
  });
});
