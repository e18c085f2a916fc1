/**
 * A circuit breaker shared between instances (pass the same object as `breaker`, like `budget`).
 * While the dependency fails, it stops attempts from reaching it: `'fail'` rejects them at once
 * with a `BrokenCircuitError`, `'wait'` holds them until a probe succeeds, within each execution's
 * deadline and signals. The engine drives it through the small protocol below (`tryPass`,
 * `record*`, `release`, `onReady`); nothing here knows about executions.
 *
 * Time is read at call time (`performance.now`, `setTimeout` through `globalThis`), so a fake
 * clock drives it, and a timer runs only while someone waits in `onReady` for an open circuit.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { now, startTimer, stopTimer, type Timer } from './clock.js';
import { attemptStorage } from './process-state.js';
import type { BreakerPass, CircuitBreaker, CircuitState } from './types.js';
import { checkCount, checkOptions, checkOptionTime, describe } from './validate.js';

/** Why the circuit changed state. */
export type CircuitChangeReason =
  /** `consecutiveFailures` failures in a row (closed → open). */
  | 'consecutive-failures'
  /** `failureRatio` reached over `window` with at least `minimumCalls` calls (closed → open). */
  | 'failure-ratio'
  /** `halfOpenAfter` passed since it opened (open → half-open). */
  | 'delay-elapsed'
  /** The probe failed (half-open → open). */
  | 'probe-failed'
  /** The probe succeeded (half-open → closed). */
  | 'probe-succeeded';

/** One state change, as given to `onStateChange` and published on {@link BREAKER_CHANNEL}. */
export interface CircuitStateChange {
  readonly breaker: CircuitBreaker;
  /** The breaker's `name` option, if given. */
  readonly name: string | undefined;
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: CircuitChangeReason;
  /** When it changed, on `performance.now()`'s clock. */
  readonly at: number;
}

/** Counters of a breaker, for dashboards and tests (a frozen snapshot). */
export interface CircuitBreakerStats {
  /** The state now. */
  readonly state: CircuitState;
  /** Times it opened (from closed or after a failed probe). */
  readonly opened: number;
  /** Times it became half-open. */
  readonly halfOpened: number;
  /** Times it closed again after a successful probe. */
  readonly closed: number;
  /** Passes handed out (probes included). */
  readonly passed: number;
  /** `tryPass` calls refused: attempts failed with `BrokenCircuitError` or held back. */
  readonly rejected: number;
  /** Passes reported with `recordSuccess`. */
  readonly successes: number;
  /** Passes reported with `recordFailure`. */
  readonly failures: number;
  /** Passes given back with `release` (the attempt told nothing about the dependency). */
  readonly released: number;
  /** Failures in a row while closed, now. */
  readonly consecutiveFailures: number;
}

/** What {@link circuitBreaker} returns: the engine's breaker protocol plus its counters. */
export interface CountingCircuitBreaker extends CircuitBreaker {
  /** A frozen snapshot of the counters. */
  readonly stats: CircuitBreakerStats;
}

/** Options of {@link circuitBreaker}. */
export interface CircuitBreakerOptions {
  /**
   * What an attempt meets while the circuit is open (or half-open with its probe in flight):
   * `'fail'` rejects it at once with a `BrokenCircuitError` without calling the function;
   * `'wait'` holds it until a pass is available, within its execution's deadline and signals.
   * @defaultValue `'fail'`
   */
  readonly whenOpen?: 'fail' | 'wait' | undefined;
  /**
   * Open after this many failed attempts in a row (an integer ≥ 1), or `null` for no such rule.
   * @defaultValue `5`
   */
  readonly consecutiveFailures?: number | null | undefined;
  /**
   * Open when at least this share of the attempts over the last `window` ms failed (in (0, 1]),
   * once `minimumCalls` attempts were made in it; `null` for no such rule.
   * @defaultValue `null`
   */
  readonly failureRatio?: number | null | undefined;
  /**
   * The sliding window of `failureRatio`, in ms (only with `failureRatio`).
   * @defaultValue `10_000`
   */
  readonly window?: number | undefined;
  /**
   * Attempts needed in the window before `failureRatio` may open the circuit (an integer ≥ 1; only
   * with `failureRatio`).
   * @defaultValue `10`
   */
  readonly minimumCalls?: number | undefined;
  /**
   * How long the circuit stays open before it lets one probe through, in ms (> 0).
   * @defaultValue `1_000`
   */
  readonly halfOpenAfter?: number | undefined;
  /** Called after every state change. A throw is reported with `process.emitWarning`. */
  readonly onStateChange?: ((change: CircuitStateChange) => void) | undefined;
  /** A name for state-change events (dashboards, logs). */
  readonly name?: string | undefined;
}

