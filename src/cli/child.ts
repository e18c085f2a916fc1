/**
 * Process management for the CLI: start a command in its own process group, wait for it under an
 * AbortSignal, and stop the whole group (SIGTERM, then SIGKILL after a grace period) so the
 * command's own children die with it, whether the attempt is stopped or the command exits and
 * leaves them behind.
 *
 * POSIX only in full. On Windows there are no process groups: signals go to the command alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';

/** How a command ended: exactly one of `code` and `signal` is set. */
export interface ExitStatus {
  /** The exit code, or `null` when a signal ended the command. */
  readonly code: number | null;
  /** The signal that ended the command, or `null` when it exited. */
  readonly signal: NodeJS.Signals | null;
}

/** The number of a signal (`SIGTERM` → 15), or 0 when unknown. */
export function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 0;
}

/** A shell's view of an exit status: the exit code, or 128 + the signal number (SIGKILL → 137). */
export function exitCodeOf(status: ExitStatus): number {
  // Node's 'exit' event sets exactly one of the two.
  return status.code ?? 128 + signalNumber(status.signal!);
}

/** `exit 1` or `killed by SIGTERM`, for messages. */
export function describeStatus(status: ExitStatus): string {
  return status.code !== null ? `exit ${status.code}` : `killed by ${status.signal}`;
}

/** An attempt's command ended unsuccessfully (non-zero exit code or a signal). Retriable. */
export class CommandExitError extends Error {
  override readonly name = 'CommandExitError';
  /** The shell-style exit code: the code, or 128 + signal number. */
  readonly exitCode: number;
  constructor(readonly status: ExitStatus) {
    super(`the command failed (${describeStatus(status)})`);
    this.exitCode = exitCodeOf(status);
  }
}

/**
 * The command could not be started. Never retried: `exitCode` is 127 when it was not found
 * (ENOENT) and 126 when it could not be executed (EACCES and anything else), as shells do.
 */
export class SpawnError extends Error {
  override readonly name = 'SpawnError';
  /** The system error code, such as `'ENOENT'`. */
  readonly code: string;
  readonly exitCode: 126 | 127;
  /** @param cause - what `spawn()` threw or emitted: always an Error, nearly always with a code. */
  constructor(command: string, cause: NodeJS.ErrnoException) {
    const code = cause.code ?? 'EUNKNOWN';
    const why =
      code === 'ENOENT'
        ? 'command not found'
        : code === 'EACCES'
          ? 'permission denied'
          : cause.message;
    super(`cannot run '${command}': ${why}`, { cause });
    this.code = code;
    this.exitCode = code === 'ENOENT' ? 127 : 126;
  }
}

/** Whether this platform has POSIX process groups. */
const GROUPS = process.platform !== 'win32';
/** How often a group whose leader has exited is checked for remaining members. */
const POLL_MS = 20;
/** How long to wait for a group to vanish after SIGKILL (which cannot be caught). */
const AFTER_KILL_MS = 1000;

const noop = (): void => {};

/**
 * Whether any live (non-zombie) process is left in process group `pgid`.
 *
 * `kill(-pgid, 0)` alone is not enough: an orphan re-parented to a PID 1 that never reaps (common
 * in containers) stays a zombie, still counted by `kill`, though it can do nothing any more. On
 * Linux the group's members are therefore looked up in /proc and zombies ignored.
 *
 * @param proc - where procfs is mounted; the tests pass a directory of their own.
 */
