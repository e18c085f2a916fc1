/**
 * Public types shared by the engine, the delay strategies, budgets and decorators.
 * Kept in one file with no runtime code so every module can import it without cycles.
 */

/** Any class whose instances may be thrown; used by the `exceptions` filter. */
export type ErrorClass = abstract new (...args: any[]) => unknown;

/**
 * Why an attempt did not succeed:
 * - `'error'`: it threw or rejected;
 * - `'timeout'`: it ran past `attemptTimeout`;
 * - `'result'`: it returned a value that `retryIf` marked as "not done yet".
 */
export type FailureKind = 'error' | 'timeout' | 'result';

/** What a delay strategy is told when it picks the pause before the next attempt. */
export interface DelayContext {
  /** The 1-based number of the attempt that just failed. */
  readonly attempt: number;
  /** How many attempts of this execution have failed so far (equals `attempt`). */
  readonly fails: number;
  /** Why the attempt failed. */
  readonly kind: FailureKind;
  /** The thrown value when `kind` is `'error'` or `'timeout'`, else `undefined`. */
  readonly error: unknown;
  /** The returned value when `kind` is `'result'`, else `undefined`. */
  readonly result: unknown;
  /** The pause chosen before the previous retry of this execution, or `undefined` before the first retry. */
  readonly previousDelay: number | undefined;
  /** Milliseconds since the execution started. */
  readonly elapsed: number;
  /** Milliseconds until the execution's deadline; `Infinity` without one. */
  readonly remaining: number;
  /** Uniform random source in [0, 1); `Math.random` unless the `random` option was given. */
  readonly random: () => number;
}

/**
 * A pause policy. Implementations are immutable: everything that varies between executions
 * (attempt number, previous delay, randomness) comes in through the context, so one strategy
 * object can be shared by any number of concurrent executions.
 */
export interface DelayStrategy {
  /** Milliseconds to wait before the next attempt; a finite number >= 0. */
  delay(context: DelayContext): number;
}

/** A function form of {@link DelayStrategy}. */
export type DelayFunction = (context: DelayContext) => number;

/**
 * A retry budget shared by one or many `Backoff` instances (gRPC retry throttling, AWS retry quota).
 * The engine calls it; first attempts are never refused.
 */
export interface RetryBudget {
  /** Called for every attempt that fails, before the retry decision. */
  recordFailure(kind: FailureKind): void;
  /** Asked before each retry; `false` refuses it and the execution rejects with the last error. */
  tryAcquire(kind: FailureKind): boolean;
  /**
   * Called when an attempt succeeds. `lastRetryKind` is the kind of failure the execution last
   * retried after (so a quota can refund that retry's cost), or `undefined` when it did not retry.
   */
  recordSuccess(lastRetryKind: FailureKind | undefined): void;
}

/** The decision of a {@link RetryPolicy}: either a `{ abandon, delay }` object or an `[abandon, delay]` tuple. */
export type PolicyDecision =
  | { readonly abandon: boolean; readonly delay?: number | undefined }
  | readonly [abandon: boolean, delay?: number];

/** Extra facts a {@link RetryPolicy} may use. */
export interface PolicyInfo {
  readonly attempt: number;
  readonly kind: FailureKind;
  readonly result: unknown;
  readonly elapsed: number;
  readonly remaining: number;
}

/**
 * An aioretry-style policy: `fails` counts failures from 1. Returning `abandon: true` rejects with
 * the error; otherwise `delay` (ms) replaces the `pause` for the next attempt. It may return a
 * promise of the decision; it is awaited within the deadline and the signals.
 */
export type RetryPolicy = (
  fails: number,
  error: unknown,
  info: PolicyInfo,
) => PolicyDecision | PromiseLike<PolicyDecision>;

/** What the `onRetry` hook is told. */
export interface RetryEvent {
  readonly attempt: number;
  readonly kind: FailureKind;
  readonly error: unknown;
  readonly result: unknown;
  /** The pause (ms) before the next attempt. */
  readonly delay: number;
  readonly elapsed: number;
  readonly remaining: number;
}

