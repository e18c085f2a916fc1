/**
 * The `Backoff` class: a validated, immutable policy plus the shared state (timers, statistics)
 * that every execution through it uses.
 */

import { type BatchOutcome, type MapOptions, runBatch } from './batch.js';
import { attemptsIterable, type BlockAttempt } from './block.js';
import { type Core, createCore, run } from './engine.js';
import { type Lock, runWithLock } from './lock.js';
import { type BackoffOptions, normalizeOptions, type Policy } from './options.js';
import { SignalLink } from './signals.js';
import type { BackoffStatistics } from './types.js';
import { describe } from './validate.js';

/**
 * A retry policy with per-attempt timeouts, a global deadline, pauses, error filters and
 * cancellation. One instance is meant to be shared: by every call to a database, by a batch, by
 * concurrent requests. Its statistics count them all.
 *
 * @typeParam TResult - what the guarded functions return; inferred from `retryIf` when given.
 *
 * @throws TypeError when an option has the wrong type, RangeError when a number is out of range.
 *
 * @example
 * ```ts
 * const db = new Backoff({ attemptTimeout: 200, deadline: 1000, pause: 50, exceptions: [ConnectionError] });
 * const user = await db.execute(findUser, id);           // typed from findUser
 * const save = db.wrap(saveUser);                         // same signature, now retried
 * ```
 */
export class Backoff<TResult = unknown> {
  /** @internal */ readonly core: Core;
  /** @internal */ readonly link: SignalLink | undefined;
  private views: WeakMap<AbortSignal, Backoff<TResult>> | undefined = undefined;

  constructor(options?: BackoffOptions<TResult>) {
    const policy = normalizeOptions(options);
    this.core = createCore(policy);
    this.link = instanceLink(policy);
  }

  /**
   * Calls `fn(...args)` under the policy and returns what it returns. Inside `fn`,
   * `currentAttempt()` gives the attempt's signal, number and remaining time (unless the instance
   * was built with `context: false`).
   *
   * @returns the first successful result.
   * @throws (rejects with) the last attempt's error, exactly as thrown; a `DeadlineExceededError`
   * when the deadline passed before any attempt failed; a cancelling signal's `reason`; a
   * `RetryConditionError` when `retryIf` still held at the end.
   *
   * @example
   * ```ts
   * const rows = await backoff.execute((sql: string) => pool.query(sql), 'SELECT 1');
   * ```
   */
  execute<A extends unknown[], R extends TResult>(
    fn: (...args: A) => R | PromiseLike<R>,
    ...args: A
  ): Promise<R> {
    if (typeof fn !== 'function')
      return Promise.reject(
        new TypeError(`Backoff.execute: 'fn' must be a function, got ${describe(fn)}`),
      );
    return run<R>(this.core, this.link, fn, undefined, args);
  }

  /**
   * Returns an async function with `fn`'s parameters whose calls run under this policy. `this` is
   * passed through, so the result can be assigned as a method.
   *
   * @throws TypeError when `fn` is not a function.
   * @example
   * ```ts
   * const getUser = backoff.wrap(async (id: string) => (await pool.query(q, [id])).rows[0]);
   * ```
   */
  wrap<This, A extends unknown[], R extends TResult>(
    fn: (this: This, ...args: A) => R | PromiseLike<R>,
  ): (this: This, ...args: A) => Promise<R> {
    if (typeof fn !== 'function')
      throw new TypeError(`Backoff.wrap: 'fn' must be a function, got ${describe(fn)}`);
    const core = this.core;
    const link = this.link;
    const wrapped = function (this: This, ...args: A): Promise<R> {
      return run<R>(core, link, fn, this, args);
    };
    Object.defineProperty(wrapped, 'name', { value: fn.name, configurable: true });
    return wrapped;
  }

  /**
   * A view of this instance that also stops on `signal`: same policy, same timers, same
   * statistics. Each signal gets one abort listener however many views and calls use it, so a
   * view per request on an instance bound to `shutdown` adds no listener to `shutdown`.
   *
   * @throws TypeError when `signal` is not an AbortSignal.
   * @example
   * ```ts
   * app.get('/user/:id', (req, res) => backoff.withSignal(req.signal).execute(loadUser, req.params.id));
   * ```
   */
  withSignal(signal: AbortSignal): Backoff<TResult> {
    if (!(signal instanceof AbortSignal))
      throw new TypeError(
        `Backoff.withSignal: 'signal' must be an AbortSignal, got ${describe(signal)}`,
      );
    this.views ??= new WeakMap();
    let view = this.views.get(signal);
    if (view === undefined) {
      const link = this.link === undefined ? new SignalLink([signal]) : this.link.with(signal);
      view = assemble<TResult>(this.core, link);
      this.views.set(signal, view);
    }
    return view;
  }

  /**
   * The code-block form (tenacity's `for attempt in Retrying()`, aomaker's `AoMakerRetry`): retries
   * the body of a `for await` loop in place under this policy — attempt signal and timeout,
   * deadline, pauses, filters, `maxTries`, `giveup`, hooks.
   *
   * Report each pass with `attempt.succeed()` or `attempt.fail(error)`. An unreported pass is a
   * `TypeError` at the next iteration, and leaving the loop after `fail(error)` rethrows `error`,
   * so a forgotten report can neither retry forever nor swallow an error. An attempt timeout cannot
   * interrupt the body: honour `attempt.signal` inside it.
   *
   * @example
   * ```ts
   * let lock: Lock | undefined;
   * for await (const attempt of backoff.attempts()) {
   *   try {
   *     lock = await locks.acquire('jobs', { signal: attempt.signal });
   *     attempt.succeed();
   *   } catch (error) {
   *     attempt.fail(error); // retried if the policy allows; otherwise thrown from the loop
   *   }
   * }
   * ```
   */
  attempts(): AsyncIterable<BlockAttempt> {
    return attemptsIterable(this.core, this.link);
  }

