/**
 * `backoff.withLock`: acquiring a lock under an instance's policy, holding it (renewing its lease)
 * while a body runs, and releasing it whatever the body does.
 */

import { type Backoff, deriveBackoff } from './backoff.js';
import { now, startTimer, stopTimer, type Timer } from './clock.js';
import { LockLostError, LockUnavailableError, RetryConditionError } from './errors.js';
import { attemptStorage } from './process-state.js';
import { SignalLink } from './signals.js';
import type { LateResultInfo } from './types.js';
import { describe, MAX_TIMER_MS, messageOf } from './validate.js';

/**
 * A lock `backoff.withLock` can take: `asyncbackoff/redis`'s `redisLock`, `asyncbackoff/postgres`'s
 * `advisoryLock`, or your own.
 *
 * @typeParam L - the lease: what `acquire` hands out and `release` takes back.
 */
export interface Lock<L> {
  /**
   * One try at taking the lock: the lease, or `undefined` when someone else holds it (busy: tried
   * again after the pause). `signal` is the attempt's: pass it on to the command.
   */
  acquire(signal: AbortSignal): Promise<L | undefined>;
  /** Gives the lease back. */
  release(lease: L): Promise<void>;
  /** Extends the lease; `false` when it is no longer held (lost). Needs `ttl`. */
  renew?: ((lease: L, signal: AbortSignal) => Promise<boolean>) | undefined;
  /** The lease's time to live, ms; with `renew`, `withLock` renews it every `ttl / 3`. */
  readonly ttl?: number | undefined;
}

function isBusy(lease: unknown): boolean {
  return lease === undefined;
}

function checkLock(lock: unknown): string | undefined {
  if (typeof lock !== 'object' || lock === null)
    return `'lock' must be an object with acquire and release, got ${describe(lock)}`;
  const { acquire, release, renew, ttl } = lock as Partial<Lock<unknown>>;
  if (typeof acquire !== 'function')
    return `'lock.acquire' must be a function, got ${describe(acquire)}`;
  if (typeof release !== 'function')
    return `'lock.release' must be a function, got ${describe(release)}`;
  if (renew !== undefined && typeof renew !== 'function')
    return `'lock.renew' must be a function or undefined, got ${describe(renew)}`;
  if (ttl !== undefined && typeof ttl !== 'number')
    return `'lock.ttl' must be a number of milliseconds or undefined, got ${describe(ttl)}`;
  if (renew !== undefined && ttl === undefined)
    return `'lock.renew' needs 'lock.ttl' (renewals are due every ttl / 3)`;
  return undefined;
}