/**
 * The `node:diagnostics_channel` channel every breaker publishes its state changes on (a
 * {@link CircuitStateChange}); published only when subscribed.
 */
export const BREAKER_CHANNEL = 'asyncbackoff:breaker';

const channel = diagnosticsChannel.channel(BREAKER_CHANNEL);

const KEYS = [
  'whenOpen',
  'consecutiveFailures',
  'failureRatio',
  'window',
  'minimumCalls',
  'halfOpenAfter',
  'onStateChange',
  'name',
];

/** Buckets of the failure-ratio window: the window slides in steps of window / BUCKETS. */
const BUCKETS = 10;

const WHERE = 'circuitBreaker';

function time(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  return checkOptionTime(WHERE, name, value, { allowZero: false, limit: false });
}

function count(
  name: string,
  value: unknown,
  fallback: number | null,
  nullable: boolean,
): number | null {
  if (value === undefined) return fallback;
  if (value === null && nullable) return null;
  try {
    return checkCount(WHERE, name, value, { min: 1, limit: false });
  } catch (error) {
    // Say that null is allowed where it is.
    if (nullable && error instanceof Error)
      error.message = error.message.replace(', got', ' (or null), got');
    throw error;
  }
}

/** Reports a throw from a user callback without disturbing the breaker's state or its caller. */
function report(error: unknown): void {
  try {
    process.emitWarning(
      `asyncbackoff: a circuit breaker callback threw: ${error instanceof Error ? error.message : describe(error)}`,
      { type: 'AsyncBackoffWarning', code: 'ASYNCBACKOFF_BREAKER_CALLBACK_FAILED' },
    );
  } catch {
    // emitWarning itself failing (a broken 'warning' listener) must not break the breaker either.
  }
}

class Pass implements BreakerPass {
  settled = false;
  constructor(
    readonly owner: CircuitBreakerImpl,
    readonly probe: boolean,
    /** The closed period it was handed out in: a pass from before the last opening counts for nothing. */
    readonly epoch: number,
  ) {}
}

interface Waiter {
  readonly callback: () => void;
  done: boolean;
}

class CircuitBreakerImpl implements CountingCircuitBreaker {
  readonly whenOpen: 'fail' | 'wait';
  readonly #consecutiveLimit: number | null;
  readonly #ratio: number | null;
  readonly #bucketMs: number;
  readonly #minimumCalls: number;
  readonly #halfOpenAfter: number;
  readonly #onStateChange: ((change: CircuitStateChange) => void) | undefined;
  readonly #name: string | undefined;

  #state: CircuitState = 'closed';
  #openedAt = 0;
  #probeOut = false;
  #epoch = 0;
  #consecutive = 0;
  // The failure-ratio window: per bucket, its index (time / bucketMs) and its counts.
  readonly #bucketIds = new Array<number>(BUCKETS).fill(Number.NEGATIVE_INFINITY);
  readonly #bucketCalls = new Array<number>(BUCKETS).fill(0);
  readonly #bucketFailures = new Array<number>(BUCKETS).fill(0);

  readonly #waiters = new Set<Waiter>();
  #timer: Timer | undefined = undefined;

  #opened = 0;
  #halfOpened = 0;
  #closed = 0;
  #passed = 0;
  #rejected = 0;
  #successes = 0;
  #failures = 0;
  #released = 0;