  /**
   * Runs `fn(item, index)` for every item through this instance, at most `concurrency` at a time,
   * pulling items lazily (an iterable of a million items holds no million promises). Results come
   * in input order. Inside `fn`, `currentAttempt()` gives the attempt's signal as usual (unless
   * the instance was built with `context: false`).
   *
   * @returns the results in input order; with `settled: true`, each item's outcome.
   * @throws (rejects with) the first final failure (`stopOnError`, the default: items in flight
   * are aborted), an `AggregateError` of all failures (`stopOnError: false`), or the `signal`'s
   * reason.
   *
   * @example
   * ```ts
   * const rows = await backoff.map(userIds, (id) => pool.query(q, [id]), { concurrency: 20 });
   * const outcomes = await backoff.map(jobs, runJob, { settled: true, onProgress: console.log });
   * ```
   */
  map<T, R extends TResult>(
    items: Iterable<T> | AsyncIterable<T>,
    fn: (item: T, index: number) => R | PromiseLike<R>,
    options: MapOptions & { settled: true },
  ): Promise<BatchOutcome<R, T>[]>;
  map<T, R extends TResult>(
    items: Iterable<T> | AsyncIterable<T>,
    fn: (item: T, index: number) => R | PromiseLike<R>,
    options?: MapOptions & { settled?: false | undefined },
  ): Promise<R[]>;
  map<T, R extends TResult>(
    items: Iterable<T> | AsyncIterable<T>,
    fn: (item: T, index: number) => R | PromiseLike<R>,
    options?: MapOptions,
  ): Promise<R[] | BatchOutcome<R, T>[]> {
    return runBatch(this, items, fn, options);
  }

  /**
   * Takes `lock` under this policy, runs `body(lease, signal)` while holding it, and releases it
   * whatever `body` does.
   *
   * - Acquiring: every attempt calls `lock.acquire(signal)` with the attempt's signal. `undefined`
   *   means busy and is tried again after the pause (as a `retryIf` result would be); a thrown
   *   error is retried or not as any error is. The deadline and `maxTries` bound the acquisition,
   *   not the body. A lease that an abandoned attempt (timed out, past the deadline, cancelled)
   *   obtains afterwards is released at once.
   * - Holding: with `lock.renew` and `lock.ttl`, the lease is renewed every `ttl / 3`. A renewal
   *   that returns `false`, fails, or has not answered when the lease would expire aborts the
   *   body's `signal` with a `LockLostError`, and the call rejects with it once `body` has
   *   settled. The signal also aborts when this instance's or view's signals abort, or the
   *   attempt `withLock` runs in ends. The lock is released only once `body` has settled, so
   *   honour the signal inside it.
   * - The outcome: `body`'s result. If `body` fulfilled but the release failed, the call rejects
   *   with the release error. If `body` failed (or the lease was lost) and the release failed too,
   *   it rejects with an `AggregateError` of both, `body`'s error first (and as its `cause`);
   *   but a lost lease whose release fails with a `LockLostError` (the adapter found it gone)
   *   rejects with the loss's `LockLostError` alone.
   *
   * @typeParam L - the lease, inferred from `lock.acquire`.
   * @throws (rejects with) a `LockUnavailableError` when tries or time ran out while the lock was
   * busy; the last attempt's error when attempts failed; a `LockLostError` when the lease was lost
   * while `body` ran; a `TypeError` for a `lock` without `acquire` and `release`, or with `renew`
   * but no `ttl`.
   *
   * @example
   * ```ts
   * const lock = redisLock(redis, 'lock:nightly-report', { ttl: 10_000 });
   * await locks.withLock(lock, async (lease, signal) => buildReport({ fence: lease.fencingToken, signal }));
   * ```
   */
  withLock<L, R>(
    lock: Lock<L>,
    body: (lease: L, signal: AbortSignal) => R | PromiseLike<R>,
  ): Promise<R> {
    return runWithLock(this, lock, body);
  }

  /**
   * A snapshot of the counters shared by this instance and its views.
   * @example
   * ```ts
   * const { attempts, errors, timeouts } = backoff.statistics;
   * ```
   */
  get statistics(): BackoffStatistics {
    return Object.freeze({ ...this.core.stats });
  }
}

/** The link to the instance-wide `signal` option, if any. */
function instanceLink(policy: Policy): SignalLink | undefined {
  return policy.signal === undefined ? undefined : new SignalLink([policy.signal]);
}

/** A `Backoff` over `core` and `link`, built without the constructor (views, derived policies). */
function assemble<T>(core: Core, link: SignalLink | undefined): Backoff<T> {
  const backoff = Object.create(Backoff.prototype) as Backoff<T>;
  Object.assign(backoff, { core, link, views: undefined });
  return backoff;
}

/** @internal `new Backoff(options)` whose option errors are prefixed with `where` (`asyncretry`, ...). */
export function backoffFor<T>(where: string, options: BackoffOptions<T>): Backoff<T> {
  const policy = normalizeOptions(options, where);
  return assemble<T>(createCore(policy), instanceLink(policy));
}

/**
 * @internal A `Backoff` with `base`'s policy changed by `overrides`, sharing `base`'s statistics and
 * signals (for wrappers such as `createFetch` that must add their own filters to a user's policy).
 */
export function deriveBackoff<T>(base: Backoff<any>, overrides: Partial<Policy>): Backoff<T> {
  const { policy, stats, notes } = base.core;
  return assemble<T>(
    createCore(Object.freeze({ ...policy, ...overrides }), stats, notes),
    base.link,
  );
}
