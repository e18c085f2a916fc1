/**
 * Option validation. Everything is checked once, when a `Backoff` is built or a decorator factory
 * is called, so a misconfiguration fails at startup rather than on the first retry at 3 a.m.
 */

import { resolveDelay } from './delays.js';
import type {
  CircuitBreaker,
  DelayFunction,
  DelayStrategy,
  ErrorClass,
  FailureKind,
  GiveupEvent,
  HookResult,
  LateResultInfo,
  RetryAfterHint,
  RetryBudget,
  RetryEvent,
  RetryPolicy,
  SuccessEvent,
} from './types.js';
import {
  checkBoolean,
  checkCount,
  checkFunction,
  checkOptions,
  checkOptionTime,
  describe,
} from './validate.js';

/** A hook or policy given as a method name, resolved on `this` of a decorated method. */
export type MethodName = string;

/** A predicate that may answer later: its promise is awaited within the deadline and the signals. */
export type MaybeAsync<T> = T | PromiseLike<T>;

/**
 * Options of {@link Backoff}. Times are milliseconds: a non-zero time below 1 is a `RangeError`
 * (a time copied from Python's seconds), and `null`, `undefined` or `Infinity` mean "no limit".
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
   * Error classes worth another attempt. Any other thrown value rejects at once (unless `retryOn`
   * or `retryAll` says otherwise). Attempt timeouts are always retried.
   * @defaultValue `[]`
   */
  exceptions?: readonly ErrorClass[] | undefined;
  /**
   * A predicate for errors worth another attempt, for those that carry a `code` but no class of
   * their own (`isTransientNetworkError`, `isTransientPgError`, `isTransientRedisError`). An error
   * is retriable if it is an instance of one of `exceptions` or `retryOn(error)` returns `true`.
   * It must answer synchronously with a boolean.
   */
  retryOn?: ((error: unknown) => boolean) | null | undefined;
  /**
   * Retry every thrown value, whatever its class (what `asyncretry` does without `exceptions`).
   * @defaultValue `false`; `true` when a `policy` is given without `exceptions` or `retryOn` (the
   * policy then decides about every thrown value, as aioretry's does)
   */
  retryAll?: boolean | undefined;
  /**
   * Attempts in total, the first one included: `maxTries: 3` means one try and two retries.
   * @defaultValue `null` (unbounded: bounded only by the deadline)
   */
  maxTries?: number | null | undefined;
  /**
   * Called with each retriable error; `true` rejects at once with that error. It may return a
   * promise, which is awaited within the deadline and the signals.
   */
  giveup?: ((error: unknown) => MaybeAsync<boolean>) | null | undefined;
  /** Cancels every execution of this instance when aborted (say, on service shutdown). */
  signal?: AbortSignal | undefined;
  /**
   * An aioretry-style policy `(fails, error, info) => { abandon, delay }`. `abandon: true` rejects
   * with the error; `delay` replaces `pause` for the next attempt. On a decorated method it may be
   * the name of a method of `this`. It is asked about retriable failures: with no `exceptions`,
   * `retryOn` or `retryAll` beside it, every thrown value is (see `retryAll`); otherwise those
   * that the filters let through.
   */
  policy?: RetryPolicy | MethodName | undefined;
  /**
   * Marks a returned value as "not done yet": the next attempt follows the pause. For polling a job
   * or trying to take a lock. When tries or time run out while it still holds, the execution
   * rejects with a `RetryConditionError` carrying the last result (see `returnLastResult`). It
   * may return a promise, which is awaited within the deadline and the signals.
   */
  retryIf?: ((result: TResult) => MaybeAsync<boolean>) | undefined;
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
   * A circuit breaker shared with other instances (`circuitBreaker(...)`). While it is open, an
   * attempt is refused with a `BrokenCircuitError` (`whenOpen: 'fail'`) or held until a probe
   * succeeds (`whenOpen: 'wait'`), within the deadline and the signals. Retriable failures and
   * timeouts count against it; any answer (a success, a non-retriable error, a `retryIf` result)
   * counts for it.
   */
  breaker?: CircuitBreaker | undefined;
  /**
   * Called once for each attempt the execution abandoned (its attempt timeout ran out, the
   * deadline passed, or it was cancelled) that fulfils afterwards, with the value it fulfilled
   * with: release what it acquired (a connection, a lock). Never called for the result the
   * execution resolved with, nor for late rejections. What it throws or rejects with is reported
   * as a process warning (`ASYNCBACKOFF_LATE_RESULT_FAILED`), never an unhandled rejection.
   */
  onLateResult?: ((value: unknown, info: LateResultInfo) => HookResult) | undefined;
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
  readonly retryOn: ((error: unknown) => boolean) | undefined;
  readonly retryAll: boolean;
  readonly maxTries: number; // Infinity when unbounded
  readonly giveup: ((error: unknown) => MaybeAsync<boolean>) | undefined;
  readonly signal: AbortSignal | undefined;
  readonly policy: RetryPolicy | MethodName | undefined;
  readonly retryIf: ((result: unknown) => MaybeAsync<boolean>) | undefined;
  readonly returnLastResult: boolean;
  readonly onRetry: ((event: RetryEvent) => HookResult) | MethodName | undefined;
  readonly afterFailure: ((error: unknown, fails: number) => HookResult) | MethodName | undefined;
  readonly onGiveup: ((event: GiveupEvent) => HookResult) | MethodName | undefined;
  readonly onSuccess: ((event: SuccessEvent) => HookResult) | MethodName | undefined;
  readonly onLateResult: ((value: unknown, info: LateResultInfo) => HookResult) | undefined;
  readonly random: () => number;
  readonly budget: RetryBudget | undefined;
  readonly breaker: CircuitBreaker | undefined;
  readonly retryAfter: ((outcome: unknown, kind: FailureKind) => RetryAfterHint) | undefined;
  readonly maxRetryAfter: number;
  readonly context: boolean;
}