  constructor(options: CircuitBreakerOptions) {
    const whenOpen = options.whenOpen === undefined ? 'fail' : options.whenOpen;
    if (whenOpen !== 'fail' && whenOpen !== 'wait')
      throw new TypeError(
        `${WHERE}: 'whenOpen' must be 'fail' or 'wait', got ${describe(whenOpen)}`,
      );
    this.whenOpen = whenOpen;
    this.#consecutiveLimit = count('consecutiveFailures', options.consecutiveFailures, 5, true);
    const ratio = options.failureRatio;
    if (ratio === undefined || ratio === null) {
      this.#ratio = null;
      for (const name of ['window', 'minimumCalls'] as const)
        if (options[name] !== undefined)
          throw new TypeError(
            `${WHERE}: '${name}' applies only with 'failureRatio', which is not set`,
          );
    } else {
      if (typeof ratio !== 'number')
        throw new TypeError(
          `${WHERE}: 'failureRatio' must be a number in (0, 1] or null, got ${describe(ratio)}`,
        );
      if (!(ratio > 0 && ratio <= 1))
        throw new RangeError(`${WHERE}: 'failureRatio' must be in (0, 1], got ${describe(ratio)}`);
      this.#ratio = ratio;
    }
    this.#bucketMs = time('window', options.window, 10_000) / BUCKETS;
    this.#minimumCalls = count('minimumCalls', options.minimumCalls, 10, false)!;
    if (this.#consecutiveLimit === null && this.#ratio === null)
      throw new TypeError(
        `${WHERE}: 'consecutiveFailures' and 'failureRatio' are both null: the circuit could never open`,
      );
    this.#halfOpenAfter = time('halfOpenAfter', options.halfOpenAfter, 1_000);
    const onStateChange = options.onStateChange;
    if (onStateChange !== undefined && typeof onStateChange !== 'function')
      throw new TypeError(
        `${WHERE}: 'onStateChange' must be a function, got ${describe(onStateChange)}`,
      );
    this.#onStateChange = onStateChange;
    const name = options.name;
    if (name !== undefined && typeof name !== 'string')
      throw new TypeError(`${WHERE}: 'name' must be a string, got ${describe(name)}`);
    this.#name = name;
  }

  get state(): CircuitState {
    this.#advance();
    return this.#state;
  }

  get stats(): CircuitBreakerStats {
    return Object.freeze({
      state: this.state,
      opened: this.#opened,
      halfOpened: this.#halfOpened,
      closed: this.#closed,
      passed: this.#passed,
      rejected: this.#rejected,
      successes: this.#successes,
      failures: this.#failures,
      released: this.#released,
      consecutiveFailures: this.#consecutive,
    });
  }

  tryPass(): BreakerPass | undefined {
    this.#advance();
    if (this.#state === 'closed') {
      this.#passed++;
      return new Pass(this, false, this.#epoch);
    }
    if (this.#state === 'half-open' && !this.#probeOut) {
      this.#probeOut = true;
      this.#passed++;
      return new Pass(this, true, this.#epoch);
    }
    this.#rejected++;
    return undefined;
  }

  recordSuccess(pass: BreakerPass): void {
    const own = this.#settle('recordSuccess', pass);
    if (own === undefined) return;
    this.#successes++;
    if (own.probe) {
      this.#probeOut = false;
      this.#epoch++;
      this.#consecutive = 0;
      this.#bucketIds.fill(Number.NEGATIVE_INFINITY);
      this.#transition('closed', 'probe-succeeded');
      this.#notify();
    } else if (this.#state === 'closed' && own.epoch === this.#epoch) {
      this.#consecutive = 0;
      this.#count(false);
    }
  }

  recordFailure(pass: BreakerPass): void {
    const own = this.#settle('recordFailure', pass);
    if (own === undefined) return;
    this.#failures++;
    if (own.probe) {
      this.#probeOut = false;
      this.#open('probe-failed');
    } else if (this.#state === 'closed' && own.epoch === this.#epoch) {
      this.#consecutive++;
      const ratio = this.#count(true);
      if (this.#consecutiveLimit !== null && this.#consecutive >= this.#consecutiveLimit)
        this.#open('consecutive-failures');
      else if (ratio) this.#open('failure-ratio');
    }
  }

  release(pass: BreakerPass): void {
    const own = this.#settle('release', pass);
    if (own === undefined) return;
    this.#released++;
    if (own.probe) {
      this.#probeOut = false;
      this.#notify();
    }
  }

  retryAfter(): number {
    this.#advance();
    return this.#state === 'open' ? Math.max(0, this.#openedAt + this.#halfOpenAfter - now()) : 0;
  }

  onReady(callback: () => void): () => void {
    if (typeof callback !== 'function')
      throw new TypeError(
        `CircuitBreaker.onReady: 'callback' must be a function, got ${describe(callback)}`,
      );
    const waiter: Waiter = { callback, done: false };
    this.#advance();
    if (this.#ready()) this.#deliver(waiter);
    else {
      this.#waiters.add(waiter);
      this.#arm();
    }
    return () => {
      if (waiter.done) return;
      waiter.done = true;
      this.#waiters.delete(waiter);
      if (this.#waiters.size === 0) this.#disarm();
    };
  }

  get [Symbol.toStringTag](): string {
    return 'CircuitBreaker';
  }

  #ready(): boolean {
    return this.#state === 'closed' || (this.#state === 'half-open' && !this.#probeOut);
  }

  /** Checks that `pass` is this breaker's and unreported; returns it, or undefined if already reported. */
  #settle(method: string, pass: BreakerPass): Pass | undefined {
    if (!(pass instanceof Pass) || pass.owner !== this)
      throw new TypeError(
        `CircuitBreaker.${method}: 'pass' must be a pass this breaker's tryPass() returned, got ${describe(pass)}`,
      );
    // A pass counts once: a second report of the same attempt would count it twice.
    if (pass.settled) return undefined;
    pass.settled = true;
    return pass;
  }

  /** Counts one call in the window; returns whether the failure ratio now calls for opening. */
  #count(failed: boolean): boolean {
    if (this.#ratio === null) return false;
    const id = Math.floor(now() / this.#bucketMs);
    const slot = ((id % BUCKETS) + BUCKETS) % BUCKETS;
    if (this.#bucketIds[slot] !== id) {
      this.#bucketIds[slot] = id;
      this.#bucketCalls[slot] = 0;
      this.#bucketFailures[slot] = 0;
    }
    this.#bucketCalls[slot]!++;
    if (failed) this.#bucketFailures[slot]!++;
    if (!failed) return false;
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++)
      if (this.#bucketIds[i]! > id - BUCKETS) {
        calls += this.#bucketCalls[i]!;
        failures += this.#bucketFailures[i]!;
      }
    return calls >= this.#minimumCalls && failures >= this.#ratio * calls;
  }

  #open(reason: CircuitChangeReason): void {
    this.#openedAt = now();
    this.#transition('open', reason);
    if (this.#waiters.size > 0) this.#arm();
  }

  /** Open → half-open once `halfOpenAfter` has passed; observed lazily, so no timer is needed for it. */
  #advance(): void {
    if (this.#state === 'open' && now() >= this.#openedAt + this.#halfOpenAfter) {
      this.#transition('half-open', 'delay-elapsed');
      this.#notify();
    }
  }

  #transition(to: CircuitState, reason: CircuitChangeReason): void {
    const from = this.#state;
    this.#state = to;
    if (to === 'open') this.#opened++;
    else if (to === 'half-open') this.#halfOpened++;
    else this.#closed++;
    if (this.#onStateChange === undefined && !channel.hasSubscribers) return;
    const change: CircuitStateChange = Object.freeze({
      breaker: this,
      name: this.#name,
      from,
      to,
      reason,
      at: now(),
    });
    if (this.#onStateChange !== undefined)
      try {
        this.#onStateChange(change);
      } catch (error) {
        report(error);
      }
    if (channel.hasSubscribers) channel.publish(change);
  }

  /** Wakes every waiter (they then compete for the pass with `tryPass`). */
  #notify(): void {
    this.#disarm();
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) this.#deliver(waiter);
  }

  /** Calls a waiter in a microtask: never from inside `tryPass`/`record*` (the caller's own stack). */
  #deliver(waiter: Waiter): void {
    void Promise.resolve().then(() => {
      if (waiter.done) return;
      waiter.done = true;
      try {
        waiter.callback();
      } catch (error) {
        report(error);
      }
    });
  }

  /** While someone waits on an open circuit, a timer moves it to half-open on time. */
  #arm(): void {
    if (this.#timer !== undefined || this.#state !== 'open') return;
    const delay = Math.max(1, Math.ceil(this.#openedAt + this.#halfOpenAfter - now()));
    this.#timer = attemptStorage.exit(startTimer, this.#fire, delay);
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    stopTimer(this.#timer);
    this.#timer = undefined;
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#advance();
    // Fired a fraction of a millisecond early on a fake or coarse clock: wait the rest.
    if (this.#state === 'open' && this.#waiters.size > 0) this.#arm();
  };
}

/**
 * A circuit breaker to share between every `Backoff` that calls one dependency (pass it as the
 * `breaker` option). It opens after `consecutiveFailures` failed attempts in a row, or when
 * `failureRatio` of the attempts over the last `window` ms failed (once `minimumCalls` were made);
 * after `halfOpenAfter` ms it lets one probe through; the probe's success closes it, its failure
 * opens it again for another `halfOpenAfter`.
 *
 * While open, `whenOpen: 'fail'` rejects attempts at once with a `BrokenCircuitError` (without
 * calling the function) and `'wait'` holds them until a pass is available, within each execution's
 * deadline and signals; `backoff.map` stops pulling new items either way.
 *
 * State changes are visible three ways: the `onStateChange` option, `stats` (`opened`,
 * `halfOpened`, `closed`, ...), and the `diagnostics_channel` named {@link BREAKER_CHANNEL}.
 *
 * @throws TypeError for an option of the wrong type, an unknown option, `window`/`minimumCalls`
 * without `failureRatio`, or both rules set to `null`; RangeError for a number out of range.
 *
 * @example
 * ```ts
 * const pgBreaker = circuitBreaker({ whenOpen: 'wait', consecutiveFailures: 5, halfOpenAfter: 1_000 });
 * const db = new Backoff({ deadline: 30_000, retryOn: isTransientPgError, breaker: pgBreaker });
 * ```
 */
export function circuitBreaker(options: CircuitBreakerOptions = {}): CountingCircuitBreaker {
  checkOptions(WHERE, options, KEYS);
  return new CircuitBreakerImpl(options);
}
