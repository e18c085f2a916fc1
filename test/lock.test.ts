/**
 * `backoff.withLock(lock, body)` through the public API on fake timers, with an in-memory lock:
 * acquisition (busy, errors, signals), renewal, loss, release and its failures, cancellation of
 * the body, and that nothing (timer, listener) outlives the call.
 */
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  Backoff,
  type BackoffOptions,
  currentAttempt,
  DeadlineExceededError,
  type Lock,
  LockLostError,
  LockUnavailableError,
  RetryConditionError,
} from '../src/index.js';
import { type InstalledClock, installFakeClock, nextMacrotask } from './support/clock.js';

let clock: InstalledClock;

beforeEach(() => {
  clock = installFakeClock();
});
afterEach(() => {
  clock.uninstall();
});

class Transient extends Error {}
class Fatal extends Error {}

interface Lease {
  readonly token: number;
}

type Step = 'busy' | 'lease' | Error | { hang: true } | { after: number; gives: 'busy' | 'lease' };

/**
 * A lock in memory. `acquire` follows `steps` (then leases); it holds one holder at a time, as a
 * real lock would, so a test can see whether a lease is left behind.
 */
class MemoryLock implements Lock<Lease> {
  holder: Lease | undefined = undefined;
  next = 1;
  readonly signals: AbortSignal[] = [];
  readonly released: Lease[] = [];
  readonly renewals: { at: number; signal: AbortSignal }[] = [];
  releaseError: unknown = undefined;
  /** What each renewal does: true, false, an error to throw, or 'hang'. */
  renewWith: boolean | Error | 'hang' = true;
  ttl: number | undefined;
  renew: ((lease: Lease, signal: AbortSignal) => Promise<boolean>) | undefined;

  constructor(
    readonly steps: Step[] = [],
    options: { ttl?: number; renew?: boolean } = {},
  ) {
    this.ttl = options.ttl;
    this.renew =
      options.renew === true || (options.renew === undefined && options.ttl !== undefined)
        ? (lease, signal) => this.doRenew(lease, signal)
        : undefined;
  }

  private take(): Lease | undefined {
    if (this.holder !== undefined) return undefined;
    this.holder = { token: this.next++ };
    return this.holder;
  }

  acquire(signal: AbortSignal): Promise<Lease | undefined> {
    this.signals.push(signal);
    const step = this.steps.shift() ?? 'lease';
    if (step === 'busy') return Promise.resolve(undefined);
    if (step === 'lease') return Promise.resolve(this.take());
    if (step instanceof Error) return Promise.reject(step);
    if ('hang' in step) return new Promise(() => {});
    return new Promise((resolve) =>
      setTimeout(() => resolve(step.gives === 'lease' ? this.take() : undefined), step.after),
    );
  }

  async release(lease: Lease): Promise<void> {
    this.released.push(lease);
    if (this.holder === lease) this.holder = undefined;
    if (this.releaseError !== undefined) throw this.releaseError;
  }

  private doRenew(lease: Lease, signal: AbortSignal): Promise<boolean> {
    this.renewals.push({ at: clock.now, signal });
    const outcome = this.renewWith;
    if (outcome === 'hang') return new Promise(() => {});
    if (outcome instanceof Error) return Promise.reject(outcome);
    return Promise.resolve(outcome && this.holder === lease);
  }
}

