/**
 * Error classes. Each has a literal `name`, a stable `code`, and a `Symbol.for` brand so that
 * `instanceof` holds across two copies of the package (two versions in one dependency tree).
 */

const kTimeout = Symbol.for('asyncbackoff.TimeoutError');
const kAttemptTimeout = Symbol.for('asyncbackoff.AttemptTimeoutError');
const kDeadline = Symbol.for('asyncbackoff.DeadlineExceededError');
const kRetryCondition = Symbol.for('asyncbackoff.RetryConditionError');

// The brand is a property of each class's prototype, so constructing an error costs nothing for
// it. A user subclass of one of ours must not match every instance of our class, so the brand
// check applies only to our own classes; subclasses fall back to the prototype chain.
function brand(klass: Function, key: symbol): void {
  Object.defineProperty(klass.prototype, key, { value: true });
}

function branded(klass: Function, self: Function, brand: symbol, value: unknown): boolean {
  if (self !== klass) return Function.prototype[Symbol.hasInstance].call(self, value);
  if (typeof value !== 'object' || value === null) return false;
  try {
    return (value as Record<symbol, unknown>)[brand] === true;
  } catch {
    // A proxy whose `get` throws: none of ours, and the engine must not fail on reading it.
    return false;
  }
}

/**
 * Makes a timeout error's message, remembering the last one. In an incident thousands of attempts
 * time out with the same numbers: they share one string instead of building it each time. Only
 * numbers are remembered: anything else (a caller ignoring the types) may read differently next
 * time.
 */
function lastMessage(make: (a: number, b: number) => string): (a: number, b: number) => string {
  let lastA = Number.NaN; // equal to nothing: the first call makes its message
  let lastB = Number.NaN;
  let last = '';
  return (a, b) => {
    if (a === lastA && b === lastB) return last;
    const text = make(a, b);
    if (typeof a === 'number' && typeof b === 'number') {
      lastA = a;
      lastB = b;
      last = text;
    }
    return text;
  };
}

const attemptTimeoutMessage = lastMessage(
  (timeout, attempt) => `Attempt ${attempt} timed out after ${timeout} ms`,
);
const deadlineExceededMessage = lastMessage(
  (timeout, attempts) => `Deadline of ${timeout} ms exceeded after ${attempts} attempt(s)`,
);

/**
 * Base class of {@link AttemptTimeoutError} and {@link DeadlineExceededError}: catch this to handle
 * either time limit.
 *
 * @example
 * ```ts
 * try { await backoff.execute(fetchUser, id); }
 * catch (error) { if (error instanceof TimeoutError) return cached(id); throw error; }
 * ```
 */
export class TimeoutError extends Error {
  override name: 'TimeoutError' | 'AttemptTimeoutError' | 'DeadlineExceededError' = 'TimeoutError';
  /** Stable machine-readable code. */
  readonly code:
    | 'ASYNCBACKOFF_TIMEOUT'
    | 'ASYNCBACKOFF_ATTEMPT_TIMEOUT'
    | 'ASYNCBACKOFF_DEADLINE_EXCEEDED' = 'ASYNCBACKOFF_TIMEOUT';
  /** The time limit that passed, in milliseconds. */
  readonly timeout: number;

  constructor(message: string, timeout: number, options?: ErrorOptions) {
    super(message, options);
    this.timeout = timeout;
  }

  /** True for this class's instances from any copy of the package (a `Symbol.for` brand). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(TimeoutError, this, kTimeout, value);
  }
}
brand(TimeoutError, kTimeout);

/**
 * An attempt ran longer than `attemptTimeout`. It is the abort reason of that attempt's signal,
 * and it is always retriable (subject to `maxTries`, `giveup` and the deadline).
 */
export class AttemptTimeoutError extends TimeoutError {
  override name = 'AttemptTimeoutError' as const;
  override readonly code = 'ASYNCBACKOFF_ATTEMPT_TIMEOUT' as const;
  /** The 1-based number of the attempt that timed out. */
  readonly attempt: number;

  constructor(timeout: number, attempt: number, options?: ErrorOptions) {
    super(attemptTimeoutMessage(timeout, attempt), timeout, options);
    this.attempt = attempt;
  }

  /** True for this class's instances from any copy of the package (a `Symbol.for` brand). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(AttemptTimeoutError, this, kAttemptTimeout, value);
  }
}
brand(AttemptTimeoutError, kAttemptTimeout);

/**
 * The execution's `deadline` passed. It is the abort reason of the running attempt's signal, and
 * `execute` rejects with it when no attempt had failed before.
 */
export class DeadlineExceededError extends TimeoutError {
  override name = 'DeadlineExceededError' as const;
  override readonly code = 'ASYNCBACKOFF_DEADLINE_EXCEEDED' as const;
  /** Attempts started before the deadline passed. */
  readonly attempts: number;

  constructor(timeout: number, attempts: number, options?: ErrorOptions) {
    super(deadlineExceededMessage(timeout, attempts), timeout, options);
    this.attempts = attempts;
  }

