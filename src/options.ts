/**
 * Option validation. Everything is checked once, when a `Backoff` is built or a decorator factory
 * is called, so a misconfiguration fails at startup rather than on the first retry at 3 a.m.
 */

import { resolveDelay } from './delays.js';
import type {
  BackoffStatistics,
  DelayFunction,
  DelayStrategy,
  ErrorClass,
  FailureKind,
  GiveupEvent,
  HookResult,
  RetryAfterHint,
  RetryBudget,
  RetryEvent,
  RetryPolicy,
  SuccessEvent,
} from './types.js';
import { describe, MAX_TIMER_MS } from './validate.js';

/** A hook or policy given as a method name, resolved on `this` of a decorated method. */
export type MethodName = string;

/**
 * Options of {@link Backoff}. Times are milliseconds.
 *
 * @typeParam TResult - the result type `retryIf` and `onSuccess` see; inferred from `retryIf`.
 */
export interface BackoffOptions<TResult = unknown> {
  /**
   * How long one attempt may run. When it passes, the attempt's signal aborts with an
   * `AttemptTimeoutError`, the attempt counts as failed with that (always retriable) error, and the
   * execution moves on at once even if the function ignores its signal.
   * @defaultValue `null` (unbounded)
   */
  attemptTimeout?: number | null | undefined;
  /**
   * How long all attempts and pauses together may run. When it passes the running attempt's signal
   * aborts with a `DeadlineExceededError` and the execution rejects with the last attempt's error,
   * or with the `DeadlineExceededError` when no attempt had failed.
   * @defaultValue `null` (unbounded)
   */
  deadline?: number | null | undefined;
  /**
   * The wait between attempts (never after the last one): milliseconds, a `DelayStrategy`
   * (`exponential(...)`, `constant(...)`, ...), or a function of the `DelayContext`.
   * @defaultValue `0`
   */
  pause?: number | DelayStrategy | DelayFunction | undefined;
  /**
   * Error classes worth another attempt. Any other thrown value rejects at once. Attempt timeouts
   * are always retried.
   * @defaultValue `[]`
   */
  exceptions?: readonly ErrorClass[] | undefined;
  /**
   * Retry every thrown value, whatever its class (what `asyncretry` does without `exceptions`).
   * @defaultValue `false`
   */
  retryAll?: boolean | undefined;
  /**
   * Attempts in total, the first one included: `maxTries: 3` means one try and two retries.
   * @defaultValue `null` (unbounded: bounded only by the deadline)
   */
  maxTries?: number | null | undefined;
  /** Called with each retriable error; returning `true` rejects at once with that error. */
  giveup?: ((error: unknown) => boolean) | null | undefined;
  /** Cancels every execution of this instance when aborted (say, on service shutdown). */
  signal?: AbortSignal | undefined;
  /**
   * An aioretry-style policy `(fails, error, info) => { abandon, delay }`. `abandon: true` rejects
   * with the error; `delay` replaces `pause` for the next attempt. On a decorated method it may be
   * the name of a method of `this`.
   */
  policy?: RetryPolicy | MethodName | undefined;
  /**
   * Marks a returned value as "not done yet": the next attempt follows the pause. For polling a job
   * or trying to take a lock. When tries or time run out while it still holds, the execution
   * rejects with a `RetryConditionError` carrying the last result (see `returnLastResult`).
   */
  retryIf?: ((result: TResult) => boolean) | undefined;
  /**
   * With `retryIf`: resolve with the last result instead of rejecting when tries or time run out.
   * @defaultValue `false`
   */
  returnLastResult?: boolean | undefined;
  /** Called before each pause with the failure and the delay chosen. */
  onRetry?: ((event: RetryEvent) => HookResult) | MethodName | undefined;
  /** aioretry's `after_failure`: called after each failure that will be retried, not when giving up. */
  afterFailure?: ((error: unknown, fails: number) => HookResult) | MethodName | undefined;
  /** Called once when the execution fails finally (not on cancellation). */
  onGiveup?: ((event: GiveupEvent) => HookResult) | MethodName | undefined;
  /** Called once when the execution succeeds. */
  onSuccess?: ((event: SuccessEvent<TResult>) => HookResult) | MethodName | undefined;
  /**
   * The random source handed to delay strategies (uniform in [0, 1)). Pass `seededRandom(seed)`
   * for reproducible jitter.
   * @defaultValue `Math.random`
   */
  random?: (() => number) | undefined;
  /** A retry budget shared with other instances; a refused retry rejects at once with the last error. */
  budget?: RetryBudget | undefined;
  /**
   * Extracts a server's retry-after hint from an error or a result: milliseconds, a `Date`, or
   * nothing. The next pause is at least the hint; a negative hint means "do not retry".
   */
  retryAfter?: ((outcome: unknown, kind: FailureKind) => RetryAfterHint) | undefined;
  /**
   * The longest retry-after hint honoured; a longer one rejects at once with the last error.
   * @defaultValue `Infinity` (bounded by the deadline)
   */
  maxRetryAfter?: number | undefined;
  /**
   * Carry each attempt through `AsyncLocalStorage`, so that `currentAttempt()` finds it (after
   * awaits too) and executions started inside it inherit its signal and remaining time.
   *
   * `false` runs the function without entering an async context. `currentAttempt()` inside it
   * then returns the enclosing attempt, if any, and nested executions bound themselves only by
   * that. This instance still inherits from an enclosing attempt. Use it for hot calls that need
   * neither: on Node 24 it saves the two context frames `AsyncLocalStorage.run` builds per call
   * (about half the cost of an unbounded call), and on Node 20 and 22 a process whose instances
   * all set it never turns on the promise hooks that AsyncLocalStorage installs there, which
   * slow every promise in the process.
   * @defaultValue `true`
   */
  context?: boolean | undefined;
}