/** Observes a promise so that it never counts as unhandled. */
function observe<T>(promise: Promise<T>) {
  const state = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

/** A body that runs for `ms` (or until its signal aborts, then rejects with the reason). */
function bodyFor<T>(ms: number, value: T, seen: { signal?: AbortSignal; lease?: Lease } = {}) {
  return (lease: Lease, signal: AbortSignal) => {
    seen.lease = lease;
    seen.signal = signal;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  };
}

async function settle(): Promise<void> {
  await clock.runAllAsync();
}

function backoff(options: BackoffOptions = {}) {
  return new Backoff(options);
}

describe('withLock: acquiring', () => {
  it('runs the body with the lease and a signal, then releases, and resolves with the result', async () => {
    const lock = new MemoryLock();
    const seen: { lease?: Lease; signal?: AbortSignal } = {};
    let heldDuringBody = false;
    const result = observe(
      backoff().withLock(lock, async (lease, signal) => {
        seen.lease = lease;
        seen.signal = signal;
        heldDuringBody = lock.holder === lease && lock.released.length === 0;
        return 'done';
      }),
    );
    await settle();
    expect(result.value).toBe('done');
    expect(heldDuringBody).toBe(true);
    expect(seen.signal?.aborted).toBe(false);
    expect(lock.released).toEqual([seen.lease]);
    expect(lock.holder).toBeUndefined();
  });

  it('retries a busy lock after the pause, like a retryIf result', async () => {
    const lock = new MemoryLock(['busy', 'busy', 'lease']);
    const retries: string[] = [];
    const b = backoff({ pause: 100, onRetry: (event) => void retries.push(event.kind) });
    let startedAt = -1;
    const result = observe(
      b.withLock(lock, () => {
        startedAt = clock.now;
        return 1;
      }),
    );
    await settle();
    expect(result.value).toBe(1);
    expect(startedAt).toBe(200);
    expect(retries).toEqual(['result', 'result']);
    expect(b.statistics).toMatchObject({ attempts: 3, retries: 2, successes: 1 });
  });

  it('rejects with LockUnavailableError (attempts, waited) when maxTries run out while busy', async () => {
    const lock = new MemoryLock(['busy', 'busy', 'busy', 'busy']);
    let called = false;
    const result = observe(
      backoff({ pause: 50, maxTries: 3 }).withLock(lock, () => {
        called = true;
      }),
    );
    await settle();
    expect(result.error).toBeInstanceOf(LockUnavailableError);
    expect(result.error).toMatchObject({
      name: 'LockUnavailableError',
      code: 'ASYNCBACKOFF_LOCK_UNAVAILABLE',
      attempts: 3,
      waited: 100,
    });
    expect(called).toBe(false);
    expect(lock.released).toEqual([]);
  });

  it('rejects with LockUnavailableError when the deadline passes while busy, even with returnLastResult', async () => {
    const lock = new MemoryLock(Array(100).fill('busy'));
    const result = observe(
      backoff({ pause: 100, deadline: 350, returnLastResult: true }).withLock(lock, () => 1),
    );
    await settle();
    expect(result.error).toBeInstanceOf(LockUnavailableError);
    expect(result.error).toMatchObject({ attempts: 4 });
    expect((result.error as LockUnavailableError).waited).toBeLessThanOrEqual(350);
    expect((result.error as LockUnavailableError).waited).toBeGreaterThanOrEqual(300);
  });

  it('rejects with LockUnavailableError when the deadline cuts an attempt that follows a busy one', async () => {
    const lock = new MemoryLock(['busy', { hang: true }]);
    const result = observe(backoff({ pause: 10, deadline: 100 }).withLock(lock, () => 1));
    await settle();
    expect(result.error).toBeInstanceOf(LockUnavailableError);
    expect(result.error).toMatchObject({ attempts: 2, waited: 100 });
    // The hanging attempt's signal was aborted with the deadline.
    expect(lock.signals[1]?.reason).toBeInstanceOf(DeadlineExceededError);
  });

  it('retries a retriable error and rejects with the last error when tries run out on errors', async () => {
    const last = new Transient('last');
    const lock = new MemoryLock(['busy', new Transient('first'), last]);
    const result = observe(
      backoff({ exceptions: [Transient], maxTries: 3 }).withLock(lock, () => 1),
    );
    await settle();
    expect(result.error).toBe(last);
  });

  it('retries a retriable error, then takes the lock', async () => {
    const lock = new MemoryLock([new Transient('reset'), 'lease']);
    const result = observe(backoff({ exceptions: [Transient] }).withLock(lock, () => 'ok'));
    await settle();
    expect(result.value).toBe('ok');
  });

  it('rejects at once with a non-retriable error from acquire', async () => {
    const fatal = new Fatal('auth');
    const lock = new MemoryLock([fatal]);
    const result = observe(
      backoff({ exceptions: [Transient], maxTries: 5 }).withLock(lock, () => 1),
    );
    await settle();
    expect(result.error).toBe(fatal);
    expect(lock.signals).toHaveLength(1);
  });

  it('passes through a RetryConditionError that acquire itself threw, unconverted', async () => {
    const own = new RetryConditionError(undefined, 1);
    const lock = new MemoryLock([own]);
    const result = observe(backoff().withLock(lock, () => 1));
    await settle();
    expect(result.error).toBe(own);
  });

  it("gives acquire the attempt's signal, which aborts on the attempt timeout", async () => {
    const lock = new MemoryLock([{ hang: true }, 'lease']);
    const result = observe(backoff({ attemptTimeout: 100 }).withLock(lock, () => 'ok'));
    await settle();
    expect(result.value).toBe('ok');
    expect(lock.signals).toHaveLength(2);
    expect(lock.signals[0]?.reason).toBeInstanceOf(AttemptTimeoutError);
    expect(lock.signals[1]?.aborted).toBe(false);
  });

  it("gives acquire the attempt's signal on an instance built with context: false", async () => {
    const lock = new MemoryLock([{ hang: true }, 'lease']);
    const result = observe(
      backoff({ attemptTimeout: 100, context: false }).withLock(lock, () => 'ok'),
    );
    await settle();
    expect(result.value).toBe('ok');
    expect(lock.signals[0]?.reason).toBeInstanceOf(AttemptTimeoutError);
  });

  it("ignores the instance's retryIf: a lease is not a result of the instance's functions", async () => {
    const lock = new MemoryLock();
    const b = new Backoff<unknown>({ retryIf: () => true, maxTries: 2 });
    const result = observe(b.withLock(lock, () => 'ok'));
    await settle();
    expect(result.value).toBe('ok');
  });

  it('counts its attempts in the instance statistics, views included', async () => {
    const b = backoff({ pause: 10 });
    const view = b.withSignal(new AbortController().signal);
    observe(view.withLock(new MemoryLock(['busy', 'lease']), () => 1));
    observe(b.withLock(new MemoryLock(['lease']), () => 1));
    await settle();
    expect(b.statistics).toMatchObject({ attempts: 3, successes: 2, retries: 1 });
  });

  it('rejects with the signal reason and never calls the body when cancelled during acquisition', async () => {
    const controller = new AbortController();
    const lock = new MemoryLock(['busy', 'busy', 'busy']);
    let called = false;
    const result = observe(
      backoff({ pause: 100, signal: controller.signal }).withLock(lock, () => {
        called = true;
      }),
    );
    await clock.tickAsync(150);
    const reason = new Error('shutdown');
    controller.abort(reason);
    await settle();
    expect(result.error).toBe(reason);
    expect(called).toBe(false);
  });
});

describe('withLock: the body and the release', () => {
  it('releases after the body rejects, and rejects with its error', async () => {
    const lock = new MemoryLock();
    const failure = new Fatal('body');
    const result = observe(
      backoff().withLock(lock, async () => {
        throw failure;
      }),
    );
    await settle();
    expect(result.error).toBe(failure);
    expect(lock.released).toHaveLength(1);
  });

  it('releases after the body throws synchronously', async () => {
    const lock = new MemoryLock();
    const failure = new Fatal('sync');
    const result = observe(
      backoff().withLock(lock, () => {
        throw failure;
      }),
    );
    await settle();
    expect(result.error).toBe(failure);
    expect(lock.released).toHaveLength(1);
  });

  it('releases only once the body has settled', async () => {
    const lock = new MemoryLock();
    const result = observe(backoff().withLock(lock, bodyFor(500, 'x')));
    await clock.tickAsync(499);
    expect(lock.released).toHaveLength(0);
    await clock.tickAsync(1);
    await settle();
    expect(result.value).toBe('x');
    expect(lock.released).toHaveLength(1);
  });

  it('rejects with the release error when the body succeeded', async () => {
    const lock = new MemoryLock();
    const releaseError = new Error('release failed');
    lock.releaseError = releaseError;
    const result = observe(backoff().withLock(lock, () => 'value'));
    await settle();
    expect(result.error).toBe(releaseError);
  });

  it('rejects with an AggregateError of both when the body and the release fail', async () => {
    const lock = new MemoryLock();
    const bodyError = new Fatal('body');
    const releaseError = new Error('release failed');
    lock.releaseError = releaseError;
    const result = observe(
      backoff().withLock(lock, () => {
        throw bodyError;
      }),
    );
    await settle();
    expect(result.error).toBeInstanceOf(AggregateError);
    const error = result.error as AggregateError;
    expect(error.errors).toEqual([bodyError, releaseError]);
    expect(error.cause).toBe(bodyError);
    expect(error.message).toMatch(/withLock/);
  });

  it("aborts the body's signal when the instance signal aborts, and settles with the body's outcome", async () => {
    const controller = new AbortController();
    const lock = new MemoryLock();
    const seen: { signal?: AbortSignal } = {};
    const result = observe(
      backoff({ signal: controller.signal }).withLock(lock, bodyFor(1000, 'x', seen)),
    );
    await clock.tickAsync(100);
    const reason = new Error('shutdown');
    controller.abort(reason);
    await settle();
    expect(seen.signal?.reason).toBe(reason);
    expect(result.error).toBe(reason);
    expect(lock.released).toHaveLength(1);
  });

  it("resolves with the body's value when the body finishes despite a cancellation", async () => {
    const controller = new AbortController();
    const lock = new MemoryLock();
    const result = observe(
      backoff({ signal: controller.signal }).withLock(lock, async (_lease, signal) => {
        controller.abort(new Error('shutdown'));
        return signal.aborted ? 'finished anyway' : 'not aborted';
      }),
    );
    await settle();
    expect(result.value).toBe('finished anyway');
  });

  it("aborts the body's signal when a withSignal view's signal aborts", async () => {
    const request = new AbortController();
    const lock = new MemoryLock();
    const seen: { signal?: AbortSignal } = {};
    const result = observe(
      backoff()
        .withSignal(request.signal)
        .withLock(lock, bodyFor(1000, 1, seen)),
    );
    await clock.tickAsync(10);
    request.abort(new Error('client went away'));
    await settle();
    expect((result.error as Error).message).toBe('client went away');
    expect(seen.signal?.aborted).toBe(true);
  });

  it('aborts the body when the attempt withLock runs in times out', async () => {
    const lock = new MemoryLock();
    const seen: { signal?: AbortSignal } = {};
    const outer = backoff({ attemptTimeout: 300, maxTries: 1 });
    const result = observe(outer.execute(() => backoff().withLock(lock, bodyFor(1000, 1, seen))));
    await settle();
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(seen.signal?.reason).toBeInstanceOf(AttemptTimeoutError);
    expect(lock.released).toHaveLength(1);
  });

  it('does not start the body when the instance signal aborts between acquisition and body', async () => {
    const controller = new AbortController();
    const lock = new MemoryLock([{ after: 10, gives: 'lease' }]);
    lock.acquire = ((original) =>
      function (this: MemoryLock, signal: AbortSignal) {
        return original.call(this, signal).then((lease) => {
          controller.abort(new Error('shutdown'));
          return lease;
        });
      })(lock.acquire);
    let called = false;
    const result = observe(
      backoff({ signal: controller.signal }).withLock(lock, () => {
        called = true;
      }),
    );
    await settle();
    expect(called).toBe(false);
    expect((result.error as Error).message).toBe('shutdown');
  });

  it('leaves no timer and no listener behind', async () => {
    const controller = new AbortController();
    const request = new AbortController();
    const lock = new MemoryLock(['busy', 'lease'], { ttl: 300 });
    const b = backoff({
      signal: controller.signal,
      pause: 10,
      attemptTimeout: 100,
      deadline: 5000,
    });
    const seen: { signal?: AbortSignal } = {};
    const result = observe(b.withSignal(request.signal).withLock(lock, bodyFor(1000, 'x', seen)));
    await clock.tickAsync(500);
    expect(getEventListeners(controller.signal, 'abort').length).toBeGreaterThan(0);
    await settle();
    expect(result.value).toBe('x');
    expect(clock.countTimers()).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(getEventListeners(request.signal, 'abort')).toHaveLength(0);
    expect(getEventListeners(seen.signal!, 'abort')).toHaveLength(0);
  });
});

describe('withLock: renewal', () => {
  it('renews every ttl / 3 while the body runs, and stops when it ends', async () => {
    const lock = new MemoryLock([], { ttl: 300 });
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x')));
    await settle();
    expect(result.value).toBe('x');
    expect(lock.renewals.map((renewal) => renewal.at)).toEqual([
      100, 200, 300, 400, 500, 600, 700, 800, 900,
    ]);
    expect(clock.countTimers()).toBe(0);
  });

  it('counts the first renewal from when the winning attempt called acquire', async () => {
    const lock = new MemoryLock(['busy', { after: 50, gives: 'lease' }], { ttl: 300 });
    const result = observe(backoff({ pause: 20 }).withLock(lock, bodyFor(200, 'x')));
    await settle();
    expect(result.value).toBe('x');
    // Attempt 2 started at 20 and got its lease at 70: renewals are due at 120 and 220 (past the body).
    expect(lock.renewals.map((renewal) => renewal.at)).toEqual([120, 220]);
  });

  it('does not renew a lock without renew', async () => {
    const lock = new MemoryLock([], { ttl: 300, renew: false });
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x')));
    await settle();
    expect(result.value).toBe('x');
    expect(lock.renewals).toHaveLength(0);
  });

  it('aborts the body with LockLostError and rejects with it when a renewal returns false', async () => {
    const lock = new MemoryLock([], { ttl: 300 });
    const seen: { signal?: AbortSignal } = {};
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x', seen)));
    await clock.tickAsync(150);
    lock.renewWith = false;
    await settle();
    expect(result.error).toBeInstanceOf(LockLostError);
    expect(result.error).toMatchObject({ code: 'ASYNCBACKOFF_LOCK_LOST' });
    expect(seen.signal?.reason).toBe(result.error);
    expect(lock.renewals.map((renewal) => renewal.at)).toEqual([100, 200]);
    expect(lock.released).toHaveLength(1);
    expect(clock.countTimers()).toBe(0);
  });

  it('rejects with LockLostError even when the body ignores its signal and resolves', async () => {
    const lock = new MemoryLock([], { ttl: 30 });
    lock.renewWith = false;
    const result = observe(
      backoff().withLock(lock, () => new Promise((resolve) => setTimeout(resolve, 100, 'ignored'))),
    );
    await settle();
    expect(result.error).toBeInstanceOf(LockLostError);
  });

  it('carries the renewal error as the cause of the LockLostError', async () => {
    const lock = new MemoryLock([], { ttl: 300 });
    const renewalError = new Error('ECONNRESET');
    lock.renewWith = renewalError;
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x')));
    await settle();
    expect(result.error).toBeInstanceOf(LockLostError);
    expect((result.error as LockLostError).cause).toBe(renewalError);
  });

  it.each([
    ['answers false', (deferred: { resolve: (v: boolean) => void }) => deferred.resolve(false)],
    ['fails', (deferred: { reject: (e: unknown) => void }) => deferred.reject(new Error('late'))],
  ] as const)(
    'a renewal that %s after the body finished changes nothing: the value stands',
    async (_what, answer) => {
      let deferred!: { resolve: (v: boolean) => void; reject: (e: unknown) => void };
      const signals: AbortSignal[] = [];
      const released: number[] = [];
      const lock: Lock<number> = {
        ttl: 300,
        acquire: async () => 1,
        release: async (lease) => {
          released.push(lease);
        },
        renew: (_lease, signal) => {
          signals.push(signal);
          return new Promise<boolean>((resolve, reject) => {
            deferred = { resolve, reject };
          });
        },
      };
      const result = observe(
        backoff().withLock(lock, () => new Promise((resolve) => setTimeout(resolve, 150, 'done'))),
      );
      await clock.tickAsync(100); // the renewal at 100 is in flight
      expect(signals).toHaveLength(1);
      await clock.tickAsync(50); // the body ends: the renewal in flight is aborted
      expect(signals[0]!.aborted).toBe(true);
      answer(deferred as never);
      await settle();
      expect(result.value).toBe('done');
      expect(result.error).toBeUndefined();
      expect(released).toEqual([1]);
      expect(clock.countTimers()).toBe(0);
    },
  );

  it('declares the lease lost, with the error as cause, when renew throws synchronously', async () => {
    const thrown = new Error('client closed');
    const lock: Lock<Lease> = {
      ttl: 300,
      acquire: async () => ({ token: 1 }),
      release: async () => {},
      renew: () => {
        throw thrown;
      },
    };
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x')));
    await settle();
    expect(result.error).toBeInstanceOf(LockLostError);
    expect((result.error as LockLostError).cause).toBe(thrown);
  });

  it('declares the lease lost when a renewal has not answered by the time it would expire', async () => {
    const lock = new MemoryLock([], { ttl: 300 });
    const seen: { signal?: AbortSignal } = {};
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x', seen)));
    await clock.tickAsync(150);
    lock.renewWith = 'hang';
    await clock.tickAsync(50); // the renewal at 200 hangs; the lease was confirmed at 100
    expect(seen.signal?.aborted).toBe(false);
    await clock.tickAsync(199);
    expect(seen.signal?.aborted).toBe(false);
    await clock.tickAsync(1); // 400 = 100 + ttl
    expect(seen.signal?.reason).toBeInstanceOf(LockLostError);
    expect(lock.renewals[1]?.signal.aborted).toBe(true);
    await settle();
    expect(result.error).toBeInstanceOf(LockLostError);
    expect(clock.countTimers()).toBe(0);
  });

  it('aborts a renewal in flight when the body ends', async () => {
    const lock = new MemoryLock([], { ttl: 300 });
    lock.renewWith = 'hang';
    const result = observe(backoff().withLock(lock, bodyFor(150, 'x')));
    await settle();
    expect(result.value).toBe('x');
    expect(lock.renewals).toHaveLength(1);
    expect(lock.renewals[0]?.signal.aborted).toBe(true);
  });

  it('rejects with an AggregateError when the lease was lost and the release failed', async () => {
    const lock = new MemoryLock([], { ttl: 300 });
    lock.renewWith = false;
    const releaseError = new Error('release failed');
    lock.releaseError = releaseError;
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x')));
    await settle();
    const error = result.error as AggregateError;
    expect(error).toBeInstanceOf(AggregateError);
    expect(error.errors[0]).toBeInstanceOf(LockLostError);
    expect(error.errors[1]).toBe(releaseError);
  });

  it('rejects with the loss alone when the release of the lost lease finds it gone (LockLostError)', async () => {
    const lock = new MemoryLock([], { ttl: 300 });
    lock.renewWith = false;
    lock.releaseError = new LockLostError('the session holding it ended before the release');
    let reason: unknown;
    const result = observe(
      backoff().withLock(
        lock,
        (_lease, signal) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              reason = signal.reason;
              reject(signal.reason);
            }),
          ),
      ),
    );
    await settle();
    expect(result.error).toBeInstanceOf(LockLostError);
    expect(result.error).toBe(reason);
    expect((result.error as Error).message).toMatch(/renewal found the lease gone/);
  });
});

