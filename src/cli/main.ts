/**
 * The `asyncbackoff` command: `asyncbackoff [options] [--] <command> [args...]` runs the command
 * through a {@link Backoff}, one child process per attempt, until it exits 0 or the policy gives
 * up. See `HELP` in ./args.ts for the options and exit statuses.
 *
 * Importing this module does nothing: ./bin.ts (built as dist/cli.js) calls {@link main} with the
 * process's arguments and exits with the status it resolves with.
 */
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  AttemptTimeoutError,
  Backoff,
  currentAttempt,
  DeadlineExceededError,
  type GiveupEvent,
  type RetryEvent,
} from '../index.js';
import { type CliConfig, HELP, isRetriedExitCode, parseCli, SYNOPSIS, UsageError } from './args.js';
import {
  CommandExitError,
  describeStatus,
  type ExitStatus,
  exitCodeOf,
  type ProcessGroup,
  runCommand,
  SpawnError,
  signalNumber,
} from './child.js';
import { formatDuration } from './duration.js';

/** Where the CLI writes, and where it hears signals: the process's own unless a test passes others. */
export interface CliIo {
  /** For `--help`, `--version` and the `--json` summary. */
  readonly stdout: { write(text: string): unknown };
  /** For progress lines and errors. */
  readonly stderr: { write(text: string): unknown };
  /** Emits the signals to forward to the command: `'SIGINT'`, `'SIGTERM'`, `'SIGHUP'`, `'SIGQUIT'`. */
  readonly signals: Pick<EventEmitter, 'on' | 'off'>;
}

/**
 * Signals this process forwards to the command before it stops retrying: those `timeout(1)`
 * forwards. Any of them would otherwise end this process and leave the command running.
 */
export const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** Exit status when time ran out, as `timeout(1)`. */
const EXIT_TIMEOUT = 124;
/** Exit status when asyncbackoff itself failed, as `timeout(1)`. */
const EXIT_INTERNAL = 125;
/**
 * Exit status for a bad command line: 125, as `timeout(1)`, `env(1)` and `nice(1)` use for their
 * own errors, so a usage error is not confused with a command that exits 2.
 */
const EXIT_USAGE = 125;

/** Why the CLI stopped, in the `--json` summary. */
type Reason =
  | 'success'
  | 'max-tries'
  | 'not-retriable'
  | 'deadline'
  | 'spawn-error'
  | 'interrupted'
  | 'internal-error';

/** The abort reason when a forwarded signal stops the retries. */
class Interrupted extends Error {
  override readonly name = 'Interrupted';
  constructor(readonly signal: NodeJS.Signals) {
    super(`received ${signal}`);
  }
}

/** What to print for an error of asyncbackoff's own: its stack, when it has one. */
function crashReport(error: unknown): string {
  return (error as Error | undefined)?.stack ?? String(error);
}