/** The validated form the engine reads. */
export interface Policy {
  readonly attemptTimeout: number; // Infinity when unbounded
  readonly deadline: number; // Infinity when unbounded
  readonly pause: number; // constant pause; used when `strategy` is undefined
  readonly strategy: DelayStrategy | undefined;
  readonly exceptions: readonly ErrorClass[];
  readonly retryAll: boolean;
  readonly maxTries: number; // Infinity when unbounded
  readonly giveup: ((error: unknown) => boolean) | undefined;
  readonly signal: AbortSignal | undefined;
  readonly policy: RetryPolicy | MethodName | undefined;
  readonly retryIf: ((result: unknown) => boolean) | undefined;
  readonly returnLastResult: boolean;
  readonly onRetry: ((event: RetryEvent) => HookResult) | MethodName | undefined;
  readonly afterFailure: ((error: unknown, fails: number) => HookResult) | MethodName | undefined;
  readonly onGiveup: ((event: GiveupEvent) => HookResult) | MethodName | undefined;
  readonly onSuccess: ((event: SuccessEvent) => HookResult) | MethodName | undefined;
  readonly random: () => number;
  readonly budget: RetryBudget | undefined;
  readonly retryAfter: ((outcome: unknown, kind: FailureKind) => RetryAfterHint) | undefined;
  readonly maxRetryAfter: number;
  readonly context: boolean;
}

const KNOWN = new Set<string>([
  'attemptTimeout',
  'deadline',
  'pause',
  'exceptions',
  'retryAll',
  'maxTries',
  'giveup',
  'signal',
  'policy',
  'retryIf',
  'returnLastResult',
  'onRetry',
  'afterFailure',
  'onGiveup',
  'onSuccess',
  'random',
  'budget',
  'retryAfter',
  'maxRetryAfter',
  'context',
]);

function optionalTime(
  name: string,
  value: unknown,
  allowZero: boolean,
  where: string,
): number | undefined {
  if (value === null || value === undefined || value === Number.POSITIVE_INFINITY) return undefined;
  if (typeof value !== 'number')
    throw new TypeError(
      `${where}: '${name}' must be a number of milliseconds or null, got ${describe(value)}`,
    );
  if (Number.isNaN(value) || value < 0 || (!allowZero && value === 0) || value > MAX_TIMER_MS)
    throw new RangeError(
      `${where}: '${name}' must be ${allowZero ? '>= 0' : '> 0'} and <= ${MAX_TIMER_MS} ms (or null for no limit), got ${describe(value)}`,
    );
  return value;
}

function optionalFunction<T>(
  name: string,
  value: T,
  where: string,
  allowName = false,
): Exclude<T, null> | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'function') return value as Exclude<T, null>;
  if (allowName && typeof value === 'string' && value.length > 0) return value as Exclude<T, null>;
  throw new TypeError(
    `${where}: '${name}' must be a function${allowName ? ' or a method name' : ''}, got ${describe(value)}`,
  );
}

/**
 * Validates options and returns the engine's policy.
 * @throws TypeError for values of the wrong type, RangeError for numbers out of range.
 */