/** What the `onGiveup` hook is told. */
export interface GiveupEvent {
  readonly attempt: number;
  readonly kind: FailureKind;
  /** The value the execution rejects with. */
  readonly error: unknown;
  readonly result: unknown;
  /** Why no further attempt is made. */
  readonly reason:
    | 'not-retriable'
    | 'giveup'
    | 'policy'
    | 'max-tries'
    | 'deadline'
    | 'budget'
    | 'pushback'
    | 'breaker';
  readonly elapsed: number;
}

/** What the `onSuccess` hook is told. */
export interface SuccessEvent<TResult = unknown> {
  readonly attempt: number;
  readonly result: TResult;
  readonly elapsed: number;
}

/** A hook may return a promise; it is awaited, but never past the deadline. */
export type HookResult = void | PromiseLike<void>;

/**
 * A retry-after hint from an error or a result: milliseconds, an absolute `Date`, or nothing.
 * A negative number means "do not retry" (as gRPC pushback does).
 */
export type RetryAfterHint = number | Date | null | undefined;

/** Counters of one `Backoff` instance (shared by every view made with `withSignal`). */
export interface BackoffStatistics {
  /** Attempts started. */
  readonly attempts: number;
  /** Attempts finished, whatever the outcome (as aiomisc counts `done`). */
  readonly done: number;
  /** Attempts that failed: thrown errors, timeouts and results marked by `retryIf`. */
  readonly errors: number;
  /** Attempts stopped by a deadline or a cancellation (signal abort). */
  readonly cancels: number;
  /** Milliseconds spent inside attempts, summed. */
  readonly sumTime: number;
  /** Attempts that ran past `attemptTimeout`. */
  readonly timeouts: number;
  /** Retries scheduled (a failed attempt followed by another). */
  readonly retries: number;
  /** Executions that failed finally (any reason but cancellation). */
  readonly giveUps: number;
  /** Milliseconds slept in pauses, summed. */
  readonly sleptTime: number;
  /** Retries refused by the retry budget. */
  readonly budgetRefusals: number;
  /** Executions that resolved. */
  readonly successes: number;
  /** Abandoned attempts (timed out, past the deadline, cancelled) that fulfilled afterwards. */
  readonly lateResults: number;
  /** Attempts an open circuit breaker refused (`whenOpen: 'fail'`) or held back (`'wait'`). */
  readonly breakerRefusals: number;
}

/** What `onLateResult` is told besides the value. */
export interface LateResultInfo {
  /** The 1-based number of the abandoned attempt. */
  readonly attempt: number;
  /**
   * Why it was abandoned: the abort reason of its signal (`AttemptTimeoutError`,
   * `DeadlineExceededError`, or a cancelling signal's reason).
   */
  readonly reason: unknown;
}

/** The state of a {@link CircuitBreaker}. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** @internal What {@link CircuitBreaker.tryPass} hands out: one admitted attempt. */
export interface BreakerPass {
  /** Whether this attempt is the half-open breaker's probe. */
  readonly probe: boolean;
}

/**
 * A circuit breaker, shared by any number of `Backoff` instances (the `breaker` option); made by
 * `circuitBreaker(options)`. The methods below the state are what the engine calls around each
 * attempt.
 */
export interface CircuitBreaker {
  /** The state now. */
  readonly state: CircuitState;
  /** What an attempt meets while the breaker is open: rejection, or a wait for a probe's success. */
  readonly whenOpen: 'fail' | 'wait';
  /** @internal Admits one attempt now, or returns `undefined` (open, or the probe is out). */
  tryPass(): BreakerPass | undefined;
  /** @internal The attempt admitted by `pass` says the dependency answered. */
  recordSuccess(pass: BreakerPass): void;
  /** @internal The attempt admitted by `pass` failed in a way that counts against the dependency. */
  recordFailure(pass: BreakerPass): void;
  /** @internal The attempt admitted by `pass` ended without saying anything (cancelled). */
  release(pass: BreakerPass): void;
  /** @internal Milliseconds until a probe may pass; 0 when a pass may be available now. */
  retryAfter(): number;
  /** @internal Calls `callback` once when a pass may be available; returns an unsubscribe. */
  onReady(callback: () => void): () => void;
}
