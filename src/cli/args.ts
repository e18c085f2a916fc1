/**
 * Command-line parsing for the `asyncbackoff` CLI: turns argv into a validated {@link CliConfig}
 * (or a request for help or the version). Every mistake is a {@link UsageError}, which the entry
 * point reports with exit status 125 (as `timeout(1)` does, so that it cannot be mistaken for the
 * command's own status). No I/O here.
 */
import { parseArgs } from 'node:util';
import { JITTERS } from '../delays.js';
import { constant, type DelayStrategy, exponential, fibonacci, linear } from '../index.js';
import { MAX_TIMER_MS } from '../validate.js';
import { formatDuration, parseDuration } from './duration.js';

/** A bad command line: unknown option, bad value, missing command. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** How pauses grow between retries. */
export type BackoffKind = 'constant' | 'exponential' | 'linear' | 'fibonacci';

const BACKOFFS: readonly BackoffKind[] = ['constant', 'exponential', 'linear', 'fibonacci'];

/** The pause before the first retry when `--pause` is not given. */
export const DEFAULT_PAUSE_MS = 1000;
/** The time between SIGTERM and SIGKILL when `--grace` is not given. */
export const DEFAULT_GRACE_MS = 5000;

/** What the CLI runs and how; times in milliseconds. */
export interface CliConfig {
  /**
   * The program to run (looked up in PATH) and its arguments: everything from the first argument
   * that is not an option (or everything after `--`).
   */
  readonly command: string;
  readonly args: readonly string[];
  /** `--attempt-timeout`, or `null` for none. */
  readonly attemptTimeout: number | null;
  /** `--deadline`, or `null` for none. */
  readonly deadline: number | null;
  /** The `Backoff` `pause` option: a plain number for a constant pause without jitter. */
  readonly pause: number | DelayStrategy;
  /** `--max-tries`, or `null` for unlimited. */
  readonly maxTries: number | null;
  /** `--retry-on`: the only exit codes retried, or `null` for any non-zero code. */
  readonly retryOn: ReadonlySet<number> | null;
  /** `--retry-except`: non-zero exit codes never retried. */
  readonly retryExcept: ReadonlySet<number>;
  /** `--grace`: between the stop signal and SIGKILL. */
  readonly grace: number;
  readonly quiet: boolean;
  readonly json: boolean;
}

/** What the command line asks for. */
export type CliRequest =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly config: CliConfig };

/** The one-line synopsis, printed with every usage error. */
export const SYNOPSIS = 'Usage: asyncbackoff [options] [--] <command> [args...]';

/** The `--help` text. */
export const HELP = `${SYNOPSIS}

Runs <command> until it exits 0, retrying failed attempts with pauses, per-attempt
timeouts and an overall deadline. Progress goes to stderr. The options end at the first
argument that is not one (or at '--'); the rest is the command and its arguments.
Each option may be given once.

Time limits:
  -t, --attempt-timeout <dur>  stop an attempt that runs longer, then retry it
  -d, --deadline <dur>         stop everything after this long (exit status 124)
      --grace <dur>            between SIGTERM and SIGKILL when stopping (default 5s)
Retries:
  -n, --max-tries <n>          attempts in total, the first included (default: no limit)
      --retry-on <codes>       retry only these exit codes, e.g. 1,75 (default: any non-zero)
      --retry-except <codes>   retry any non-zero exit code but these, e.g. 2,127
Pauses:
  -p, --pause <dur>            pause before the first retry (default 1s)
      --backoff <kind>         constant, exponential, linear or fibonacci (default constant)
      --factor <x>             exponential: growth per retry (default 2)
      --step <dur>             linear: growth per retry (default: the --pause)
      --max-pause <dur>        the longest pause
      --jitter <kind>          none, full, equal or decorrelated (default none)
Output:
  -q, --quiet                  no progress lines
      --json                   print a one-line JSON summary to stdout at the end
  -h, --help                   show this help
  -V, --version                show the version

Durations take a unit: 500ms, 2s, 1.5s, 1m, 1h30m. A bare number is refused (only 0
may go without one): write 5s or 5000ms, not 5. Under 1ms, only 0 is a duration.

Each attempt runs in its own process group. A stopped attempt's group gets SIGTERM, then
SIGKILL after --grace; so do processes the command leaves running when it exits. The
next attempt starts only once the group is gone. SIGINT, SIGTERM, SIGHUP and SIGQUIT
are forwarded to the command and stop the retries.

Exit status: 0 on success; the command's last exit code (128+n if signal n killed it);
124 when the deadline passed or the last attempt timed out; 125 if asyncbackoff itself
fails (bad options included); 126 if the command cannot be executed; 127 if it is not
found.

Example: wait up to a minute for PostgreSQL, checking every second:
  npx asyncbackoff --deadline 60s --pause 1s -- pg_isready -h 127.0.0.1
`;