describe('withLock: bad input', () => {
  const b = new Backoff();
  const ok = () => 1;
  const valid = { acquire: async () => 1, release: async () => {} };

  it.each([
    ['not an object', null, /'lock' must be an object/],
    ['no acquire', { release: valid.release }, /'lock.acquire' must be a function/],
    ['no release', { acquire: valid.acquire }, /'lock.release' must be a function/],
    ['renew not a function', { ...valid, renew: 1, ttl: 10 }, /'lock.renew' must be a function/],
    ['ttl not a number', { ...valid, ttl: '10' }, /'lock.ttl' must be a number/],
    ['renew without ttl', { ...valid, renew: async () => true }, /'lock.renew' needs 'lock.ttl'/],
  ])('rejects a lock with %s (TypeError)', async (_what, lock, message) => {
    await expect(b.withLock(lock as never, ok)).rejects.toThrow(TypeError);
    await expect(b.withLock(lock as never, ok)).rejects.toThrow(message);
    await expect(b.withLock(lock as never, ok)).rejects.toThrow(/Backoff\.withLock/);
  });

  it.each([0, -1, Number.NaN, 2 ** 31])('rejects ttl %s (RangeError)', async (ttl) => {
    await expect(b.withLock({ ...valid, ttl }, ok)).rejects.toThrow(RangeError);
  });

  it('rejects a body that is not a function (TypeError)', async () => {
    await expect(b.withLock(valid, 'body' as never)).rejects.toThrow(
      /'body' must be a function, got 'body'/,
    );
  });

  it('does not call acquire when the input is bad', async () => {
    let called = false;
    const acquire = async () => {
      called = true;
      return 1;
    };
    const lock = { acquire, release: async () => {}, ttl: -5 };
    await expect(b.withLock(lock, ok)).rejects.toThrow(RangeError);
    expect(called).toBe(false);
  });
});