export function normalizeOptions(
  options: BackoffOptions<any> | undefined,
  where = 'Backoff',
): Policy {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object')
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options))
    if (!KNOWN.has(key)) throw new TypeError(`${where}: unknown option '${key}'`);

  const attemptTimeout = optionalTime('attemptTimeout', options.attemptTimeout, false, where);
  const deadline = optionalTime('deadline', options.deadline, true, where);

  let pause = 0;
  let strategy: DelayStrategy | undefined;
  const rawPause = options.pause;
  if (typeof rawPause === 'number') {
    if (Number.isNaN(rawPause) || rawPause < 0 || rawPause > MAX_TIMER_MS)
      throw new RangeError(
        `${where}: 'pause' must be >= 0 and <= ${MAX_TIMER_MS} ms, got ${describe(rawPause)}`,
      );
    pause = rawPause;
  } else if (rawPause !== undefined) strategy = resolveDelay(rawPause, where);

  const rawExceptions = options.exceptions ?? [];
  if (!Array.isArray(rawExceptions))
    throw new TypeError(
      `${where}: 'exceptions' must be an array of error classes, got ${describe(rawExceptions)}`,
    );
  rawExceptions.forEach((klass: unknown, index: number) => {
    if (typeof klass !== 'function' || klass.prototype === undefined)
      throw new TypeError(
        `${where}: 'exceptions[${index}]' must be a class (constructor), got ${describe(klass)}`,
      );
  });

  const retryAll = options.retryAll ?? false;
  if (typeof retryAll !== 'boolean')
    throw new TypeError(`${where}: 'retryAll' must be a boolean, got ${describe(retryAll)}`);

  let maxTries = Number.POSITIVE_INFINITY;
  if (options.maxTries !== null && options.maxTries !== undefined) {
    const value: unknown = options.maxTries;
    if (typeof value !== 'number')
      throw new TypeError(
        `${where}: 'maxTries' must be an integer >= 1 or null, got ${describe(value)}`,
      );
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(
        `${where}: 'maxTries' must be an integer >= 1 or null, got ${describe(value)}`,
      );
    maxTries = value;
  }

  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new TypeError(`${where}: 'signal' must be an AbortSignal, got ${describe(signal)}`);

  const returnLastResult = options.returnLastResult ?? false;
  if (typeof returnLastResult !== 'boolean')
    throw new TypeError(
      `${where}: 'returnLastResult' must be a boolean, got ${describe(returnLastResult)}`,
    );

  const maxRetryAfter = options.maxRetryAfter ?? Number.POSITIVE_INFINITY;
  if (typeof maxRetryAfter !== 'number')
    throw new TypeError(
      `${where}: 'maxRetryAfter' must be a number of milliseconds, got ${describe(maxRetryAfter)}`,
    );
  if (Number.isNaN(maxRetryAfter) || maxRetryAfter < 0)
    throw new RangeError(
      `${where}: 'maxRetryAfter' must be >= 0 ms, got ${describe(maxRetryAfter)}`,
    );

  const context = options.context ?? true;
  if (typeof context !== 'boolean')
    throw new TypeError(`${where}: 'context' must be a boolean, got ${describe(context)}`);

  const budget = options.budget;
  if (
    budget !== undefined &&
    (typeof budget !== 'object' ||
      budget === null ||
      typeof budget.tryAcquire !== 'function' ||
      typeof budget.recordFailure !== 'function' ||
      typeof budget.recordSuccess !== 'function')
  )
    throw new TypeError(
      `${where}: 'budget' must be a RetryBudget (recordFailure, tryAcquire, recordSuccess), got ${describe(budget)}`,
    );

  const policy = optionalFunction('policy', options.policy, where, true);
  const retryIf = optionalFunction('retryIf', options.retryIf, where);
  const onRetry = optionalFunction('onRetry', options.onRetry, where, true);
  const afterFailure = optionalFunction('afterFailure', options.afterFailure, where, true);
  const onGiveup = optionalFunction('onGiveup', options.onGiveup, where, true);
  const onSuccess = optionalFunction('onSuccess', options.onSuccess, where, true);

  return Object.freeze({
    attemptTimeout: attemptTimeout ?? Number.POSITIVE_INFINITY,
    deadline: deadline ?? Number.POSITIVE_INFINITY,
    pause,
    strategy,
    exceptions: Object.freeze([...rawExceptions]),
    retryAll,
    maxTries,
    giveup: optionalFunction('giveup', options.giveup, where),
    signal,
    policy,
    retryIf,
    returnLastResult,
    onRetry,
    afterFailure,
    onGiveup,
    onSuccess,
    random: optionalFunction('random', options.random, where) ?? Math.random,
    budget,
    retryAfter: optionalFunction('retryAfter', options.retryAfter, where),
    maxRetryAfter,
    context,
  });
}

/** A fresh, zeroed statistics record. */
export function emptyStatistics(): { -readonly [K in keyof BackoffStatistics]: number } {
  return {
    attempts: 0,
    done: 0,
    errors: 0,
    cancels: 0,
    sumTime: 0,
    timeouts: 0,
    retries: 0,
    giveUps: 0,
    sleptTime: 0,
    budgetRefusals: 0,
    successes: 0,
  };
}