/** @internal The implementation of `Backoff.withLock`. */
export function runWithLock<L, R>(
  backoff: Backoff<any>,
  lock: Lock<L>,
  body: (lease: L, signal: AbortSignal) => R | PromiseLike<R>,
): Promise<R> {
  const problem = checkLock(lock);
  if (problem !== undefined) return Promise.reject(new TypeError(`Backoff.withLock: ${problem}`));
  const ttl = lock.ttl;
  if (ttl !== undefined && (!(ttl > 0) || ttl > MAX_TIMER_MS))
    return Promise.reject(
      new RangeError(
        `Backoff.withLock: 'lock.ttl' must be > 0 and <= ${MAX_TIMER_MS} ms, got ${describe(ttl)}`,
      ),
    );
  if (typeof body !== 'function')
    return Promise.reject(
      new TypeError(`Backoff.withLock: 'body' must be a function, got ${describe(body)}`),
    );

  const started = now();
  // The parent attempt (if withLock runs inside one) bounds the body too; read it now, before any await.
  const parent = attemptStorage.getStore();
  /** Errors `acquire` itself threw: the engine's own RetryConditionError is never among them. */
  const thrown = new WeakSet<object>();
  /** When the latest attempt called `acquire`: the attempt a lease comes from is always the latest. */
  let attemptStartedAt = started;
  /** Leases acquired and not yet handed to the body nor released as late results. */
  const undelivered = new Set<L>();

  const acquireOnce = (): Promise<L | undefined> => {
    attemptStartedAt = now();
    const signal = attemptStorage.getStore()!.signal;
    const remember = (error: unknown): never => {
      if (typeof error === 'object' && error !== null) thrown.add(error);
      throw error;
    };
    const note = (lease: L | undefined): L | undefined => {
      if (lease !== undefined) undelivered.add(lease);
      return lease;
    };
    try {
      return Promise.resolve(lock.acquire(signal)).then(note, remember);
    } catch (error) {
      return remember(error);
    }
  };

  const userLate = backoff.core.policy.onLateResult;
  // A lease that an abandoned attempt obtained after all: nobody will use it, so give it back now
  // rather than leave the lock taken until its ttl. The user's own onLateResult is told as well.
  const onLateResult = (value: unknown, info: LateResultInfo): Promise<void> => {
    const tasks: Promise<unknown>[] = [];
    if (value !== undefined) {
      undelivered.delete(value as L);
      tasks.push(
        callAsync(() => lock.release(value as L)).catch((error: unknown) => {
          // Reported as a late-result failure: say it was withLock's own release, not the user's hook.
          throw new Error(
            `withLock: releasing a lease that an abandoned attempt obtained late failed: ${messageOf(error)}`,
            { cause: error },
          );
        }),
      );
    }
    if (userLate !== undefined) tasks.push(callAsync(() => userLate.call(undefined, value, info)));
    return Promise.allSettled(tasks).then((outcomes) => {
      const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1)
        throw new AggregateError(errors, 'Releasing a late lease and onLateResult both failed');
    });
  };

  const acquirer = deriveBackoff<unknown>(backoff, {
    retryIf: isBusy,
    returnLastResult: false,
    // `acquire` needs the attempt's signal, which the engine hands over through the context.
    context: true,
    onLateResult,
  });

  return acquirer.execute(acquireOnce).then(
    (lease) => {
      undelivered.delete(lease as L);
      return hold(lock, lease as L, body, attemptStartedAt, signalsOf(backoff, parent?.signal));
    },
    async (error: unknown) => {
      const failure =
        error instanceof RetryConditionError && !thrown.has(error)
          ? new LockUnavailableError(error.attempts, now() - started)
          : error;
      // A lease the execution got but did not resolve with (an onSuccess hook threw): release it.
      const leftover = [...undelivered];
      undelivered.clear();
      const releases = await Promise.allSettled(
        leftover.map((l) => callAsync(() => lock.release(l))),
      );
      const releaseErrors = releases.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
      if (releaseErrors.length > 0)
        throw new AggregateError(
          [failure, ...releaseErrors],
          'Backoff.withLock: acquiring failed and releasing the lease it took failed too',
          { cause: failure },
        );
      throw failure;
    },
  );
}