describe('withLock: the acquire attempt context', () => {
  it('runs acquire inside the attempt (currentAttempt)', async () => {
    const attempts: number[] = [];
    const lock: Lock<string> = {
      acquire: async () => {
        attempts.push(currentAttempt()!.attempt);
        return attempts.length < 2 ? undefined : 'lease';
      },
      release: async () => {},
    };
    const result = observe(backoff().withLock(lock, (lease) => lease.toUpperCase()));
    await settle();
    expect(result.value).toBe('LEASE');
    expect(attempts).toEqual([1, 2]);
  });
});

describe('withLock: leases that abandoned attempts obtain late', () => {
  it('releases a lease that arrives after its attempt timed out', async () => {
    const lock = new MemoryLock([
      { after: 150, gives: 'lease' },
      { after: 100, gives: 'lease' },
    ]);
    const b = backoff({ attemptTimeout: 120 });
    const seen: { lease?: Lease } = {};
    const result = observe(
      b.withLock(lock, (lease) => {
        seen.lease = lease;
        return 'ok';
      }),
    );
    await settle();
    expect(result.value).toBe('ok');
    // Lease 1 came at 150, 30 ms after its attempt was abandoned, and was released at once, so
    // attempt 2 found the lock free at 220.
    expect(seen.lease).toEqual({ token: 2 });
    expect(lock.released.map((lease) => lease.token)).toEqual([1, 2]);
    expect(b.statistics.lateResults).toBe(1);
  });

  it('releases a lease that arrives after the deadline', async () => {
    const lock = new MemoryLock([{ after: 500, gives: 'lease' }]);
    const result = observe(backoff({ deadline: 200 }).withLock(lock, () => 'never'));
    await clock.tickAsync(200);
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    expect(lock.holder).toBeUndefined();
    await clock.tickAsync(300);
    expect(lock.released).toEqual([{ token: 1 }]);
    expect(lock.holder).toBeUndefined();
  });

  it('releases a lease that arrives after a cancellation', async () => {
    const controller = new AbortController();
    const lock = new MemoryLock([{ after: 500, gives: 'lease' }]);
    let called = false;
    const result = observe(
      backoff({ signal: controller.signal }).withLock(lock, () => {
        called = true;
      }),
    );
    await clock.tickAsync(100);
    controller.abort(new Error('shutdown'));
    await settle();
    expect((result.error as Error).message).toBe('shutdown');
    expect(lock.released).toEqual([{ token: 1 }]);
    expect(called).toBe(false);
  });

  it("also calls the instance's own onLateResult, with the lease and why its attempt was abandoned", async () => {
    const late: { value: unknown; reason: unknown; attempt: number }[] = [];
    const lock = new MemoryLock([
      { after: 150, gives: 'lease' },
      { after: 10, gives: 'busy' },
    ]);
    const b = backoff({
      attemptTimeout: 100,
      pause: 100,
      onLateResult: (value, info) => void late.push({ value, ...info }),
    });
    const result = observe(b.withLock(lock, () => 'ok'));
    await settle();
    expect(result.value).toBe('ok');
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ value: { token: 1 }, attempt: 1 });
    expect(late[0]?.reason).toBeInstanceOf(AttemptTimeoutError);
    expect(lock.released[0]).toEqual({ token: 1 });
  });

  it('releases nothing for a late busy answer', async () => {
    const lock = new MemoryLock([{ after: 150, gives: 'busy' }]);
    const result = observe(backoff({ attemptTimeout: 100 }).withLock(lock, () => 'ok'));
    await settle();
    expect(result.value).toBe('ok');
    expect(lock.released).toEqual([{ token: 1 }]); // the lease of attempt 2 only
  });

  it('reports a failed release of a late lease as a process warning, not an unhandled rejection', async () => {
    const warnings: unknown[] = [];
    const messages: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => {
      warnings.push(warning.code);
      messages.push(warning.message);
    };
    process.on('warning', onWarning);
    try {
      const lock = new MemoryLock([
        { after: 150, gives: 'lease' },
        { after: 10, gives: 'busy' },
      ]);
      lock.releaseError = new Error('release failed');
      const result = observe(
        backoff({ attemptTimeout: 100, maxTries: 2 }).withLock(lock, () => 'ok'),
      );
      await settle();
      expect(result.error).toBeInstanceOf(LockUnavailableError);
      await nextMacrotask();
      expect(warnings).toContain('ASYNCBACKOFF_LATE_RESULT_FAILED');
      // No onLateResult was given: the warning names withLock's own release.
      expect(messages).toEqual([
        "asyncbackoff: a late result's handler (onLateResult, or withLock releasing a late lease) threw or rejected: withLock: releasing a lease that an abandoned attempt obtained late failed: release failed",
      ]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('reports both failures in one warning when releasing a late lease and onLateResult fail', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    try {
      const lock = new MemoryLock([
        { after: 150, gives: 'lease' },
        { after: 10, gives: 'busy' },
      ]);
      lock.releaseError = new Error('release failed');
      const result = observe(
        backoff({
          attemptTimeout: 100,
          maxTries: 2,
          onLateResult: () => {
            throw new Error('late hook failed');
          },
        }).withLock(lock, () => 'ok'),
      );
      await settle();
      expect(result.error).toBeInstanceOf(LockUnavailableError);
      await nextMacrotask();
      expect(
        warnings.some((m) => m.includes('Releasing a late lease and onLateResult both failed')),
      ).toBe(true);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('rejects with an AggregateError when an onSuccess hook throws and releasing the lease fails too', async () => {
    const hookError = new Error('hook');
    const releaseError = new Error('release failed');
    const lock = new MemoryLock();
    lock.releaseError = releaseError;
    const result = observe(
      backoff({
        onSuccess: () => {
          throw hookError;
        },
      }).withLock(lock, () => 'never'),
    );
    await settle();
    expect(result.error).toBeInstanceOf(AggregateError);
    expect((result.error as AggregateError).errors).toEqual([hookError, releaseError]);
    expect((result.error as AggregateError).cause).toBe(hookError);
    expect(lock.released).toEqual([{ token: 1 }]);
  });

  it('rejects with the error an acquire throws synchronously', async () => {
    const broken = new Fatal('no connection');
    const lock: Lock<number> = {
      acquire: () => {
        throw broken;
      },
      release: async () => {},
    };
    const result = observe(backoff().withLock(lock, () => 'never'));
    await settle();
    expect(result.error).toBe(broken);
  });

  it('rejects with what acquire threw when it is not an object', async () => {
    const lock: Lock<number> = {
      acquire: () => Promise.reject('ECONNREFUSED'),
      release: async () => {},
    };
    const result = observe(backoff({ maxTries: 3 }).withLock(lock, () => 'never'));
    await settle();
    expect(result.error).toBe('ECONNREFUSED');
  });

  it('releases the lease when an onSuccess hook throws, and rejects with the hook error', async () => {
    const hookError = new Error('hook');
    const lock = new MemoryLock();
    let called = false;
    const result = observe(
      backoff({
        onSuccess: () => {
          throw hookError;
        },
      }).withLock(lock, () => {
        called = true;
      }),
    );
    await settle();
    expect(result.error).toBe(hookError);
    expect(called).toBe(false);
    expect(lock.released).toEqual([{ token: 1 }]);
    expect(lock.holder).toBeUndefined();
  });
});

describe('withLock: long-lived signals', () => {
  it("adds one abort listener to the instance's signal however many bodies run at once, and no warning", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const shutdown = new AbortController();
      const backoff = new Backoff({ signal: shutdown.signal });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Twenty bodies hold twenty locks at once (more than EventTarget's warning threshold, 10).
      const locks = Array.from({ length: 20 }, (_, i) => ({
        acquire: async () => i + 1,
        release: async () => {},
      }));
      const running = locks.map((lock) => backoff.withLock(lock, () => gate));
      await nextMacrotask();
      expect(getEventListeners(shutdown.signal, 'abort').length).toBe(1);
      release();
      await Promise.all(running);
      // The shared listener stays to the end of the event-loop turn (a check-phase callback).
      await clock.tickAsync(1);
      expect(getEventListeners(shutdown.signal, 'abort').length).toBe(0);
      expect(warnings).toEqual([]);

      // Aborting still reaches every body through that one listener.
      const bodies: AbortSignal[] = [];
      const held = locks.map((lock) =>
        backoff
          .withLock(lock, (_lease, signal) => {
            bodies.push(signal);
            return new Promise((_resolve, reject) =>
              signal.addEventListener('abort', () => reject(signal.reason)),
            );
          })
          .catch((error: unknown) => error),
      );
      await nextMacrotask();
      const reason = new Error('shutting down');
      shutdown.abort(reason);
      expect(await Promise.all(held)).toEqual(locks.map(() => reason));
      expect(bodies.every((signal) => signal.aborted && signal.reason === reason)).toBe(true);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('withLock: input edges', () => {
  const valid = { acquire: async () => 1, release: async () => {} };

  it.each([42, 'lock'])(
    'rejects the primitive lock %j as not an object (TypeError)',
    async (lock) => {
      await expect(new Backoff().withLock(lock as never, () => 1)).rejects.toThrow(
        /^Backoff\.withLock: 'lock' must be an object with acquire and release, got /,
      );
    },
  );

  it('accepts a ttl of exactly 2147483647 ms', async () => {
    const result = observe(
      new Backoff().withLock({ ...valid, ttl: 2147483647 }, (lease) => `got ${lease}`),
    );
    await settle();
    expect(result.value).toBe('got 1');
  });

  it('rejects with null when acquire rejects with null', async () => {
    const lock: Lock<number> = { acquire: () => Promise.reject(null), release: async () => {} };
    const result = observe(backoff({ maxTries: 1 }).withLock(lock, () => 'never'));
    await settle();
    expect(result.settled).toBe(true);
    expect(result.error).toBe(null);
  });

  it('runs a body longer than ttl / 3 on a lock with a ttl but no renew without losing the lease', async () => {
    const lock = { acquire: async () => ({ token: 1 }), release: async () => {}, ttl: 30 };
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x')));
    await settle();
    expect(result.value).toBe('x');
  });
});

describe('withLock: outcomes in detail', () => {
  it('reports the time waited from the start of withLock, not from the clock origin', async () => {
    await clock.tickAsync(1000);
    const lock = new MemoryLock(['busy', 'busy', 'busy']);
    const result = observe(backoff({ pause: 50, maxTries: 3 }).withLock(lock, () => 1));
    await settle();
    expect(result.error).toMatchObject({ name: 'LockUnavailableError', attempts: 3, waited: 100 });
  });

  it('names both failures in the message when an onSuccess hook throws and the release fails', async () => {
    const lock = new MemoryLock();
    lock.releaseError = new Error('release failed');
    const result = observe(
      backoff({
        onSuccess: () => {
          throw new Error('hook');
        },
      }).withLock(lock, () => 'never'),
    );
    await settle();
    expect((result.error as Error).message).toBe(
      'Backoff.withLock: acquiring failed and releasing the lease it took failed too',
    );
  });

  it.each([
    ['hang', 'Lock lost: a renewal did not answer within the 300 ms ttl'],
    [false, 'Lock lost: a renewal found the lease gone'],
    [new Error('ECONNRESET'), 'Lock lost: a renewal failed'],
  ] as const)('says why the lease was lost when a renewal gives %s', async (renewWith, message) => {
    const lock = new MemoryLock([], { ttl: 300 });
    const result = observe(backoff().withLock(lock, bodyFor(1000, 'x')));
    await clock.tickAsync(150);
    lock.renewWith = renewWith;
    await settle();
    expect(result.error).toBeInstanceOf(LockLostError);
    expect((result.error as Error).message).toBe(message);
  });
});

describe('withLock: a late lease released without an onLateResult of the instance', () => {
  it.each([
    ['without', undefined],
    ['with', () => {}],
  ])(
    'releases it and reports nothing %s a successful onLateResult',
    async (_what, onLateResult) => {
      const warnings: unknown[] = [];
      const onWarning = (warning: Error & { code?: string }) => warnings.push(warning.code);
      process.on('warning', onWarning);
      try {
        const lock = new MemoryLock([
          { after: 150, gives: 'lease' },
          { after: 10, gives: 'busy' },
        ]);
        const result = observe(
          backoff({ attemptTimeout: 100, maxTries: 2, onLateResult }).withLock(lock, () => 'ok'),
        );
        await settle();
        expect(result.error).toBeInstanceOf(LockUnavailableError);
        await nextMacrotask();
        expect(lock.released).toEqual([{ token: 1 }]);
        expect(warnings).not.toContain('ASYNCBACKOFF_LATE_RESULT_FAILED');
      } finally {
        process.off('warning', onWarning);
      }
    },
  );
});

describe('withLock: a renewal that answers after the body ended', () => {
  /** A lock whose renewals wait for the test to answer them. */
  function deferredLock() {
    const answers: { resolve: (renewed: boolean) => void; reject: (error: unknown) => void }[] = [];
    const lock: Lock<Lease> = {
      acquire: async () => ({ token: 1 }),
      release: async () => {},
      ttl: 300,
      renew: () =>
        new Promise<boolean>((resolve, reject) => {
          answers.push({ resolve, reject });
        }),
    };
    return { lock, answers };
  }

  it.each([
    ['true', (a: { resolve: (renewed: boolean) => void }) => a.resolve(true)],
    ['false', (a: { resolve: (renewed: boolean) => void }) => a.resolve(false)],
    ['an error', (a: { reject: (error: unknown) => void }) => a.reject(new Error('late'))],
  ])('is ignored when it answers %s: no renewal, no timer, no abort', async (_what, answer) => {
    const { lock, answers } = deferredLock();
    const seen: { signal?: AbortSignal } = {};
    const result = observe(backoff().withLock(lock, bodyFor(150, 'x', seen)));
    await settle();
    expect(result.value).toBe('x');
    expect(answers).toHaveLength(1);
    answer(answers[0]!);
    await clock.tickAsync(0);
    expect(clock.countTimers()).toBe(0);
    await clock.tickAsync(1000);
    expect(answers).toHaveLength(1);
    expect(seen.signal?.aborted).toBe(false);
  });
});
