/**
 * src/cli/child.ts with real, short `node -e` commands: exit statuses, spawn errors, stopping a
 * process group (SIGTERM, then SIGKILL after the grace period) and members left behind.
 * POSIX: the process-group tests are skipped on Windows.
 */
import type { ChildProcess } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { fstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CommandExitError,
  describeStatus,
  exitCodeOf,
  groupAlive,
  ProcessGroup,
  runCommand,
  SpawnError,
  signalNumber,
} from '../../src/cli/child.js';
import { alive, leaving, type Mailbox, mailbox, NODE, tempDir } from '../support/cli.js';

const posix = process.platform !== 'win32';
const dir = tempDir();
let mb: Mailbox;
beforeAll(async () => {
  mb = await mailbox(dir);
});
afterAll(() => mb.close());

/** What `fn` throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('did not throw');
}

/**
 * A script that ignores SIGTERM, reports its pid, and runs until killed; `ready` also writes to
 * its stdout then (for {@link leaving}).
 */
const stubborn = (ready = false) =>
  `process.on('SIGTERM', () => {}); ${mb.report('process.pid')}
  ${ready ? "process.stdout.write('ready');" : ''} setInterval(() => {}, 1e6);`;

describe('exit statuses', () => {
  it('reads an exit code or a signal as a shell does', () => {
    expect(signalNumber('SIGTERM')).toBe(15);
    expect(signalNumber('SIGNOTONE' as NodeJS.Signals)).toBe(0);
    expect(exitCodeOf({ code: 3, signal: null })).toBe(3);
    expect(exitCodeOf({ code: null, signal: 'SIGKILL' })).toBe(137);
    expect(describeStatus({ code: 1, signal: null })).toBe('exit 1');
    expect(describeStatus({ code: null, signal: 'SIGTERM' })).toBe('killed by SIGTERM');
    const error = new CommandExitError({ code: null, signal: 'SIGINT' });
    expect(error).toMatchObject({ name: 'CommandExitError', exitCode: 130 });
    expect(error.message).toBe('the command failed (killed by SIGINT)');
  });
});

describe.runIf(process.platform === 'linux')('groupAlive, on Linux', () => {
  it('counts the live members of the group in /proc, not zombies nor vanished entries', async () => {
    // A real group, so that kill(-pgid, 0) succeeds; its members are read from a /proc of ours.
    const group = new ProcessGroup(NODE, ['-e', stubborn()], 100);
    const pgid = Number(await mb.next());
    expect(groupAlive(pgid)).toBe(true);
    const proc = join(dir, 'proc');
    const stat = (pid: number, comm: string, state: string) => {
      mkdirSync(join(proc, String(pid)), { recursive: true });
      writeFileSync(join(proc, String(pid), 'stat'), `${pid} (${comm}) ${state} 1 ${pgid} 0 0\n`);
    };
    mkdirSync(join(proc, 'self'), { recursive: true });
    mkdirSync(join(proc, '99'), { recursive: true }); // exited between readdir and read: no stat
    stat(100, 'node', 'S'); // another group's
    writeFileSync(join(proc, '100', 'stat'), `100 (node) S 1 ${pgid + 1} 0 0\n`);
    stat(101, 'a) Z (b', 'Z'); // a zombie whose name holds ') '
    stat(102, 'x', 'X');
    expect(groupAlive(pgid, proc)).toBe(false);
    stat(103, 'sh -c) S 1', 'R');
    expect(groupAlive(pgid, proc)).toBe(true);
    // Without /proc, a group kill() finds is alive.
    expect(groupAlive(pgid, join(dir, 'no-proc'))).toBe(true);
    await group.terminate('SIGKILL', 100);
    expect(groupAlive(pgid)).toBe(false);
  });
});