export function groupAlive(pgid: number, proc = '/proc'): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    // EPERM: a member runs as another user; it exists.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // Only Linux's /proc has the stat files read below.
  /* v8 ignore if: not Linux, as on the CI */
  if (process.platform !== 'linux') return true;
  let names: string[];
  try {
    names = readdirSync(proc);
  } catch {
    return true;
  }
  const wanted = String(pgid);
  for (const name of names) {
    const first = name.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`${proc}/${name}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so cut at the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3);
    if (pgrp === wanted && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

/** Resolves when `promise` settles or after `ms`, whichever is first; leaves no timer behind. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

/** Resolves after `ms`. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A command started as the leader of a new process group (`detached: true`), with stdio inherited.
 * Every signal goes to the whole group, so grandchildren (a shell's pipeline, `npm run`'s
 * children) get it too.
 *
 * When the leader exits while other members of its group still run (a background job of a
 * shell, a daemon that did not `setsid`), those get SIGTERM at once and SIGKILL after the grace
 * period: they would otherwise outlive the attempt, run beside the next one, and hold the CLI's
 * stdout open, so that `$(asyncbackoff ...)` would wait for them.
 */
export class ProcessGroup {
  /** The leader's pid (also the group id), or `undefined` when the command could not be started. */
  readonly pid: number | undefined;
  /** Fulfils when the leader exits; rejects with a {@link SpawnError} when it could not start. */
  readonly exited: Promise<ExitStatus>;
  /**
   * Fulfils with the leader's exit status once the whole group is gone: the leader has exited and
   * any members it left behind were stopped. Rejects as {@link exited} does.
   */
  readonly gone: Promise<ExitStatus>;
  private status: ExitStatus | undefined = undefined;
  private readonly child: ChildProcess;
  private readonly sent = new Set<NodeJS.Signals>();
  private stopping: Promise<void> | undefined = undefined;

  /**
   * @param grace - milliseconds between SIGTERM and SIGKILL for members left behind by the leader.
   * @param onLeftovers - called when the leader exited and members of its group still run, just
   *   before they are sent SIGTERM.
   * @throws SpawnError when the command is rejected before any process is made (say, a NUL byte).
   */
  constructor(command: string, args: readonly string[], grace: number, onLeftovers?: () => void) {
    try {
      this.child = spawn(command, args, { stdio: 'inherit', detached: GROUPS, windowsHide: true });
    } catch (error) {
      throw new SpawnError(command, error as Error);
    }
    this.pid = this.child.pid;
    this.exited = new Promise((resolve, reject) => {
      // No pid: the start failed, and 'error' comes next. After a successful start, 'error' would
      // only report a failed kill() (Windows); the listener must stay so it is not thrown.
      if (this.pid === undefined)
        this.child.on('error', (error) => reject(new SpawnError(command, error)));
      else this.child.on('error', noop);
      this.child.once('exit', (code, signal) => {
        this.status = { code, signal };
        resolve(this.status);
      });
    });
    this.gone = this.exited.then(async (status) => {
      // A stop already under way (a timeout, a forwarded signal) waits for the group itself.
      if (this.stopping === undefined && GROUPS && groupAlive(this.pid!)) {
        onLeftovers?.();
        void this.terminate('SIGTERM', grace);
      }
      await this.stopping;
      return status;
    });
    // Observed by callers as needed; never an unhandled rejection.
    this.gone.catch(noop);
  }

  /** Whether the leader has exited. */
  get hasExited(): boolean {
    return this.status !== undefined;
  }

  /** Whether {@link terminate} was called. */
  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /**
   * Sends `signal` to the group (each signal at most once: a SIGINT that reaches this process
   * twice, from the terminal and from `npm exec`, is forwarded once), then sends SIGKILL when the
   * group is still alive `grace` ms after the first call.
   *
   * @returns a promise that fulfils once the leader has exited and the group is gone (or, in a
   *   group that will not die, about a second after SIGKILL).
   */
  terminate(signal: NodeJS.Signals, grace: number): Promise<void> {
    this.send(signal);
    this.stopping ??= this.escalate(grace);
    return this.stopping;
  }

  /**
   * Fulfils when the group is gone (or the command never started) and any {@link terminate}
   * finished.
   */
  async settled(): Promise<void> {
    await this.gone.catch(noop);
    await this.stopping;
  }

  private send(signal: NodeJS.Signals): void {
    if (this.pid === undefined || this.sent.has(signal)) return;
    this.sent.add(signal);
    try {
      /* v8 ignore else: Windows, which has no process groups */
      if (GROUPS) process.kill(-this.pid, signal);
      else if (this.status === undefined) this.child.kill(signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  private async escalate(grace: number): Promise<void> {
    if (this.pid === undefined) return;
    if (await this.waitGone(grace)) return;
    this.send('SIGKILL');
    await this.waitGone(AFTER_KILL_MS);
  }

  /** Waits up to `ms` for the leader to exit and the group to empty; true if it did. */
  private async waitGone(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      // The leader's exit is an event; the other members' is not, so they are polled.
      if (this.status !== undefined && (!GROUPS || !groupAlive(this.pid!))) return true;
      const left = until - Date.now();
      if (left <= 0) return false;
      // Once the leader has exited, `exited` is settled: a plain timer, or this would spin.
      if (this.status === undefined) await within(this.exited, left);
      else await sleep(Math.min(POLL_MS, left));
    }
  }
}

/** Options of {@link runCommand}. */
export interface RunOptions {
  /** Aborting it stops the command (see `stopSignal`); the attempt's signal. */
  readonly signal: AbortSignal;
  /** Milliseconds between the stop signal and SIGKILL, for a stop and for leftovers alike. */
  readonly grace: number;
  /** The signal to stop the command with, given the abort reason. */
  readonly stopSignal: (reason: unknown) => NodeJS.Signals;
  /** Told about the process group as soon as it is started. */
  readonly onSpawn?: ((group: ProcessGroup) => void) | undefined;
  /** Called when the command exited and left members of its group running (they are stopped). */
  readonly onLeftovers?: (() => void) | undefined;
}

/**
 * Runs `command` in a new process group and fulfils with its exit status once the whole group is
 * gone (members the command left behind get SIGTERM, then SIGKILL after `grace` ms). When
 * `options.signal` aborts, the group is sent `stopSignal(reason)`, then SIGKILL after `grace` ms,
 * and the promise rejects with the abort reason once the group is gone. Nothing is started if the
 * signal is already aborted.
 *
 * @throws (rejects with) a {@link SpawnError} when the command cannot be started.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<ExitStatus> {
  const { signal } = options;
  if (signal.aborted) return Promise.reject(signal.reason);
  let group: ProcessGroup;
  try {
    group = new ProcessGroup(command, args, options.grace, options.onLeftovers);
  } catch (error) {
    return Promise.reject(error);
  }
  options.onSpawn?.(group);
  return new Promise((resolve, reject) => {
    // Kill, then wait: the rejection comes only once nothing of the group runs any more.
    const onAbort = () => {
      void group
        .terminate(options.stopSignal(signal.reason), options.grace)
        .then(() => reject(signal.reason));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    group.gone.then(
      (status) => {
        if (signal.aborted) return; // onAbort rejects
        signal.removeEventListener('abort', onAbort);
        resolve(status);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