const OPTIONS = {
  'attempt-timeout': { type: 'string', short: 't' },
  deadline: { type: 'string', short: 'd' },
  grace: { type: 'string' },
  'max-tries': { type: 'string', short: 'n' },
  'retry-on': { type: 'string' },
  'retry-except': { type: 'string' },
  pause: { type: 'string', short: 'p' },
  backoff: { type: 'string' },
  factor: { type: 'string' },
  step: { type: 'string' },
  'max-pause': { type: 'string' },
  jitter: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

/** Options taken out of service, and what to write instead. */
const RENAMED: Readonly<Record<string, string>> = { 'no-retry-on': '--retry-except' };

/** Short flag → long name, from {@link OPTIONS}. */
const SHORT: Readonly<Record<string, keyof typeof OPTIONS>> = Object.fromEntries(
  Object.entries(OPTIONS).flatMap(([name, option]) =>
    'short' in option ? [[option.short, name as keyof typeof OPTIONS]] : [],
  ),
);

/**
 * Parses the CLI's arguments (without `node` and the script): options, then the command. The
 * options end at `--` or at the first argument that is neither an option nor an option's value;
 * everything from there is the command, untouched (its own flags are not ours). `--help` and
 * `--version` win over everything else but a malformed option.
 *
 * @throws UsageError for an unknown, renamed or repeated option, a bad value, a conflict, or a
 *   missing command.
 * @example
 * ```ts
 * parseCli(['--deadline', '60s', '--pause', '1s', 'pg_isready', '-h', '127.0.0.1']);
 * // { kind: 'run', config: { command: 'pg_isready', args: ['-h', '127.0.0.1'], deadline: 60000, ... } }
 * ```
 */
export function parseCli(argv: readonly string[]): CliRequest {
  const { ours, rest, dashes } = splitCommand(argv);
  const values = parseOptions(ours);
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [command, ...args] = rest;
  if (command === undefined || command === '')
    throw new UsageError(
      dashes ? "missing the command to run after '--'" : 'missing the command to run',
    );

  const attemptTimeout = optionalDuration('attempt-timeout', values['attempt-timeout']);
  if (attemptTimeout === 0) throw new UsageError('--attempt-timeout must be more than 0');
  const retryOn =
    values['retry-on'] === undefined ? null : exitCodes('retry-on', values['retry-on']);
  const retryExcept =
    values['retry-except'] === undefined
      ? new Set<number>()
      : exitCodes('retry-except', values['retry-except']);
  if (retryOn !== null && values['retry-except'] !== undefined)
    throw new UsageError('--retry-on and --retry-except cannot be used together');

  return {
    kind: 'run',
    config: {
      command,
      args,
      attemptTimeout,
      deadline: optionalDuration('deadline', values.deadline),
      pause: pauseOption(values),
      maxTries: values['max-tries'] === undefined ? null : positiveInteger(values['max-tries']),
      retryOn,
      retryExcept,
      grace: optionalDuration('grace', values.grace) ?? DEFAULT_GRACE_MS,
      quiet: values.quiet ?? false,
      json: values.json ?? false,
    },
  };
}

/**
 * Splits argv where the options end: at `--` (dropped), or at the first argument that is not an
 * option or the value of one (`-t 5s`: `5s` is the value; `-t5s`, `--deadline=1m` carry theirs).
 * Unknown options are left in `ours` for parseArgs to report; a renamed one is refused here,
 * since whether it takes a value is not known any more.
 */
function splitCommand(argv: readonly string[]): {
  ours: string[];
  rest: string[];
  dashes: boolean;
} {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return { ours: argv.slice(0, i), rest: argv.slice(i + 1), dashes: true };
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const renamed = RENAMED[name];
      if (renamed !== undefined)
        throw new UsageError(`--${name} was renamed: use ${renamed} <codes>`);
      const option = OPTIONS[name as keyof typeof OPTIONS] as { type: string } | undefined;
      if (eq === -1 && option?.type === 'string') i++;
    } else if (arg.startsWith('-') && arg.length > 1) {
      // A cluster of short flags (-qn3): a flag that takes a value takes the rest of the cluster,
      // or the next argument when it ends the cluster.
      for (let j = 1; j < arg.length; j++) {
        const name = SHORT[arg[j]!];
        if (name === undefined) break;
        if (OPTIONS[name].type === 'string') {
          if (j === arg.length - 1) i++;
          break;
        }
      }
    } else return { ours: argv.slice(0, i), rest: argv.slice(i), dashes: false };
  }
  return { ours: [...argv], rest: [], dashes: false };
}

/**
 * Whether a failed attempt's exit code (never 0; 128 + n for signal n) is retried under
 * `--retry-on` / `--no-retry-on`.
 */