/** @internal The option names of {@link BackoffOptions} (`createFetch` and the decorators check against them too). */
export const KNOWN: readonly string[] = [
  'attemptTimeout',
  'deadline',
  'pause',
  'exceptions',
  'retryOn',
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
  'onLateResult',
  'random',
  'budget',
  'breaker',
  'retryAfter',
  'maxRetryAfter',
  'context',
];

/** @internal The options that may name a method of `this`, which only a decorated method has. */
export const METHOD_NAME_OPTIONS = [
  'policy',
  'onRetry',
  'afterFailure',
  'onGiveup',
  'onSuccess',
] as const;

const BUDGET_METHODS = ['recordFailure', 'tryAcquire', 'recordSuccess'] as const;
const BREAKER_METHODS = [
  'tryPass',
  'recordSuccess',
  'recordFailure',
  'release',
  'retryAfter',
  'onReady',
] as const;

function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    methods.every((name) => typeof (value as Record<string, unknown>)[name] === 'function')
  );
}

/**
 * Validates options and returns the engine's policy.
 * @throws TypeError for values of the wrong type or unknown keys, RangeError for numbers out of
 *   range; the message starts with `where`.
 */
export function normalizeOptions(
  options: BackoffOptions<any> | undefined,
  where = 'Backoff',
): Policy {
  // (Not null: as for every other factory, null is not an options object.)
  if (options === undefined) options = {};
  checkOptions(where, options, KNOWN);

  const attemptTimeout = checkOptionTime(where, 'attemptTimeout', options.attemptTimeout, {
    allowZero: false,
    limit: true,
  });
  const deadline = checkOptionTime(where, 'deadline', options.deadline, {
    allowZero: true,
    limit: true,
  });

  let pause = 0;
  let strategy: DelayStrategy | undefined;
  const rawPause = options.pause;
  if (typeof rawPause === 'number')
    pause = checkOptionTime(where, 'pause', rawPause, { allowZero: true, limit: false });
  else if (rawPause !== undefined) strategy = resolveDelay(rawPause, where);

  // Only undefined means "none": `null` is refused like any other non-array.
  const rawExceptions = options.exceptions === undefined ? [] : options.exceptions;
  if (!Array.isArray(rawExceptions))
    throw new TypeError(
      `${where}: 'exceptions' must be an array of error classes, got ${describe(rawExceptions)}`,
    );
  for (let index = 0; index < rawExceptions.length; index++) {
    const klass: unknown = rawExceptions[index];
    if (typeof klass !== 'function' || klass.prototype === undefined)
      throw new TypeError(
        `${where}: 'exceptions[${index}]' must be a class (constructor), got ${describe(klass)}`,
      );
  }

  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new TypeError(`${where}: 'signal' must be an AbortSignal, got ${describe(signal)}`);

  const budget = options.budget;
  if (budget !== undefined && !hasMethods(budget, BUDGET_METHODS))
    throw new TypeError(
      `${where}: 'budget' must be a RetryBudget (recordFailure, tryAcquire, recordSuccess), got ${describe(budget)}`,
    );
  const breaker = options.breaker;
  if (breaker !== undefined && !hasMethods(breaker, BREAKER_METHODS))
    throw new TypeError(
      `${where}: 'breaker' must be a CircuitBreaker (made by circuitBreaker()), got ${describe(breaker)}`,
    );

  const retryOn = checkFunction(where, 'retryOn', options.retryOn);
  const policy = checkFunction(where, 'policy', options.policy, true);
  // A policy with no filter beside it decides on every thrown value, as aioretry's does: asked
  // about nothing, it would silently never retry an error.
  const retryAll = checkBoolean(
    where,
    'retryAll',
    options.retryAll,
    policy !== undefined && rawExceptions.length === 0 && retryOn === undefined,
  );

  return Object.freeze({
    attemptTimeout,
    deadline,
    pause,
    strategy,
    exceptions: Object.freeze([...rawExceptions]),
    retryOn,
    retryAll,
    maxTries: checkCount(where, 'maxTries', options.maxTries, { min: 1, limit: true }),
    giveup: checkFunction(where, 'giveup', options.giveup),
    signal,
    policy,
    retryIf: checkFunction(where, 'retryIf', options.retryIf),
    returnLastResult: checkBoolean(where, 'returnLastResult', options.returnLastResult, false),
    onRetry: checkFunction(where, 'onRetry', options.onRetry, true),
    afterFailure: checkFunction(where, 'afterFailure', options.afterFailure, true),
    onGiveup: checkFunction(where, 'onGiveup', options.onGiveup, true),
    onSuccess: checkFunction(where, 'onSuccess', options.onSuccess, true),
    onLateResult: checkFunction(where, 'onLateResult', options.onLateResult),
    random: checkFunction(where, 'random', options.random) ?? Math.random,
    budget,
    breaker,
    retryAfter: checkFunction(where, 'retryAfter', options.retryAfter),
    maxRetryAfter: checkOptionTime(where, 'maxRetryAfter', options.maxRetryAfter, {
      allowZero: true,
      limit: true,
    }),
    context: checkBoolean(where, 'context', options.context, true),
  });
}