  /** True for this class's instances from any copy of the package (a `Symbol.for` brand). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(DeadlineExceededError, this, kDeadline, value);
  }
}
brand(DeadlineExceededError, kDeadline);

/**
 * `retryIf` still held for the last result when tries or time ran out. Carries that result.
 * (With `returnLastResult: true` the execution resolves with the result instead.)
 */
export class RetryConditionError<TResult = unknown> extends Error {
  override name = 'RetryConditionError' as const;
  readonly code = 'ASYNCBACKOFF_RETRY_CONDITION' as const;
  /** The last value the function returned. */
  readonly lastResult: TResult;
  /** Attempts made. */
  readonly attempts: number;

  constructor(lastResult: TResult, attempts: number, options?: ErrorOptions) {
    super(`retryIf still held after ${attempts} attempt(s)`, options);
    this.lastResult = lastResult;
    this.attempts = attempts;
  }

  /** True for this class's instances from any copy of the package (a `Symbol.for` brand). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(RetryConditionError, this, kRetryCondition, value);
  }
}
brand(RetryConditionError, kRetryCondition);

const kBrokenCircuit = Symbol.for('asyncbackoff.BrokenCircuitError');
const kLockUnavailable = Symbol.for('asyncbackoff.LockUnavailableError');
const kLockLost = Symbol.for('asyncbackoff.LockLostError');

/**
 * A circuit breaker in `whenOpen: 'fail'` mode was open (or half-open with its probe in flight),
 * so the attempt was refused without calling the function.
 *
 * @example
 * ```ts
 * try { await db.execute(loadUser, id); }
 * catch (error) { if (error instanceof BrokenCircuitError) return cached(id); throw error; }
 * ```
 */
export class BrokenCircuitError extends Error {
  override name = 'BrokenCircuitError' as const;
  /** Stable machine-readable code. */
  readonly code = 'ASYNCBACKOFF_BROKEN_CIRCUIT' as const;
  /** Milliseconds until the breaker lets a probe through (0 when a probe is in flight now). */
  readonly retryAfter: number;

  constructor(retryAfter: number, options?: ErrorOptions) {
    super(
      retryAfter > 0
        ? `Circuit open: no attempt for the next ${Math.ceil(retryAfter)} ms`
        : 'Circuit half-open: a probe is in flight',
      options,
    );
    this.retryAfter = retryAfter;
  }

  /** True for this class's instances from any copy of the package (a `Symbol.for` brand). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(BrokenCircuitError, this, kBrokenCircuit, value);
  }
}
brand(BrokenCircuitError, kBrokenCircuit);

/**
 * `backoff.withLock` ran out of tries or time while the lock stayed busy (`acquire` kept
 * returning `undefined`). When an attempt failed with an error instead, that error is what
 * `withLock` rejects with.
 */
export class LockUnavailableError extends Error {
  override name = 'LockUnavailableError' as const;
  /** Stable machine-readable code. */
  readonly code = 'ASYNCBACKOFF_LOCK_UNAVAILABLE' as const;
  /** Acquisition attempts made. */
  readonly attempts: number;
  /** Milliseconds spent waiting for the lock. */
  readonly waited: number;

  constructor(attempts: number, waited: number, options?: ErrorOptions) {
    super(`Lock still busy after ${attempts} attempt(s) in ${Math.round(waited)} ms`, options);
    this.attempts = attempts;
    this.waited = waited;
  }

  /** True for this class's instances from any copy of the package (a `Symbol.for` brand). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(LockUnavailableError, this, kLockUnavailable, value);
  }
}
brand(LockUnavailableError, kLockUnavailable);

/**
 * The lock held around a `withLock` body was lost: a renewal returned `false` or failed (its
 * error is the `cause`). The body's signal aborts with this error and `withLock` rejects with it.
 */
export class LockLostError extends Error {
  override name = 'LockLostError' as const;
  /** Stable machine-readable code. */
  readonly code = 'ASYNCBACKOFF_LOCK_LOST' as const;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }

  /** True for this class's instances from any copy of the package (a `Symbol.for` brand). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(LockLostError, this, kLockLost, value);
  }
}
brand(LockLostError, kLockLost);

// The library's own timeout errors are built without a stack trace: it would show only the timer
// that fired, never the caller, and capturing it costs microseconds per expiry when thousands of
// calls time out at once. (The constructors run no user code, so the limit is always restored.)

/** @internal The error an attempt timer rejects with. */
export function attemptTimedOut(timeout: number, attempt: number): AttemptTimeoutError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error = new AttemptTimeoutError(timeout, attempt);
  Error.stackTraceLimit = limit;
  return error;
}

/** @internal The error a deadline rejects with. */
export function deadlinePassed(timeout: number, attempts: number): DeadlineExceededError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error = new DeadlineExceededError(timeout, attempts);
  Error.stackTraceLimit = limit;
  return error;
}