/** Calls `fn`, turning a synchronous throw into a rejection. */
function callAsync<T>(fn: () => T | PromiseLike<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The signals that abort a body: the instance's and view's (`signal`, `withSignal`) and the parent attempt's. */
function signalsOf(backoff: Backoff<any>, parent: AbortSignal | undefined): AbortSignal[] {
  const signals = backoff.link === undefined ? [] : [...backoff.link.signals];
  if (parent !== undefined) signals.push(parent);
  return signals;
}

/** Renews a lease every ttl / 3 and declares it lost if a renewal fails or does not answer in time. */
class Renewal<L> {
  private timer: Timer | undefined = undefined;
  private inFlight: AbortController | undefined = undefined;
  private stopped = false;

  constructor(
    private readonly lock: Lock<L>,
    private readonly lease: L,
    private readonly ttl: number,
    /** When the lease was last confirmed (its acquire or renew was sent). */
    private confirmedAt: number,
    private readonly onLost: (error: LockLostError) => void,
  ) {
    this.schedule();
  }

  /** Arms the timer for the next renewal, and, past it, for the lease's expiry. */
  private schedule(): void {
    const due = this.confirmedAt + this.ttl / 3 - now();
    this.timer = startTimer(() => this.renew(), Math.max(0, due));
  }

  /** Runs from the timer `schedule` armed, which `stop` clears: never after a stop. */
  private renew(): void {
    const sentAt = now();
    const controller = new AbortController();
    this.inFlight = controller;
    // Unanswered when the lease would run out: it is gone as far as anyone can tell.
    this.timer = startTimer(
      () =>
        this.lose(
          new LockLostError(`Lock lost: a renewal did not answer within the ${this.ttl} ms ttl`),
        ),
      Math.max(0, this.confirmedAt + this.ttl - sentAt),
    );
    let pending: Promise<boolean>;
    try {
      pending = Promise.resolve(this.lock.renew!(this.lease, controller.signal));
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (renewed) => {
        if (this.stopped || this.inFlight !== controller) return;
        this.inFlight = undefined;
        this.clearTimer();
        if (renewed !== true) {
          this.lose(new LockLostError('Lock lost: a renewal found the lease gone'));
          return;
        }
        this.confirmedAt = sentAt;
        this.schedule();
      },
      (error: unknown) => {
        if (this.stopped || this.inFlight !== controller) return;
        this.lose(new LockLostError('Lock lost: a renewal failed', { cause: error }));
      },
    );
  }

  /** Called by the expiry timer (cleared by `stop`) or a renewal's answer (checked for a stop). */
  private lose(error: LockLostError): void {
    this.stop(error);
    this.onLost(error);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      stopTimer(this.timer);
      this.timer = undefined;
    }
  }

  /** Stops renewing; a renewal in flight is aborted with `reason`. */
  stop(reason?: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimer();
    const inFlight = this.inFlight;
    this.inFlight = undefined;
    inFlight?.abort(reason);
  }
}

/** Runs `body` while `lease` is held, then releases it; see `Backoff.withLock` for the outcome. */
async function hold<L, R>(
  lock: Lock<L>,
  lease: L,
  body: (lease: L, signal: AbortSignal) => R | PromiseLike<R>,
  acquiredAt: number,
  signals: readonly AbortSignal[],
): Promise<R> {
  const controller = new AbortController();
  // Through the signals' shared hubs, as executions are: a listener per body on a long-lived
  // signal would add up (and warn past 10) when many bodies run on an instance bound to shutdown.
  const link = signals.length === 0 ? undefined : new SignalLink(signals);
  let joined: ReturnType<SignalLink['join']> | undefined;
  let lost: LockLostError | undefined;
  let renewal: Renewal<L> | undefined;
  let failed = false;
  let failure: unknown;
  let value: R | undefined;
  try {
    // Cancelled between the acquisition and now: the body is not started (as `fn` never is).
    for (const signal of signals) signal.throwIfAborted();
    joined = link?.join({ cancel: (reason: unknown) => controller.abort(reason) });
    if (lock.renew !== undefined && lock.ttl !== undefined)
      renewal = new Renewal(lock, lease, lock.ttl, acquiredAt, (error) => {
        lost = error;
        controller.abort(error);
      });
    value = await body(lease, controller.signal);
  } catch (error) {
    failed = true;
    failure = error;
  } finally {
    renewal?.stop();
    if (joined !== undefined) link!.leave(joined);
  }
  if (lost !== undefined) {
    failed = true;
    failure = lost;
  }
  try {
    await lock.release(lease);
  } catch (releaseError) {
    // The adapter found the lease already gone (a PostgreSQL session that ended): that is the loss
    // the call rejects with, not a second failure.
    if (lost !== undefined && releaseError instanceof LockLostError) throw lost;
    if (!failed) throw releaseError;
    throw new AggregateError(
      [failure, releaseError],
      'Backoff.withLock: the body failed and releasing the lock failed too',
      { cause: failure },
    );
  }
  if (failed) throw failure;
  return value as R;
}