/** `1 attempt`, `3 attempts`. */
function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Runs the command under the policy of `config`; resolves with the exit status to exit with. */
async function run(config: CliConfig, io: CliIo): Promise<number> {
  const startedAt = performance.now();
  const say = config.quiet
    ? () => {}
    : (line: string) => void io.stderr.write(`asyncbackoff: ${line}\n`);
  const label = (attempt: number) =>
    config.maxTries === null ? `attempt ${attempt}` : `attempt ${attempt}/${config.maxTries}`;

  /** The latest attempt's process group (possibly exited, possibly being stopped). */
  let active: ProcessGroup | undefined;
  let attemptStartedAt = startedAt;
  let giveup: GiveupEvent['reason'] | undefined;
  let interruptedBy: NodeJS.Signals | undefined;
  /** The group whose attempt was running when the first signal came: its status is the answer. */
  let interruptedGroup: ProcessGroup | undefined;

  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interruptedBy === undefined) {
      interruptedBy = signal;
      say(`received ${signal}; stopping`);
      if (active !== undefined && !active.hasExited && !active.isStopping)
        interruptedGroup = active;
    }
    // Forward first (each signal once per group), then stop the retries: the attempt's abort
    // callback then asks for the same signal, which is not sent twice.
    if (active !== undefined && (!active.hasExited || active.isStopping))
      void active.terminate(signal, config.grace);
    interrupt.abort(new Interrupted(signal));
  };

  /** `failed (exit 1) after 1.2s` or `timed out after 2s`. */
  const failure = (error: unknown): string => {
    if (error instanceof AttemptTimeoutError)
      return `timed out after ${formatDuration(error.timeout)}`;
    const took = formatDuration(performance.now() - attemptStartedAt);
    if (error instanceof CommandExitError)
      return `failed (${describeStatus(error.status)}) after ${took}`;
    return `failed (${String(error)}) after ${took}`;
  };
  let lastFailure = '';
  /** When onGiveup was told (ms since the start). */
  let gaveUpAfter = 0;

  const attempt = async (): Promise<ExitStatus> => {
    attemptStartedAt = performance.now();
    const { signal, attempt: number } = currentAttempt()!;
    const status = await runCommand(config.command, config.args, {
      signal,
      grace: config.grace,
      // A timeout or the deadline sends SIGTERM; a forwarded signal is passed on as it came.
      stopSignal: (reason) => (reason instanceof Interrupted ? reason.signal : 'SIGTERM'),
      onSpawn: (group) => {
        active = group;
      },
      onLeftovers: () => say(`${label(number)}: the command left processes running; stopping them`),
    });
    if (status.code === 0) return status;
    throw new CommandExitError(status);
  };

  const backoff = new Backoff({
    attemptTimeout: config.attemptTimeout,
    deadline: config.deadline,
    pause: config.pause,
    maxTries: config.maxTries,
    exceptions: [CommandExitError],
    giveup: (error) =>
      error instanceof CommandExitError && !isRetriedExitCode(config, error.exitCode),
    signal: interrupt.signal,
    async onRetry(event: RetryEvent) {
      const next = event.delay > 0 ? `next in ${formatDuration(event.delay)}` : 'retrying now';
      say(`${label(event.attempt)} ${failure(event.error)}; ${next}`);
      // Never overlap attempts: a timed-out command may still be dying (up to --grace).
      await active?.settled();
    },
    onGiveup(event: GiveupEvent) {
      giveup = event.reason;
      gaveUpAfter = event.elapsed;
      lastFailure = `${label(event.attempt)} ${failure(event.error)}`;
    },
  });

  // Heard from the first attempt until the command (and its group) is gone, then no longer.
  const listeners = FORWARDED.map((signal) => [signal, () => onSignal(signal)] as const);
  for (const [signal, listener] of listeners) io.signals.on(signal, listener);
  try {
    let code: number;
    let reason: Reason;
    try {
      await backoff.execute(attempt);
      code = 0;
      reason = 'success';
      const { attempts } = backoff.statistics;
      if (attempts > 1)
        say(
          `${label(attempts)} succeeded after ${formatDuration(performance.now() - attemptStartedAt)} ` +
            `(${attempts} attempts in ${formatDuration(performance.now() - startedAt)})`,
        );
    } catch (error) {
      const attempts = backoff.statistics.attempts;
      if (error instanceof Interrupted) {
        reason = 'interrupted';
        // The command that was running decides (it may trap the signal and exit 0); without one,
        // exit as a shell does when killed by the signal.
        code =
          interruptedGroup === undefined
            ? 128 + signalNumber(error.signal)
            : exitCodeOf(await interruptedGroup.exited);
      } else if (error instanceof SpawnError) {
        reason = 'spawn-error';
        code = error.exitCode;
        io.stderr.write(`asyncbackoff: ${error.message}\n`);
      } else if (giveup === 'deadline' || error instanceof DeadlineExceededError) {
        // onGiveup is told of the deadline whether it passed during an attempt or a pause, or
        // whether the pause would have crossed it; a zero deadline rejects before any attempt.
        reason = 'deadline';
        code = EXIT_TIMEOUT;
        const deadline = formatDuration(config.deadline!);
        const end =
          giveup === 'deadline' && gaveUpAfter < config.deadline!
            ? `the next attempt would start past the deadline of ${deadline}; giving up after ${plural(attempts, 'attempt')}`
            : `deadline of ${deadline} reached after ${plural(attempts, 'attempt')}`;
        say(lastFailure === '' ? end : `${lastFailure}; ${end}`);
      } else if (error instanceof CommandExitError || error instanceof AttemptTimeoutError) {
        reason = giveup === 'giveup' ? 'not-retriable' : 'max-tries';
        code = error instanceof CommandExitError ? error.exitCode : EXIT_TIMEOUT;
        say(
          giveup === 'giveup'
            ? `${lastFailure}; exit code ${code} is not retried`
            : `${lastFailure}; giving up after ${plural(attempts, 'attempt')}`,
        );
      } else {
        reason = 'internal-error';
        code = EXIT_INTERNAL;
        io.stderr.write(`asyncbackoff: ${crashReport(error)}\n`);
      }
    }

    // Like timeout(1), return only once the command (and its group) is gone.
    await active?.settled();
    if (config.json) {
      const { attempts, timeouts } = backoff.statistics;
      const elapsedMs = Math.round(performance.now() - startedAt);
      const summary = { ok: code === 0, exitCode: code, attempts, elapsedMs, timeouts, reason };
      io.stdout.write(`${JSON.stringify(summary)}\n`);
    }
    return code;
  } finally {
    for (const [signal, listener] of listeners) io.signals.off(signal, listener);
  }
}

/**
 * The package's version, from the package.json above `from` (this file, in src/cli/ or dist/), or
 * `'unknown'` when there is none named asyncbackoff.
 */
export function version(from: string | URL = import.meta.url): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, from), 'utf8'));
      if (pkg.name === 'asyncbackoff') return String(pkg.version);
    } catch {
      // not there; try the next
    }
  }
  return 'unknown';
}

/**
 * The command: parses `argv` (the arguments after `node` and the script), runs, and resolves with
 * the exit status. It never rejects: a failure of its own is reported on `io.stderr` with status
 * 125. Signals are heard on `io.signals` only while a command runs.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    const request = parseCli(argv);
    if (request.kind === 'help') {
      io.stdout.write(HELP);
      return 0;
    }
    if (request.kind === 'version') {
      io.stdout.write(`${version()}\n`);
      return 0;
    }
    return await run(request.config, io);
  } catch (error) {
    // Only parseCli throws UsageError.
    if (error instanceof UsageError) {
      io.stderr.write(
        `asyncbackoff: ${error.message}\n${SYNOPSIS}\nTry 'asyncbackoff --help' for more information.\n`,
      );
      return EXIT_USAGE;
    }
    io.stderr.write(`asyncbackoff: ${crashReport(error)}\n`);
    return EXIT_INTERNAL;
  }
}

/** The process's own streams and signals. */
function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, signals: process };
}