describe('ProcessGroup', () => {
  it('fulfils with the exit code once the command is gone', async () => {
    const group = new ProcessGroup(NODE, ['-e', 'process.exit(3)'], 100);
    expect(group.pid).toEqual(expect.any(Number));
    expect(group.hasExited).toBe(false);
    await expect(group.gone).resolves.toEqual({ code: 3, signal: null });
    expect(group.hasExited).toBe(true);
    expect(group.isStopping).toBe(false);
    await group.settled();
  });

  it('rejects with a SpawnError (127) for a command that is not found, and stops nothing', async () => {
    const group = new ProcessGroup('asyncbackoff-no-such-command', [], 100);
    expect(group.pid).toBeUndefined();
    const error = await group.exited.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ENOENT', exitCode: 127 });
    expect((error as Error).message).toBe(
      "cannot run 'asyncbackoff-no-such-command': command not found",
    );
    await expect(group.gone).rejects.toBe(error);
    await group.terminate('SIGTERM', 100);
    await group.settled();
  });

  it.runIf(posix)('rejects with a SpawnError (126) for a file it cannot execute', async () => {
    const script = join(dir, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const denied = await new ProcessGroup(script, [], 100).exited.catch((e: unknown) => e);
    expect(denied).toMatchObject({ code: 'EACCES', exitCode: 126 });
    expect((denied as Error).message).toBe(`cannot run '${script}': permission denied`);
  });

  it.runIf(posix)('throws a SpawnError (126) when spawn() throws: a path through a file', () => {
    const path = join(dir, 'not-executable.sh', 'x');
    expect(thrown(() => new ProcessGroup(path, [], 100))).toMatchObject({
      name: 'SpawnError',
      code: 'ENOTDIR',
      exitCode: 126,
      message: `cannot run '${path}': spawn ENOTDIR`,
    });
  });

  it('throws a SpawnError (126) for a command spawn() refuses outright (a NUL byte)', () => {
    const error = thrown(() => new ProcessGroup('a\0b', [], 100));
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', exitCode: 126 });
    expect((error as SpawnError).cause).toBeInstanceOf(TypeError);
  });

  it('names an error without a code EUNKNOWN (126)', () => {
    const error = new SpawnError('cmd', new Error('boom'));
    expect(error).toMatchObject({ code: 'EUNKNOWN', exitCode: 126 });
    expect(error.message).toBe("cannot run 'cmd': boom");
  });

  it.runIf(posix)(
    'stops the group with the signal given; a repeated call sends nothing more',
    async () => {
      const group = new ProcessGroup(NODE, ['-e', 'setInterval(() => {}, 1e6)'], 100);
      const stopped = group.terminate('SIGTERM', 5000);
      expect(group.isStopping).toBe(true);
      expect(group.terminate('SIGTERM', 5000)).toBe(stopped);
      await stopped;
      expect(group.hasExited).toBe(true);
      await expect(group.exited).resolves.toEqual({ code: null, signal: 'SIGTERM' });
      expect(groupAlive(group.pid!)).toBe(false);
    },
  );

  it.runIf(posix)('sends SIGKILL when the group outlives the grace period', async () => {
    const group = new ProcessGroup(NODE, ['-e', stubborn()], 100);
    expect(Number(await mb.next())).toBe(group.pid);
    await group.terminate('SIGTERM', 50);
    await expect(group.exited).resolves.toEqual({ code: null, signal: 'SIGKILL' });
    expect(alive(group.pid!)).toBe(false);
  });

  it.runIf(posix)(
    'stops members the leader left running, SIGKILL after the grace period',
    async () => {
      // The leader starts a grandchild that ignores SIGTERM, and exits 4 once it is ready.
      const leader = leaving(4, stubborn(true));
      const onLeftovers = vi.fn();
      const group = new ProcessGroup(NODE, ['-e', leader], 50, onLeftovers);
      const grandchild = Number(await mb.next());
      // The grandchild is the one that reported: it runs, with SIGTERM ignored.
      expect(grandchild).not.toBe(group.pid);
      await expect(group.gone).resolves.toEqual({ code: 4, signal: null });
      expect(onLeftovers).toHaveBeenCalledTimes(1);
      expect(group.isStopping).toBe(true);
      expect(alive(grandchild)).toBe(false);
      expect(groupAlive(group.pid!)).toBe(false);
    },
  );
});

describe('runCommand', () => {
  const options = (signal: AbortSignal) => ({
    signal,
    grace: 100,
    stopSignal: () => 'SIGTERM' as const,
  });

  it('fulfils with the status and tells onSpawn the group', async () => {
    const onSpawn = vi.fn();
    const status = await runCommand(NODE, ['-e', 'process.exit(0)'], {
      ...options(new AbortController().signal),
      onSpawn,
    });
    expect(status).toEqual({ code: 0, signal: null });
    expect(onSpawn).toHaveBeenCalledWith(expect.any(ProcessGroup));
  });

  it('starts nothing when the signal is already aborted', async () => {
    const onSpawn = vi.fn();
    const reason = new Error('stop');
    await expect(
      runCommand(NODE, ['-e', ''], { ...options(AbortSignal.abort(reason)), onSpawn }),
    ).rejects.toBe(reason);
    expect(onSpawn).not.toHaveBeenCalled();
  });

  it('rejects with the SpawnError of a command that cannot start', async () => {
    const signal = new AbortController().signal;
    await expect(runCommand('a\0b', [], options(signal))).rejects.toBeInstanceOf(SpawnError);
    await expect(runCommand('asyncbackoff-no-such-command', [], options(signal))).rejects.toThrow(
      'command not found',
    );
  });

  it.runIf(posix)(
    'on abort, stops the group with stopSignal(reason) and rejects once it is gone',
    async () => {
      const controller = new AbortController();
      const reason = new Error('interrupted');
      const stopSignal = vi.fn(() => 'SIGINT' as const);
      let group: ProcessGroup | undefined;
      const running = runCommand(NODE, ['-e', stubborn()], {
        ...options(controller.signal),
        stopSignal,
        onSpawn: (g) => {
          group = g;
        },
      });
      await mb.next();
      controller.abort(reason);
      await expect(running).rejects.toBe(reason);
      expect(stopSignal).toHaveBeenCalledWith(reason);
      // The script ignores SIGTERM only: SIGINT ends it.
      await expect(group!.exited).resolves.toEqual({ code: null, signal: 'SIGINT' });
      expect(groupAlive(group!.pid!)).toBe(false);
    },
  );
});

describe('groupAlive: kill() first, then /proc', () => {
  const errno = (code: string) => Object.assign(new Error(`kill ${code}`), { code });
  /** A /proc of ours whose entries `names` are each a live (R) member of group `pgid`. */
  const procWith = (label: string, pgid: number, ...names: string[]) => {
    const proc = join(dir, label);
    mkdirSync(proc, { recursive: true });
    for (const name of names) {
      mkdirSync(join(proc, name), { recursive: true });
      writeFileSync(join(proc, name, 'stat'), `${name} (sh) R 1 ${pgid} 0 0\n`);
    }
    return proc;
  };

  it('takes a failed kill() at its word: ESRCH is gone, EPERM (another user) is alive', () => {
    const proc = procWith('proc-kill', 4242, '4243');
    const kill = vi.spyOn(process, 'kill');
    try {
      kill.mockImplementation(() => {
        throw errno('ESRCH');
      });
      expect(groupAlive(4242, proc)).toBe(false);
      kill.mockImplementation(() => {
        throw errno('EPERM');
      });
      // Alive without a look at /proc (there is none here).
      expect(groupAlive(4242, join(dir, 'no-proc-here'))).toBe(true);
      expect(kill).toHaveBeenCalledWith(-4242, 0);
    } finally {
      kill.mockRestore();
    }
  });

  it.runIf(process.platform === 'linux')(
    'reads only the /proc entries named by a digit, 0 to 9',
    () => {
      const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
      try {
        // Entries that are no pid, each with a stat file naming a live member of the group.
        expect(groupAlive(4242, procWith('proc-names', 4242, 'self', '.1', ':1'))).toBe(false);
        expect(groupAlive(4242, procWith('proc-0', 4242, '0'))).toBe(true);
        expect(groupAlive(4242, procWith('proc-9', 4242, '9'))).toBe(true);
      } finally {
        kill.mockRestore();
      }
    },
  );

  it('believes kill() without reading /proc where there is no Linux /proc', () => {
    const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    Object.defineProperty(process, 'platform', { ...platform, value: 'darwin' });
    try {
      // A /proc that lists no member: only Linux's would be read.
      expect(groupAlive(4242, procWith('proc-none', 4242))).toBe(true);
    } finally {
      Object.defineProperty(process, 'platform', platform);
      kill.mockRestore();
    }
  });
});

describe('ProcessGroup: starting and stopping', () => {
  it.runIf(posix)('lets the command inherit this process’s stdout and stderr', async () => {
    const ids = (fd: number) => {
      const { dev, ino } = fstatSync(fd);
      return `${dev}:${ino}`;
    };
    const script = `const { fstatSync } = require('fs');
      const ids = (fd) => { const { dev, ino } = fstatSync(fd); return dev + ':' + ino; };
      ${mb.report("ids(1) + ' ' + ids(2)")}`;
    const group = new ProcessGroup(NODE, ['-e', script], 100);
    expect(await mb.next()).toBe(`${ids(1)} ${ids(2)}`);
    await expect(group.gone).resolves.toEqual({ code: 0, signal: null });
  });

  it('ignores an error event after a successful start (a failed kill() on Windows)', async () => {
    const group = new ProcessGroup(NODE, ['-e', 'process.exit(5)'], 100);
    const child = (group as unknown as { child: ChildProcess }).child;
    child.emit('error', Object.assign(new Error('kill EPERM'), { code: 'EPERM' }));
    await expect(group.exited).resolves.toEqual({ code: 5, signal: null });
    await expect(group.gone).resolves.toEqual({ code: 5, signal: null });
  });

  it('settled() fulfils only once the command has exited', async () => {
    const group = new ProcessGroup(NODE, ['-e', stubborn()], 100);
    await mb.next();
    const exitedWhenSettled = group.settled().then(() => group.hasExited);
    void group.terminate('SIGKILL', 100);
    await expect(exitedWhenSettled).resolves.toBe(true);
  });

  it.runIf(posix)('sends a repeated signal once, and each different signal', async () => {
    // Counts the SIGINTs it gets; SIGTERM makes it exit with that count.
    const script = `let n = 0;
      process.on('SIGINT', () => { n++; ${mb.report("'SIGINT'")} });
      process.on('SIGTERM', () => process.exit(n));
      ${mb.report('process.pid')} setInterval(() => {}, 1e6);`;
    const group = new ProcessGroup(NODE, ['-e', script], 100);
    await mb.next();
    void group.terminate('SIGINT', 5000);
    expect(await mb.next()).toBe('SIGINT');
    void group.terminate('SIGINT', 5000);
    await group.terminate('SIGTERM', 5000);
    await expect(group.exited).resolves.toEqual({ code: 1, signal: null });
  });

  it('sends no signal to a command that never started, and its terminate() fulfils at once', async () => {
    const group = new ProcessGroup('asyncbackoff-no-such-command', [], 100);
    await expect(group.exited).rejects.toBeInstanceOf(SpawnError);
    const kill = vi.spyOn(process, 'kill');
    try {
      const stopped = group.terminate('SIGTERM', 60_000).then(() => 'stopped');
      const next = new Promise((resolve) => setImmediate(() => resolve('pending')));
      await expect(Promise.race([stopped, next])).resolves.toBe('stopped');
      expect(kill).not.toHaveBeenCalled();
    } finally {
      kill.mockRestore();
    }
  });

  it.runIf(posix)('sends no SIGKILL when the group is gone within the grace period', async () => {
    const group = new ProcessGroup(NODE, ['-e', 'setInterval(() => {}, 1e6)'], 100);
    const kill = vi.spyOn(process, 'kill');
    try {
      await group.terminate('SIGTERM', 2000);
      const signals = kill.mock.calls.filter(([, signal]) => signal !== 0);
      expect(signals).toEqual([[-group.pid!, 'SIGTERM']]);
    } finally {
      kill.mockRestore();
    }
  });
});

describe.runIf(posix)('ProcessGroup: members left behind', () => {
  it('does not count members that outlive a stop as left behind', async () => {
    // The leader dies of SIGINT; its grandchild ignores SIGINT and SIGTERM, so SIGKILL ends it.
    const grandchild = `process.on('SIGINT', () => {}); process.on('SIGTERM', () => {});
      ${mb.report('process.pid')} setInterval(() => {}, 1e6);`;
    const leader = `require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}],
      { stdio: 'ignore' }); setInterval(() => {}, 1e6);`;
    const onLeftovers = vi.fn();
    const group = new ProcessGroup(NODE, ['-e', leader], 50, onLeftovers);
    const pid = Number(await mb.next());
    // A grace long enough that the grandchild still runs when the leader's exit is seen.
    await group.terminate('SIGINT', 1000);
    await expect(group.gone).resolves.toEqual({ code: null, signal: 'SIGINT' });
    expect(onLeftovers).not.toHaveBeenCalled();
    expect(alive(pid)).toBe(false);
  });

  it('sends them SIGTERM and fulfils as soon as they are gone, long before the grace period ends', async () => {
    // No onLeftovers; the grandchild notes the SIGTERM in a file and exits.
    const marker = join(dir, 'leftover-sigterm');
    const grandchild = `process.on('SIGTERM', () => {
        require('fs').writeFileSync(${JSON.stringify(marker)}, 'SIGTERM'); process.exit(0);
      }); process.stdout.write('ready'); setInterval(() => {}, 1e6);`;
    const group = new ProcessGroup(NODE, ['-e', leaving(4, grandchild)], 60_000);
    await expect(group.gone).resolves.toEqual({ code: 4, signal: null });
    expect(readFileSync(marker, 'utf8')).toBe('SIGTERM');
    expect(groupAlive(group.pid!)).toBe(false);
  });

  it('counts the SIGTERM they got as sent: a later terminate(SIGTERM) sends no second one', async () => {
    // The grandchild counts its SIGTERMs and, on SIGWINCH, writes the count and exits.
    const marker = join(dir, 'leftover-sigterms');
    const grandchild = `let n = 0;
      process.on('SIGTERM', () => { if (++n === 1) ${mb.report("'SIGTERM'")} });
      process.on('SIGWINCH', () => {
        require('fs').writeFileSync(${JSON.stringify(marker)}, String(n)); process.exit(0);
      }); process.stdout.write('ready'); setInterval(() => {}, 1e6);`;
    const group = new ProcessGroup(NODE, ['-e', leaving(4, grandchild)], 5000);
    expect(await mb.next()).toBe('SIGTERM');
    void group.terminate('SIGTERM', 5000);
    void group.terminate('SIGWINCH', 5000);
    await expect(group.gone).resolves.toEqual({ code: 4, signal: null });
    expect(readFileSync(marker, 'utf8')).toBe('1');
  });

  it('keeps the event loop running while it waits for them (polls on a timer)', async () => {
    let timerRan = false;
    const group = new ProcessGroup(NODE, ['-e', leaving(4, stubborn(true))], 100, () => {
      setTimeout(() => {
        timerRan = true;
      }, 0);
    });
    // Read as the group is gone, before any later timer could run.
    const ranWhenGone = group.gone.then(() => timerRan);
    const grandchild = Number(await mb.next());
    await expect(ranWhenGone).resolves.toBe(true);
    expect(alive(grandchild)).toBe(false);
  });
});

describe('ProcessGroup on Windows (no process groups)', () => {
  it('signals the command itself, and waits for it to exit', async () => {
    const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
    Object.defineProperty(process, 'platform', { ...platform, value: 'win32' });
    let windows: typeof import('../../src/cli/child.js');
    try {
      vi.resetModules();
      windows = await import('../../src/cli/child.js');
    } finally {
      Object.defineProperty(process, 'platform', platform);
    }
    const group = new windows.ProcessGroup(NODE, ['-e', stubborn()], 100);
    try {
      await mb.next();
      // The script ignores SIGTERM only.
      await group.terminate('SIGINT', 3000);
      expect(group.hasExited).toBe(true);
      await expect(group.exited).resolves.toEqual({ code: null, signal: 'SIGINT' });
    } finally {
      if (alive(group.pid!)) process.kill(group.pid!, 'SIGKILL');
    }
  });
});

describe('runCommand: the abort listener', () => {
  const options = (signal: AbortSignal) => ({
    signal,
    grace: 100,
    stopSignal: () => 'SIGTERM' as const,
  });

  it('leaves no listener on the signal, whether the command ran, could not start, or was stopped', async () => {
    const signal = new AbortController().signal;
    await runCommand(NODE, ['-e', ''], options(signal));
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    await expect(runCommand('asyncbackoff-no-such-command', [], options(signal))).rejects.toThrow(
      'command not found',
    );
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    const controller = new AbortController();
    const reason = new Error('stop');
    const running = runCommand(NODE, ['-e', stubborn()], options(controller.signal));
    await mb.next();
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects with the reason of an abort that comes as the group is gone', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const running = runCommand(NODE, ['-e', ''], {
      ...options(controller.signal),
      // Before runCommand's own look at `gone`: the signal is aborted when it does.
      onSpawn: (group) => {
        void group.gone.then(() => controller.abort(reason));
      },
    });
    await expect(running).rejects.toBe(reason);
  });
});