export function isRetriedExitCode(config: CliConfig, code: number): boolean {
  if (code === 0) return false;
  if (config.retryOn !== null) return config.retryOn.has(code);
  return !config.retryExcept.has(code);
}

type Values = ReturnType<typeof parseOptions>;

function parseOptions(args: readonly string[]) {
  let parsed: ReturnType<typeof parseAll>;
  try {
    parsed = parseAll(args);
  } catch (error) {
    throw new UsageError(parseArgsMessage(error));
  }
  // `-n 2 -n 3` would otherwise silently mean 3.
  // Every token is an option: splitCommand leaves parseArgs neither positionals nor `--`.
  const seen = new Set<string>();
  for (const { name } of parsed.tokens as { name: string }[]) {
    if (seen.has(name)) throw new UsageError(`--${name} given more than once`);
    seen.add(name);
  }
  return parsed.values;
}

function parseAll(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    options: OPTIONS,
    strict: true,
    allowPositionals: false,
    tokens: true,
  });
}

/**
 * parseArgs' messages, shortened. {@link splitCommand} leaves parseArgs no positional argument, so
 * an option is either unknown or has a bad value.
 */
function parseArgsMessage(error: unknown): string {
  const { code, message } = error as { code?: string; message: string };
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
    return `${message.split('. ')[0]!.replace(/^Unknown/, 'unknown')}`;
  // ERR_PARSE_ARGS_INVALID_OPTION_VALUE: "Option '--pause' argument is ambiguous" (a value starting
  // with '-'), "... argument missing" or "Option '--json' does not take an argument".
  if (/ambiguous/.test(message)) {
    const option = /'(--[a-z-]+)/.exec(message)?.[1] ?? 'the option';
    return `${option} needs a value (a negative one is not allowed)`;
  }
  return message.replace(/^Option/, 'option');
}

function optionalDuration(name: string, text: string | undefined): number | null {
  if (text === undefined) return null;
  try {
    return parseDuration(text);
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as Error).message}`);
  }
}

function positiveInteger(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1) || n > MAX_TIMER_MS)
    throw new UsageError(
      `--max-tries must be a whole number >= 1 and <= ${MAX_TIMER_MS}, got '${text}'`,
    );
  return n;
}

function exitCodes(name: string, text: string): ReadonlySet<number> {
  const codes = new Set<number>();
  for (const part of text.split(',')) {
    const code = /^\d+$/.test(part.trim()) ? Number(part.trim()) : Number.NaN;
    if (!(code >= 1 && code <= 255))
      throw new UsageError(
        `--${name} takes exit codes from 1 to 255 separated by commas, got '${text}'`,
      );
    codes.add(code);
  }
  return codes;
}

function oneOf<T extends string>(name: string, text: string | undefined, allowed: readonly T[]): T {
  if (text === undefined) return allowed[0]!;
  if (!allowed.includes(text as T))
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got '${text}'`);
  return text as T;
}

/** Builds the `Backoff` `pause` option from --pause, --backoff, --factor, --step, --max-pause, --jitter. */
function pauseOption(values: Values): number | DelayStrategy {
  const pause = optionalDuration('pause', values.pause) ?? DEFAULT_PAUSE_MS;
  const backoff = oneOf('backoff', values.backoff, BACKOFFS);
  const jitter = oneOf('jitter', values.jitter, JITTERS);
  const max = optionalDuration('max-pause', values['max-pause']) ?? undefined;
  if (values.factor !== undefined && backoff !== 'exponential')
    throw new UsageError('--factor only applies to --backoff exponential');
  if (values.step !== undefined && backoff !== 'linear')
    throw new UsageError('--step only applies to --backoff linear');
  if (max !== undefined && max < pause)
    throw new UsageError(
      `--max-pause (${formatDuration(max)}) must not be shorter than --pause (${formatDuration(pause)})`,
    );
  if (jitter === 'decorrelated' && pause === 0)
    throw new UsageError('--jitter decorrelated needs a --pause above 0');
  let factor: number | undefined;
  if (values.factor !== undefined) {
    factor = /^\d+(\.\d+)?$/.test(values.factor) ? Number(values.factor) : Number.NaN;
    if (!(factor >= 1) || !Number.isFinite(factor))
      throw new UsageError(`--factor must be a number >= 1, got '${values.factor}'`);
  }
  // The checks above leave the strategies nothing to reject.
  switch (backoff) {
    case 'constant':
      return jitter === 'none' && max === undefined ? pause : constant(pause, { jitter, max });
    case 'exponential':
      return exponential({ initial: pause, factor, max, jitter });
    case 'linear': {
      const step = optionalDuration('step', values.step) ?? pause;
      return linear({ initial: pause, step, max, jitter });
    }
    case 'fibonacci':
      return fibonacci({ initial: pause, max, jitter });
  }
}
