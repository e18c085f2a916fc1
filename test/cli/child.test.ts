/**
 * src/cli/child.ts with real, short `node -e` commands: exit statuses, spawn errors, stopping a
 * process group (SIGTERM, then SIGKILL after the grace period) and members left behind.
 * POSIX: the process-group tests are skipped on Windows.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
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
