/**
 * The engine's rules (API.md, "Exact semantics" 1–7), exercised through the public API only and
 * driven by a fake clock, so every time in here is exact.
 */
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import FakeTimers from '@sinonjs/fake-timers';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  type AttemptContext,
  AttemptTimeoutError,
  asyncretry,
  Backoff,
  type BackoffOptions,
  currentAttempt,
  DeadlineExceededError,
  TimeoutError,
} from '../src/index.js';
import { FAKED, type InstalledClock, nextMacrotask, settle } from './support/clock.js';
import { stats, ZERO_STATS as ZERO } from './support/harness.js';

let clock: InstalledClock;
beforeEach(() => {
  clock = FakeTimers.install({ toFake: [...FAKED] });
});
afterEach(() => {
  clock.uninstall();
  vi.restoreAllMocks();
});

class TransientError extends Error {
  override name = 'TransientError';
}
class FlakyError extends TransientError {
  override name = 'FlakyError';
}
class FatalError extends Error {
  override name = 'FatalError';
}

const now = () => performance.now();

// ---- scripted attempt behaviours ----------------------------------------------------------------

type Step<T> = () => T | Promise<T>;
const hang = (): Promise<never> => new Promise<never>(() => {});
const resolveIn =
  <T>(ms: number, value: T): Step<T> =>
  () =>
    new Promise<T>((resolve) => setTimeout(resolve, ms, value));
const rejectIn =
  (ms: number, error: unknown): Step<never> =>
  () =>
    new Promise<never>((_, reject) => setTimeout(reject, ms, error));
const rejectNow =
  (error: unknown): Step<never> =>
  () =>
    Promise.reject(error);

interface Call {
  /** Fake time at which the attempt started. */
  readonly at: number;
  /** The attempt's context as currentAttempt() returned it inside fn. */
  readonly ctx: AttemptContext;
  /** Whether the attempt's signal was already aborted when fn was called. */
  readonly abortedAtStart: boolean;
}

/** A function whose n-th call plays steps[n] (the last step repeats), recording every call. */
function script<T>(...steps: Step<T>[]) {
  const calls: Call[] = [];
  const fn = (): T | Promise<T> => {
    const ctx = currentAttempt();
    if (ctx === undefined) throw new Error('currentAttempt() is undefined inside fn');
    calls.push({ at: now(), ctx, abortedAtStart: ctx.signal.aborted });
    const step = steps[Math.min(calls.length - 1, steps.length - 1)]!;
    return step();
  };
  return { fn, calls };
}

interface Tracked<T> {
  status: 'pending' | 'fulfilled' | 'rejected';
  value: T | undefined;
  error: unknown;
  /** Fake time at which the promise settled. */
  at: number;
  settlements: number;
}

/** Observes a promise (so it never counts as unhandled), recording how and when it settled. */
function track<T>(promise: Promise<T>): Tracked<T> {
  const state: Tracked<T> = {
    status: 'pending',
    value: undefined,
    error: undefined,
    at: Number.NaN,
    settlements: 0,
  };
  promise.then(
    (value) => {
      state.status = 'fulfilled';
      state.value = value;
      state.at = now();
      state.settlements++;
    },
    (error: unknown) => {
      state.status = 'rejected';
      state.error = error;
      state.at = now();
      state.settlements++;
    },
  );
  return state;
}

/** Lets pending promise reactions run without moving the clock. */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function watchUnhandledRejections() {
  const spy = vi.fn();
  process.on('unhandledRejection', spy);
  return {
    spy,
    async check() {
      await nextMacrotask();
      await nextMacrotask();
      process.off('unhandledRejection', spy);
      expect(spy).not.toHaveBeenCalled();
    },
  };
}

// ---- rule 1 -------------------------------------------------------------------------------------

describe('rule 1: attemptTimeout', () => {
  it('aborts the attempt signal with an AttemptTimeoutError when the attempt runs too long', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const { fn, calls } = script(hang);
    const result = track(backoff.execute(fn));

    await clock.tickAsync(49);
    expect(calls[0]!.ctx.signal.aborted).toBe(false);
    expect(result.status).toBe('pending');

    await clock.tickAsync(1);
    const signal = calls[0]!.ctx.signal;
    expect(signal.aborted).toBe(true);
    const reason = signal.reason as AttemptTimeoutError;
    expect(reason).toBeInstanceOf(AttemptTimeoutError);
    expect(reason).toBeInstanceOf(TimeoutError);
    expect(reason.name).toBe('AttemptTimeoutError');
    expect(reason.code).toBe('ASYNCBACKOFF_ATTEMPT_TIMEOUT');
    expect(reason.timeout).toBe(50);
    expect(reason.attempt).toBe(1);
  });

  it('counts the timed-out attempt as failed with that very AttemptTimeoutError', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const { fn, calls } = script(hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(50);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(50);
    expect(result.error).toBe(calls[0]!.ctx.signal.reason);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 1, done: 1, errors: 1, timeouts: 1, giveUps: 1, sumTime: 50 }),
    );
  });

  it('retries a timed-out attempt even with exceptions: [] (timeouts are always retriable)', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, exceptions: [] });
    const { fn, calls } = script<string>(hang, resolveIn(10, 'ok'));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(60);
    expect(result.status).toBe('fulfilled');
    expect(result.value).toBe('ok');
    expect(result.at).toBe(60);
    expect(calls.map((c) => c.at)).toEqual([0, 50]);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 2,
        done: 2,
        errors: 1,
        timeouts: 1,
        retries: 1,
        successes: 1,
        sumTime: 60,
      }),
    );
  });

  it('gives every timed-out attempt its own AttemptTimeoutError numbered after that attempt', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 3 });
    const { fn, calls } = script(hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(150);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(150);
    const reasons = calls.map((c) => c.ctx.signal.reason as AttemptTimeoutError);
    expect(reasons.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(new Set(reasons).size).toBe(3);
    expect(result.error).toBe(reasons[2]);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 3,
        done: 3,
        errors: 3,
        timeouts: 3,
        retries: 2,
        giveUps: 1,
        sumTime: 150,
      }),
    );
  });

  it('moves on at once when fn ignores its aborted signal and never settles', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 2 });
    const { fn, calls } = script<string>(hang, resolveIn(5, 'second'));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(50);
    expect(calls.map((c) => c.at)).toEqual([0, 50]);
    await clock.tickAsync(5);
    expect(result.status).toBe('fulfilled');
    expect(result.value).toBe('second');
    expect(result.at).toBe(55);
  });

  it('drops the late result of a timed-out attempt while the execution goes on', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 2 });
    const { fn, calls } = script<string>(resolveIn(70, 'late'), hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(70); // attempt 1 resolves 'late' while attempt 2 runs
    expect(result.status).toBe('pending');
    await clock.tickAsync(30);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(100);
    expect(result.error).toBe(calls[1]!.ctx.signal.reason);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 2,
        done: 2,
        errors: 2,
        timeouts: 2,
        retries: 1,
        giveUps: 1,
        sumTime: 100,
        lateResults: 1,
      }),
    );
  });

  it('drops the late result of a timed-out attempt after the execution rejected', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const { fn, calls } = script<string>(resolveIn(70, 'late'));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(50);
    const atRejection = backoff.statistics;
    await clock.tickAsync(50);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(calls[0]!.ctx.signal.reason);
    expect(result.settlements).toBe(1);
    expect(backoff.statistics).toEqual({ ...atRejection, lateResults: 1 });
    expect(backoff.statistics.successes).toBe(0);
  });

  it('handles a late rejection of a timed-out attempt: no unhandled rejection', async () => {
    const unhandled = watchUnhandledRejections();
    const late = new Error('late failure');
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 2, retryAll: true });
    const { fn, calls } = script(rejectIn(70, late), rejectIn(80, late));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(200); // attempt 1 rejects at 70 (running attempt 2), attempt 2 at 130
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(100);
    expect(result.error).toBe(calls[1]!.ctx.signal.reason);
    expect(result.error).not.toBe(late);
    expect(backoff.statistics.errors).toBe(2); // the late rejections are not counted
    await unhandled.check();
  });

  it('still asks giveup about an attempt timeout and stops when it says so', async () => {
    const giveup = vi.fn((_error: unknown) => true);
    const backoff = new Backoff({ attemptTimeout: 50, giveup });
    const { fn, calls } = script(hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(calls).toHaveLength(1);
    expect(result.error).toBe(calls[0]!.ctx.signal.reason);
    expect(result.at).toBe(50);
    expect(giveup).toHaveBeenCalledOnce();
    expect(giveup.mock.calls[0]![0]).toBe(result.error);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 1, done: 1, errors: 1, timeouts: 1, giveUps: 1, sumTime: 50 }),
    );
  });

  it('still obeys the deadline: rejects with the last AttemptTimeoutError when the deadline cuts the next attempt', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, deadline: 120 });
    const { fn, calls } = script(hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(calls.map((c) => c.at)).toEqual([0, 50, 100]);
    expect(result.at).toBe(120);
    expect(result.error).toBe(calls[1]!.ctx.signal.reason);
    expect((result.error as AttemptTimeoutError).attempt).toBe(2);
    const cut = calls[2]!.ctx.signal.reason as DeadlineExceededError;
    expect(cut).toBeInstanceOf(DeadlineExceededError);
    expect(cut.attempts).toBe(3);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 3,
        done: 3,
        errors: 2,
        timeouts: 2,
        cancels: 1,
        retries: 2,
        giveUps: 1,
        sumTime: 120,
      }),
    );
  });

  it('currentAttempt().remaining counts down to the attempt timeout', async () => {
    const backoff = new Backoff({ attemptTimeout: 50 });
    const seen: number[] = [];
    const result = track(
      backoff.execute(async () => {
        seen.push(currentAttempt()!.remaining);
        await new Promise((resolve) => setTimeout(resolve, 20));
        seen.push(currentAttempt()!.remaining);
        return 'ok';
      }),
    );
    await clock.tickAsync(20);
    expect(result.value).toBe('ok');
    expect(seen).toEqual([50, 30]);
  });
});

// ---- rule 2 -------------------------------------------------------------------------------------

describe('rule 2: deadline', () => {
  it('aborts the running attempt with a DeadlineExceededError and rejects with it when no attempt failed', async () => {
    const backoff = new Backoff({ deadline: 100 });
    const { fn, calls } = script(hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(99);
    expect(result.status).toBe('pending');
    expect(calls[0]!.ctx.signal.aborted).toBe(false);
    await clock.tickAsync(1);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(100);
    const error = result.error as DeadlineExceededError;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.name).toBe('DeadlineExceededError');
    expect(error.code).toBe('ASYNCBACKOFF_DEADLINE_EXCEEDED');
    expect(error.timeout).toBe(100);
    expect(error.attempts).toBe(1);
    expect(calls[0]!.ctx.signal.reason).toBe(error);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 1, done: 1, cancels: 1, giveUps: 1, sumTime: 100 }),
    );
  });

  it('rejects with the last failed attempt’s error, not the DeadlineExceededError, once an attempt failed', async () => {
    const first = new TransientError('first');
    const backoff = new Backoff({ deadline: 100, pause: 10, retryAll: true });
    const { fn, calls } = script(rejectIn(30, first), hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(100);
    expect(result.error).toBe(first);
    expect(calls.map((c) => c.at)).toEqual([0, 40]);
    const cut = calls[1]!.ctx.signal.reason as DeadlineExceededError;
    expect(cut).toBeInstanceOf(DeadlineExceededError);
    expect(cut.attempts).toBe(2);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 2,
        done: 2,
        errors: 1,
        cancels: 1,
        retries: 1,
        giveUps: 1,
        sleptTime: 10,
        sumTime: 90,
      }),
    );
  });

  it('starts no attempt once the deadline passed', async () => {
    const backoff = new Backoff({ deadline: 100, retryAll: true });
    let n = 0;
    const { fn, calls } = script(() => rejectIn(30, new TransientError(`failure ${++n}`))());
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(calls.map((c) => c.at)).toEqual([0, 30, 60, 90]);
    expect(result.at).toBe(100);
    expect((result.error as Error).message).toBe('failure 3');
    expect(calls[3]!.ctx.signal.reason).toBeInstanceOf(DeadlineExceededError);
  });

  it.each([50, 80])(
    'fails fast: a pause of %i ms ending at or past the deadline is not slept, the last error rejects at the failure time',
    async (pause) => {
      const failure = new TransientError('failed at 50');
      const backoff = new Backoff({ deadline: 100, pause, retryAll: true });
      const { fn, calls } = script<string>(rejectIn(50, failure), resolveIn(0, 'never reached'));
      const result = track(backoff.execute(fn));
      await clock.tickAsync(50);
      expect(result.status).toBe('rejected');
      expect(result.at).toBe(50);
      expect(result.error).toBe(failure);
      await clock.tickAsync(1000);
      expect(calls).toHaveLength(1);
      expect(backoff.statistics).toEqual(
        stats({ attempts: 1, done: 1, errors: 1, giveUps: 1, sumTime: 50 }),
      );
    },
  );

  it('sleeps a pause that ends just before the deadline and starts the next attempt then', async () => {
    const failure = new TransientError('failed at 50');
    const backoff = new Backoff({ deadline: 100, pause: 49, retryAll: true });
    const { fn, calls } = script(rejectIn(50, failure), hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(calls.map((c) => c.at)).toEqual([0, 99]);
    expect(result.at).toBe(100);
    expect(result.error).toBe(failure);
    expect(calls[1]!.ctx.signal.reason).toBeInstanceOf(DeadlineExceededError);
  });

  it('deadline 0 rejects at once with a DeadlineExceededError and never calls fn', async () => {
    const backoff = new Backoff({ deadline: 0 });
    const fn = vi.fn(async () => 'never');
    const error = await backoff.execute(fn).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).timeout).toBe(0);
    expect((error as DeadlineExceededError).attempts).toBe(0);
    expect(fn).not.toHaveBeenCalled();
    expect(now()).toBe(0);
    expect(clock.countTimers()).toBe(0);
  });

  it('deadline 0 counts as a give-up in statistics (an execution that failed finally)', async () => {
    const backoff = new Backoff({ deadline: 0 });
    await backoff.execute(async () => 'never').catch(() => {});
    expect(backoff.statistics).toEqual(stats({ giveUps: 1 }));
  });

  it('the deadline wins over an attempt timeout falling on the same instant', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, deadline: 50 });
    const { fn, calls } = script(hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(50);
    expect(result.at).toBe(50);
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    expect(calls[0]!.ctx.signal.reason).toBe(result.error);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 1, done: 1, cancels: 1, giveUps: 1, sumTime: 50 }),
    );
  });

  it('the deadline wins over a later attempt’s timeout on the same instant, rejecting with the last failure', async () => {
    const backoff = new Backoff({ attemptTimeout: 30, deadline: 60 });
    const { fn, calls } = script(hang);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(60);
    expect(calls.map((c) => c.at)).toEqual([0, 30]);
    expect(result.at).toBe(60);
    expect(result.error).toBe(calls[0]!.ctx.signal.reason);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(calls[1]!.ctx.signal.reason).toBeInstanceOf(DeadlineExceededError);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 2,
        done: 2,
        errors: 1,
        timeouts: 1,
        cancels: 1,
        retries: 1,
        giveUps: 1,
        sumTime: 60,
      }),
    );
  });

  it('bounds hooks too: a pending async onRetry hook does not hold the execution past the deadline', async () => {
    const failure = new TransientError('failed');
    const backoff = new Backoff({ deadline: 100, retryAll: true, onRetry: () => hang() });
    const { fn, calls } = script(rejectIn(10, failure));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(99);
    expect(result.status).toBe('pending');
    await clock.tickAsync(1);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(failure);
    expect(calls).toHaveLength(1);
  });

  it('currentAttempt().remaining is the nearer of the deadline and the attempt timeout', async () => {
    const seen: number[] = [];
    const probe = async () => {
      seen.push(currentAttempt()!.remaining);
      await new Promise((resolve) => setTimeout(resolve, 30));
      seen.push(currentAttempt()!.remaining);
    };
    const far = new Backoff({ deadline: 100, attemptTimeout: 500 });
    const near = new Backoff({ deadline: 100, attemptTimeout: 40 });
    const results = [track(far.execute(probe)), track(near.execute(probe))];
    await clock.tickAsync(30);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(seen).toEqual([100, 40, 70, 10]);
  });

  it('currentAttempt().remaining is Infinity without any bound', async () => {
    const backoff = new Backoff();
    await expect(backoff.execute(() => currentAttempt()!.remaining)).resolves.toBe(
      Number.POSITIVE_INFINITY,
    );
  });
});

// ---- rule 3 -------------------------------------------------------------------------------------

describe('rule 3: pause', () => {
  it('waits exactly the pause between attempts and never after the last one', async () => {
    const backoff = new Backoff({ pause: 40, maxTries: 3, retryAll: true });
    const errors = [new Error('1'), new Error('2'), new Error('3')];
    const { fn, calls } = script(
      rejectIn(10, errors[0]),
      rejectIn(10, errors[1]),
      rejectIn(10, errors[2]),
    );
    const result = track(backoff.execute(fn));
    await clock.tickAsync(110);
    expect(calls.map((c) => c.at)).toEqual([0, 50, 100]);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(110);
    expect(result.error).toBe(errors[2]);
    await clock.tickAsync(0);
    expect(clock.countTimers()).toBe(0); // no pause was started after the last attempt
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 3,
        done: 3,
        errors: 3,
        retries: 2,
        giveUps: 1,
        sleptTime: 80,
        sumTime: 30,
      }),
    );
  });

  it('pause 0: the first immediate retry runs in a microtask, with no timer and no clock movement', async () => {
    const backoff = new Backoff({ retryAll: true });
    const timersSeen: number[] = [];
    let n = 0;
    const fn = async () => {
      timersSeen.push(clock.countTimers());
      if (++n < 2) throw new TransientError(`failure ${n}`);
      return 'second time';
    };
    // Awaited without ticking: the retry cannot be waiting on a (fake) timer.
    await expect(backoff.execute(fn)).resolves.toBe('second time');
    // The second attempt sees the one immediate that marks the end of this turn.
    expect(timersSeen).toEqual([0, 1]);
    await clock.tickAsync(0);
    expect(clock.countTimers()).toBe(0);
    expect(now()).toBe(0);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 2, done: 2, errors: 1, retries: 1, successes: 1 }),
    );
  });

  it('pause 0: a further immediate retry in the same turn waits for the check phase, never a timer', async () => {
    const backoff = new Backoff({ retryAll: true });
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setImmediateSpy = vi.spyOn(globalThis, 'setImmediate');
    let n = 0;
    const fn = async () => {
      if (++n < 4) throw new TransientError(`failure ${n}`);
      return n;
    };
    const result = track(backoff.execute(fn));
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
    // Attempts 1 and 2 ran in this turn; attempt 3 waits for an immediate.
    expect(n).toBe(2);
    expect(setImmediateSpy).toHaveBeenCalledTimes(1);
    await clock.runAllAsync();
    expect(result.status).toBe('fulfilled');
    expect(result.value).toBe(4);
    expect(setTimeoutSpy).not.toHaveBeenCalled();
  });

  it('pause 0 never starves the event loop: timers keep firing and an abort is honoured on time', async () => {
    const shutdown = new AbortController();
    const backoff = new Backoff({ deadline: 300, retryAll: true, signal: shutdown.signal });
    let ticks = 0;
    const interval = setInterval(() => ticks++, 10);
    let calls = 0;
    const result = track(
      backoff.execute(() => {
        calls++;
        throw new TransientError('fast failure'); // no I/O at all
      }),
    );
    const reason = new Error('shutting down');
    setTimeout(() => shutdown.abort(reason), 20);
    await clock.tickAsync(25);
    clearInterval(interval);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(reason);
    expect(result.at).toBe(20);
    expect(ticks).toBe(2);
    // A few attempts per fake millisecond (an immediate created during a tick runs 1 ms later),
    // not the tens of thousands a microtask loop makes.
    expect(calls).toBeGreaterThan(10);
    expect(calls).toBeLessThanOrEqual(3 * 21);
    await clock.tickAsync(0);
    expect(clock.countTimers()).toBe(0);
  });

  it('pause 0 after a synchronous throw retries in microtasks (no timer, no turn), not in the same stack', async () => {
    const backoff = new Backoff({ retryAll: true });
    let n = 0;
    const fn = () => {
      if (++n === 1) throw new TransientError('sync');
      return 'ok';
    };
    const promise = backoff.execute(fn);
    expect(n).toBe(1);
    // A few microtask hops (the retry is started by the relay's async loop; see stack traces),
    // with no clock tick: no timer and no check phase in between.
    for (let hop = 0; hop < 4 && n < 2; hop++) await null;
    expect(n).toBe(2);
    await expect(promise).resolves.toBe('ok');
    await clock.tickAsync(0);
    expect(clock.countTimers()).toBe(0);
  });

  it('pause 0 survives thousands of synchronous throws without growing the stack', async () => {
    const backoff = new Backoff({ retryAll: true });
    let n = 0;
    const fn = () => {
      if (++n < 20_000) throw new TransientError('sync');
      return n;
    };
    await expect(settle(clock, backoff.execute(fn))).resolves.toBe(20_000);
  });
});

// ---- rule 4 -------------------------------------------------------------------------------------

describe('rule 4: maxTries', () => {
  it('calls fn at most maxTries times in total and rejects with the last error', async () => {
    const backoff = new Backoff({ maxTries: 3, retryAll: true });
    let n = 0;
    const thrown: Error[] = [];
    const fn = vi.fn(async () => {
      const error = new TransientError(`failure ${++n}`);
      thrown.push(error);
      throw error;
    });
    const error = await settle(clock, backoff.execute(fn)).catch((e: unknown) => e);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(error).toBe(thrown[2]);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 3, done: 3, errors: 3, retries: 2, giveUps: 1 }),
    );
  });

  it('maxTries 1 means one attempt and no retry', async () => {
    const failure = new TransientError('once');
    const backoff = new Backoff({ maxTries: 1, retryAll: true, pause: 100 });
    const fn = vi.fn(rejectNow(failure));
    const result = track(backoff.execute(fn));
    await flushMicrotasks();
    expect(result.error).toBe(failure);
    expect(result.at).toBe(0);
    expect(fn).toHaveBeenCalledOnce();
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, errors: 1, giveUps: 1 }));
  });

  it('stops at the first success, below maxTries', async () => {
    const backoff = new Backoff({ maxTries: 5, retryAll: true });
    const { fn, calls } = script<string>(rejectNow(new TransientError('x')), () => 'ok');
    await expect(backoff.execute(fn)).resolves.toBe('ok');
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => c.ctx.attempt)).toEqual([1, 2]);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 2, done: 2, errors: 1, retries: 1, successes: 1 }),
    );
  });
});

// ---- rule 5 -------------------------------------------------------------------------------------

describe('rule 5: exceptions and giveup', () => {
  it('retries an error that is an instance of a listed class, subclasses included', async () => {
    const backoff = new Backoff({ exceptions: [TransientError] });
    const { fn, calls } = script<string>(
      rejectNow(new FlakyError('subclass')),
      rejectNow(new TransientError('class')),
      () => 'ok',
    );
    await expect(settle(clock, backoff.execute(fn))).resolves.toBe('ok');
    expect(calls).toHaveLength(3);
  });

  it('rejects at once with the identical object when the error matches no listed class', async () => {
    const fatal = new FatalError('no retry');
    const backoff = new Backoff({ exceptions: [TransientError], pause: 100, maxTries: 5 });
    const { fn, calls } = script(rejectIn(10, fatal));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(10);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(fatal);
    expect(result.at).toBe(10);
    await clock.tickAsync(1000);
    expect(calls).toHaveLength(1);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 1, done: 1, errors: 1, giveUps: 1, sumTime: 10 }),
    );
  });

  it('a subclass of a listed class matches, a superclass does not', async () => {
    const backoff = new Backoff({ exceptions: [FlakyError] });
    const parent = new TransientError('superclass');
    const { fn, calls } = script(rejectNow(parent));
    await expect(backoff.execute(fn)).rejects.toBe(parent);
    expect(calls).toHaveLength(1);
  });

  it('with the default exceptions [] an error is not retried', async () => {
    const backoff = new Backoff({ maxTries: 5 });
    const failure = new Error('plain');
    const fn = vi.fn(rejectNow(failure));
    await expect(backoff.execute(fn)).rejects.toBe(failure);
    expect(fn).toHaveBeenCalledOnce();
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, errors: 1, giveUps: 1 }));
  });

  it('retryAll retries values that are not errors and rethrows the identical value', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 3 });
    const thrown = [{ code: 1 }, 'a string', { code: 3 }];
    const { fn, calls } = script(rejectNow(thrown[0]), rejectNow(thrown[1]), rejectNow(thrown[2]));
    await expect(settle(clock, backoff.execute(fn))).rejects.toBe(thrown[2]);
    expect(calls).toHaveLength(3);
  });

  it('asyncretry(n) retries every thrown value unless exceptions is given', async () => {
    const retryAny = asyncretry(3);
    const any = script(rejectNow(new FatalError('any')));
    await expect(settle(clock, retryAny(any.fn)())).rejects.toBeInstanceOf(FatalError);
    expect(any.calls).toHaveLength(3);

    const retryTransient = asyncretry(3, { exceptions: [TransientError] });
    const fatal = new FatalError('not listed');
    const filtered = script(rejectNow(fatal));
    await expect(retryTransient(filtered.fn)()).rejects.toBe(fatal);
    expect(filtered.calls).toHaveLength(1);
  });

  it('giveup returning true rejects at once with that error', async () => {
    const failure = new TransientError('stop here');
    const giveup = vi.fn((_error: unknown) => true);
    const backoff = new Backoff({ exceptions: [TransientError], giveup, maxTries: 5 });
    const { fn, calls } = script(rejectNow(failure));
    await expect(backoff.execute(fn)).rejects.toBe(failure);
    expect(calls).toHaveLength(1);
    expect(giveup).toHaveBeenCalledOnce();
    expect(giveup.mock.calls[0]![0]).toBe(failure);
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, errors: 1, giveUps: 1 }));
  });

  it('giveup returning false lets a retriable error be retried', async () => {
    const giveup = vi.fn((_error: unknown) => false);
    const backoff = new Backoff({ retryAll: true, giveup, maxTries: 3 });
    const errors = [new Error('1'), new Error('2'), new Error('3')];
    const { fn, calls } = script(rejectNow(errors[0]), rejectNow(errors[1]), rejectNow(errors[2]));
    await expect(settle(clock, backoff.execute(fn))).rejects.toBe(errors[2]);
    expect(calls).toHaveLength(3);
    expect(giveup.mock.calls.map((c) => c[0])).toEqual(errors);
  });

  it('giveup decides error by error', async () => {
    const backoff = new Backoff({
      retryAll: true,
      giveup: (error) => (error as Error).message === 'fatal',
    });
    const fatal = new Error('fatal');
    const { fn, calls } = script(rejectNow(new Error('retry me')), rejectNow(fatal), () => 'ok');
    await expect(backoff.execute(fn)).rejects.toBe(fatal);
    expect(calls).toHaveLength(2);
  });

  it('giveup is not consulted for an error that is not retriable', async () => {
    const giveup = vi.fn((_error: unknown) => false);
    const backoff = new Backoff({ exceptions: [TransientError], giveup });
    const fatal = new FatalError('x');
    await expect(backoff.execute(rejectNow(fatal))).rejects.toBe(fatal);
    expect(giveup).not.toHaveBeenCalled();
  });

  it('a giveup that throws rejects the execution with what it threw', async () => {
    const broken = new Error('giveup is broken');
    const backoff = new Backoff({
      retryAll: true,
      maxTries: 5,
      giveup: () => {
        throw broken;
      },
    });
    const { fn, calls } = script(rejectNow(new TransientError('x')));
    await expect(backoff.execute(fn)).rejects.toBe(broken);
    expect(calls).toHaveLength(1);
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, errors: 1, giveUps: 1 }));
  });
});

// ---- rule 6 -------------------------------------------------------------------------------------

interface Harness {
  /** The instance whose statistics count the executions. */
  readonly backoff: Backoff;
  readonly signal: AbortSignal;
  run<T>(fn: () => T | Promise<T>): Promise<T>;
  abort(reason?: unknown): void;
  /** Calls run(fn) when the cancelling source is already aborted with `reason`. */
  runAborted<T>(fn: () => T | Promise<T>, reason: unknown): Promise<T>;
}

interface Source {
  readonly name: string;
  setup(options: BackoffOptions): Harness;
}

const sources: Source[] = [
  {
    name: 'the instance signal (options.signal)',
    setup(options) {
      const controller = new AbortController();
      const backoff = new Backoff({ ...options, signal: controller.signal });
      return {
        backoff,
        signal: controller.signal,
        run: (fn) => backoff.execute(fn),
        abort: (reason) => controller.abort(reason),
        runAborted(fn, reason) {
          controller.abort(reason);
          return backoff.execute(fn);
        },
      };
    },
  },
  {
    name: 'a withSignal signal',
    setup(options) {
      const controller = new AbortController();
      const backoff = new Backoff(options);
      return {
        backoff,
        signal: controller.signal,
        run: (fn) => backoff.withSignal(controller.signal).execute(fn),
        abort: (reason) => controller.abort(reason),
        runAborted(fn, reason) {
          controller.abort(reason);
          return backoff.withSignal(controller.signal).execute(fn);
        },
      };
    },
  },
  {
    name: 'the enclosing attempt',
    setup(options) {
      const controller = new AbortController();
      const outer = new Backoff({ signal: controller.signal });
      const backoff = new Backoff(options);
      return {
        backoff,
        signal: controller.signal,
        run<T>(fn: () => T | Promise<T>) {
          let inner: Promise<T> | undefined;
          outer
            .execute(() => {
              inner = backoff.execute(fn);
              return inner;
            })
            .catch(() => {});
          return inner!;
        },
        abort: (reason) => controller.abort(reason),
        runAborted<T>(fn: () => T | Promise<T>, reason: unknown) {
          let inner: Promise<T> | undefined;
          outer
            .execute(() => {
              controller.abort(reason); // the enclosing attempt is aborted right here
              inner = backoff.execute(fn);
              return inner;
            })
            .catch(() => {});
          return inner!;
        },
      };
    },
  },
];

describe.each(sources)('rule 6: cancellation by $name', (source) => {
  it('stops a running attempt at once, aborting its signal with the exact reason', async () => {
    const h = source.setup({ retryAll: true, pause: 10 });
    const reason = new Error('shutting down');
    const { fn, calls } = script(hang);
    const result = track(h.run(fn));
    await clock.tickAsync(30);
    h.abort(reason);
    await flushMicrotasks();
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(reason);
    expect(result.at).toBe(30);
    expect(calls[0]!.ctx.signal.aborted).toBe(true);
    expect(calls[0]!.ctx.signal.reason).toBe(reason);
    await clock.tickAsync(1000);
    expect(calls).toHaveLength(1);
    expect(h.backoff.statistics).toEqual(stats({ attempts: 1, done: 1, cancels: 1, sumTime: 30 }));
  });

  it('stops during a pause with the exact reason and never calls fn again', async () => {
    const h = source.setup({ retryAll: true, pause: 100 });
    const reason = { why: 'not an Error' };
    const { fn, calls } = script(rejectIn(10, new TransientError('failed')));
    const result = track(h.run(fn));
    await clock.tickAsync(50);
    expect(result.status).toBe('pending');
    h.abort(reason);
    await flushMicrotasks();
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(reason);
    expect(result.at).toBe(50);
    await clock.tickAsync(1000);
    expect(calls).toHaveLength(1);
    expect(h.backoff.statistics).toEqual(
      stats({ attempts: 1, done: 1, errors: 1, retries: 1, sumTime: 10 }),
    );
  });

  it('rejects with the reason and never calls fn when already aborted at call time', async () => {
    const h = source.setup({ retryAll: true });
    const reason = new Error('already gone');
    const fn = vi.fn(async () => 'never');
    await expect(h.runAborted(fn, reason)).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect(h.backoff.statistics).toEqual(ZERO);
  });

  it('an abort without a reason rejects with the signal’s own AbortError', async () => {
    const h = source.setup({});
    const result = track(h.run(hang));
    await clock.tickAsync(5);
    h.abort();
    await flushMicrotasks();
    expect(result.error).toBe(h.signal.reason);
    expect((result.error as Error).name).toBe('AbortError');
  });

  it('a cancellation is not counted as a give-up, also with deadline and attemptTimeout set', async () => {
    const h = source.setup({ attemptTimeout: 50, deadline: 500, retryAll: true });
    const { fn } = script(hang);
    const result = track(h.run(fn));
    await clock.tickAsync(120); // two timeouts, the third attempt runs
    h.abort('stop');
    await flushMicrotasks();
    expect(result.error).toBe('stop');
    expect(h.backoff.statistics).toEqual(
      stats({
        attempts: 3,
        done: 3,
        errors: 2,
        timeouts: 2,
        cancels: 1,
        retries: 2,
        sumTime: 120,
      }),
    );
  });
});

describe('rule 6: cancellation, other cases', () => {
  it('aborting one withSignal view stops only the executions made through that view', async () => {
    const backoff = new Backoff({ deadline: 1000 });
    const a = new AbortController();
    const b = new AbortController();
    const viaA = track(backoff.withSignal(a.signal).execute(resolveIn(100, 'a')));
    const viaB = track(backoff.withSignal(b.signal).execute(resolveIn(100, 'b')));
    const direct = track(backoff.execute(resolveIn(100, 'direct')));
    await clock.tickAsync(10);
    a.abort('a aborted');
    await clock.tickAsync(90);
    expect(viaA.error).toBe('a aborted');
    expect(viaB.value).toBe('b');
    expect(direct.value).toBe('direct');
  });

  it('the instance signal also stops executions made through its withSignal views', async () => {
    const instance = new AbortController();
    const other = new AbortController();
    const backoff = new Backoff({ signal: instance.signal });
    const result = track(backoff.withSignal(other.signal).execute(hang));
    await clock.tickAsync(10);
    instance.abort('instance aborted');
    await flushMicrotasks();
    expect(result.error).toBe('instance aborted');
  });

  it('the statistics count an execution as a success only if it resolved (cancel during an async onSuccess)', async () => {
    const controller = new AbortController();
    const backoff = new Backoff({ signal: controller.signal, onSuccess: () => hang() });
    const result = track(backoff.execute(async () => 'value'));
    await clock.tickAsync(10);
    controller.abort('cancelled while onSuccess runs');
    await clock.tickAsync(10);
    expect(result.status).not.toBe('pending');
    expect(backoff.statistics.successes).toBe(result.status === 'fulfilled' ? 1 : 0);
  });
});

// ---- rule 7 -------------------------------------------------------------------------------------

describe('rule 7: nesting', () => {
  it('an inner execution started after awaits inherits the outer attempt’s cancellation', async () => {
    const controller = new AbortController();
    const outer = new Backoff({ signal: controller.signal });
    const inner = new Backoff({ retryAll: true });
    const innerScript = script(hang);
    let innerResult: Tracked<never> | undefined;
    const outerResult = track(
      outer.execute(async () => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        const promise = inner.execute(innerScript.fn);
        innerResult = track(promise);
        return promise;
      }),
    );
    await clock.tickAsync(30);
    expect(innerScript.calls).toHaveLength(1);
    const reason = new Error('outer cancelled');
    controller.abort(reason);
    await flushMicrotasks();
    expect(innerResult!.error).toBe(reason);
    expect(innerResult!.at).toBe(30);
    expect(innerScript.calls[0]!.ctx.signal.reason).toBe(reason);
    expect(outerResult.error).toBe(reason);
    expect(inner.statistics).toEqual(stats({ attempts: 1, done: 1, cancels: 1, sumTime: 20 }));
  });

  it('an outer attempt timeout cancels the inner execution with the outer’s AttemptTimeoutError', async () => {
    const outer = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const inner = new Backoff({ retryAll: true, pause: 5 });
    const innerScript = script(hang);
    let innerResult: Tracked<never> | undefined;
    let outerSignal: AbortSignal | undefined;
    const outerResult = track(
      outer.execute(async () => {
        outerSignal = currentAttempt()!.signal;
        await null;
        const promise = inner.execute(innerScript.fn);
        innerResult = track(promise);
        return promise;
      }),
    );
    await clock.tickAsync(50);
    expect(outerSignal!.reason).toBeInstanceOf(AttemptTimeoutError);
    expect(innerResult!.error).toBe(outerSignal!.reason);
    expect(innerResult!.at).toBe(50);
    expect(innerScript.calls[0]!.ctx.signal.reason).toBe(outerSignal!.reason);
    expect(outerResult.error).toBe(outerSignal!.reason);
  });

  it.each([
    ['a longer own deadline', { deadline: 200 }, 70],
    ['a shorter own deadline', { deadline: 50 }, 50],
    ['a shorter own attempt timeout', { attemptTimeout: 20 }, 20],
    ['no bound of its own', {}, 70],
  ] as const)(
    'inner remaining is min(own, outer remaining): %s',
    async (_, innerOptions, expected) => {
      const outer = new Backoff({ deadline: 100 });
      const inner = new Backoff(innerOptions);
      let remaining: number | undefined;
      const result = track(
        outer.execute(async () => {
          await new Promise((resolve) => setTimeout(resolve, 30));
          return inner.execute(async () => {
            remaining = currentAttempt()!.remaining;
          });
        }),
      );
      await clock.tickAsync(30);
      expect(result.status).toBe('fulfilled');
      expect(remaining).toBe(expected);
    },
  );

  it('an inner pause does not cross the outer’s remaining time: the inner fails fast', async () => {
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const inner = new Backoff({ retryAll: true, pause: 60 });
    const failure = new TransientError('inner failure');
    const innerScript = script<string>(rejectIn(50, failure), () => 'never');
    let innerResult: Tracked<string> | undefined;
    track(
      outer.execute(() => {
        const promise = inner.execute(innerScript.fn);
        innerResult = track(promise);
        return promise;
      }),
    );
    await clock.tickAsync(50);
    expect(innerResult!.error).toBe(failure);
    expect(innerResult!.at).toBe(50);
    expect(innerScript.calls).toHaveLength(1);
  });

  it('the outer’s reason propagates even when the inner’s own attempt timer falls on the same instant', async () => {
    // Two executions share `outer`, so its attempt timer is re-armed (at t=100) after the inner
    // execution armed its own timer for the same instant (t=105).
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const inner = new Backoff({ attemptTimeout: 60, maxTries: 1 });
    const first = track(outer.execute(resolveIn(10, 'first'))); // attempt expiring at 100, done at 10
    await clock.tickAsync(5);
    let outerSignal: AbortSignal | undefined;
    let innerResult: Tracked<never> | undefined;
    const second = track(
      outer.execute(async () => {
        outerSignal = currentAttempt()!.signal; // expires at 105
        await new Promise((resolve) => setTimeout(resolve, 40));
        const promise = inner.execute(hang); // at 45: own timeout at 105 too
        innerResult = track(promise);
        return promise;
      }),
    );
    await clock.tickAsync(100);
    expect(first.value).toBe('first');
    expect(innerResult!.at).toBe(105);
    // Expected: the outer attempt's AttemptTimeoutError, as when the outer's timer fires first.
    expect(innerResult!.error).not.toBeInstanceOf(DeadlineExceededError); // no deadline anywhere
    expect(innerResult!.error).toBeInstanceOf(AttemptTimeoutError);
    expect(second.error).toBeInstanceOf(AttemptTimeoutError);
    expect(outerSignal!.reason).toBe(second.error);
    expect(innerResult!.error).toBe(outerSignal!.reason);
  });

  it('inside an inner attempt currentAttempt() is the inner one; the outer’s comes back after it', async () => {
    const outer = new Backoff({ retryAll: true, maxTries: 2 });
    const inner = new Backoff({ retryAll: true, maxTries: 3 });
    const seen: Array<[string, number]> = [];
    let outerCalls = 0;
    let innerCalls = 0;
    const result = await settle(
      clock,
      outer.execute(async () => {
        if (++outerCalls === 1) throw new TransientError('outer retry');
        const outerCtx = currentAttempt()!;
        seen.push(['outer', outerCtx.attempt]);
        await inner.execute(async () => {
          await null;
          seen.push(['inner', currentAttempt()!.attempt]);
          expect(currentAttempt()!.signal).not.toBe(outerCtx.signal);
          if (++innerCalls < 3) throw new TransientError('inner retry');
        });
        expect(currentAttempt()).toBe(outerCtx);
        return 'done';
      }),
    );
    expect(result).toBe('done');
    expect(seen).toEqual([
      ['outer', 2],
      ['inner', 1],
      ['inner', 2],
      ['inner', 3],
    ]);
  });

  it.each([
    ['no limits of its own', {}],
    ['a longer attempt timeout of its own', { attemptTimeout: 1000 }],
  ] as const)(
    'an inner attempt times out on its own when the middle execution (%s) is bounded only by an outer attempt that has answered',
    async (_, midOptions) => {
      // The middle attempt's bound (100) is inherited from the outer attempt, which answers at
      // once. Nothing will end the middle attempt at 100 then, so the inner timeout (150) must not
      // wait for it.
      const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
      const mid = new Backoff({ ...midOptions, maxTries: 1 });
      const inner = new Backoff({ attemptTimeout: 150, maxTries: 1 });
      let innerResult: Tracked<never> | undefined;
      const outerResult = track(
        outer.execute(async () => {
          void mid
            .execute(() => {
              innerResult = track(inner.execute(hang));
              return hang();
            })
            .catch(() => {});
          await null;
          return 'outer done';
        }),
      );
      await clock.tickAsync(150);
      expect(outerResult.value).toBe('outer done');
      expect(innerResult!.error).toBeInstanceOf(AttemptTimeoutError);
      expect((innerResult!.error as AttemptTimeoutError).timeout).toBe(150);
      expect(innerResult!.at).toBe(150);
      expect(inner.statistics).toMatchObject({ timeouts: 1, cancels: 0 });
      await clock.tickAsync(1000); // let the middle execution end, if it has a limit
    },
  );
});

// ---- currentAttempt, withSignal, statistics, wrap, execute ------------------------------------------

describe('currentAttempt()', () => {
  it('gives the attempt’s signal, number and remaining time inside fn, after awaits too', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 3, attemptTimeout: 100 });
    const seen: Array<{ attempt: number; same: boolean; remaining: number }> = [];
    const result = track(
      backoff.execute(async () => {
        const before = currentAttempt()!;
        await new Promise((resolve) => setTimeout(resolve, 10));
        await Promise.resolve();
        const after = currentAttempt()!;
        seen.push({ attempt: after.attempt, same: before === after, remaining: after.remaining });
        expect(after.signal).toBeInstanceOf(AbortSignal);
        if (after.attempt < 3) throw new TransientError('again');
        return after.attempt;
      }),
    );
    await clock.tickAsync(30);
    expect(result.value).toBe(3);
    expect(seen).toEqual([
      { attempt: 1, same: true, remaining: 90 },
      { attempt: 2, same: true, remaining: 90 },
      { attempt: 3, same: true, remaining: 90 },
    ]);
  });

  it('is undefined outside any attempt: before, after, and in reactions to execute', async () => {
    expect(currentAttempt()).toBeUndefined();
    const backoff = new Backoff({ attemptTimeout: 100 });
    const promise = backoff.execute(async () => {
      await null;
      return currentAttempt()?.attempt;
    });
    expect(currentAttempt()).toBeUndefined();
    const inReaction = await promise.then((attempt) => [attempt, currentAttempt()] as const);
    expect(inReaction).toEqual([1, undefined]);
    expect(currentAttempt()).toBeUndefined();
  });

  it('is left as it was after each attempt starts, whether fn returns, throws or rejects at once, on every path', async () => {
    const user = new AsyncLocalStorage<string>();
    const shapes = [
      async () => currentAttempt()?.attempt,
      () => {
        throw new TransientError('at once');
      },
      () => Promise.reject(new TransientError('rejected')),
    ];
    // No limits (the fast path, then the plain retry loop), a callback between attempts (an
    // Execution taking over), and the two bounds.
    for (const options of [{}, { onRetry() {} }, { attemptTimeout: 100 }, { deadline: 100 }])
      for (const fn of shapes) {
        const backoff = new Backoff({
          maxTries: 2,
          pause: 0,
          exceptions: [TransientError],
          ...options,
        });
        await user.run('caller', async () => {
          const seen: unknown[] = [];
          const promise = backoff.execute(() => {
            seen.push(user.getStore(), currentAttempt()?.attempt);
            return fn();
          });
          // Synchronously after execute() returned: the caller's own context, and no attempt.
          expect([user.getStore(), currentAttempt()]).toEqual(['caller', undefined]);
          await promise.catch(() => {});
          expect([user.getStore(), currentAttempt()]).toEqual(['caller', undefined]);
          expect(seen).toEqual(fn === shapes[0] ? ['caller', 1] : ['caller', 1, 'caller', 2]);
        });
        // A nested execution gives the enclosing attempt back when its first attempt has started.
        await new Backoff({ maxTries: 1 }).execute(async () => {
          const outer = currentAttempt();
          const inner = backoff.execute(() => fn());
          expect(currentAttempt()).toBe(outer);
          await inner.catch(() => {});
          expect(currentAttempt()).toBe(outer);
        });
      }
  });

  it('is undefined in retry filters, which run between attempts, on every path', async () => {
    for (const options of [{}, { onRetry() {} }, { attemptTimeout: 100 }, { deadline: 100 }])
      for (const fn of [
        async () => {
          throw new TransientError('async');
        },
        () => {
          throw new TransientError('at once');
        },
      ]) {
        const seen: unknown[] = [];
        const backoff = new Backoff({
          maxTries: 3,
          pause: 0,
          retryOn: () => {
            seen.push(currentAttempt());
            return true;
          },
          ...options,
        });
        const outcome = backoff.execute(fn).catch((error: unknown) => error);
        await clock.tickAsync(0); // the second retry at once waits for the next turn
        expect(await outcome).toBeInstanceOf(TransientError);
        expect(seen, JSON.stringify(options)).toEqual([undefined, undefined, undefined]);
      }
  });

  it('the attempt signal read after the attempt was aborted is already aborted with the reason', async () => {
    const backoff = new Backoff({ attemptTimeout: 10, maxTries: 1 });
    let ctx: AttemptContext | undefined;
    const result = track(
      backoff.execute(() => {
        ctx = currentAttempt(); // the signal itself is not read during the attempt
        return hang();
      }),
    );
    await clock.tickAsync(10);
    expect(ctx!.signal.aborted).toBe(true);
    expect(ctx!.signal.reason).toBe(result.error);
  });
});

/**
 * Nested executions: `outer` runs `mid` inside its attempt, which runs `inner` inside its own (or
 * `outer` runs `inner` directly, without `mid`); mid and inner hang, and the outer attempt answers
 * when `answer` is called.
 */
function startNested(outer: Backoff, inner: Backoff, mid?: Backoff) {
  let answer!: (value: string) => void;
  let midResult: Tracked<never> | undefined;
  let innerResult!: Tracked<never>;
  const startInner = () => {
    innerResult = track(inner.execute(hang));
    return hang();
  };
  const outerResult = track(
    outer.execute(() => {
      if (mid === undefined) startInner();
      else midResult = track(mid.execute(startInner));
      return new Promise<string>((resolve) => (answer = resolve));
    }),
  );
  return { answer: (value: string) => answer(value), outerResult, midResult, innerResult };
}

describe('on a late event loop (timers running more than 2 ms late)', () => {
  // `clock.jump` moves the clock as a blocked event loop would: every timer due in between runs
  // late, at the new time. An answer that "arrived" meanwhile is given right after the jump, before
  // the check phase (`tickAsync(1)` runs the immediates), as Node reads I/O in the poll phase.

  it('an attempt timeout waits for an answer that arrived while the loop was blocked', async () => {
    const backoff = new Backoff({ attemptTimeout: 20, maxTries: 1 });
    let answer!: (value: string) => void;
    const result = track(
      backoff.execute(() => new Promise<string>((resolve) => (answer = resolve))),
    );
    clock.jump(30);
    expect(result.status).toBe('pending');
    answer('done');
    await clock.tickAsync(1);
    expect(result.value).toBe('done');
    expect(backoff.statistics).toMatchObject({ timeouts: 0, successes: 1 });
  });

  it('without an answer the attempt still times out, in the same turn', async () => {
    const backoff = new Backoff({ attemptTimeout: 20, maxTries: 1 });
    const result = track(backoff.execute(hang));
    clock.jump(30);
    await clock.tickAsync(1);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(result.at).toBe(31);
  });

  it('2 ms late or less, the verdict is given at once', async () => {
    const backoff = new Backoff({ attemptTimeout: 20, maxTries: 1 });
    const result = track(backoff.execute(hang));
    clock.jump(22);
    await flushMicrotasks();
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(result.at).toBe(22);
  });

  it('a late deadline makes the less late attempt timer wait too, so the answer wins', async () => {
    // The deadline timer runs 3 ms late, the attempt timer 2 ms: judged alone, the attempt timer
    // would find the deadline passed and reject before the answer is read.
    const backoff = new Backoff({ deadline: 100, attemptTimeout: 101, maxTries: 1 });
    let answer!: (value: string) => void;
    const result = track(
      backoff.execute(() => new Promise<string>((resolve) => (answer = resolve))),
    );
    clock.jump(103);
    answer('done');
    await clock.tickAsync(1);
    expect(result.value).toBe('done');
  });

  it('an inner attempt left to a late outer timer still times out once the outer has answered', async () => {
    // The inner attempt (101 ms) ends with the outer one (100 ms): it leaves the verdict to the
    // outer's timer. If the outer answers meanwhile, the inner must not be forgotten.
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const inner = new Backoff({ attemptTimeout: 101, maxTries: 1 });
    const { answer, outerResult, innerResult } = startNested(outer, inner);
    clock.jump(103);
    answer('done');
    await clock.tickAsync(1);
    expect(outerResult.value).toBe('done');
    expect(innerResult.error).toBeInstanceOf(AttemptTimeoutError);
    expect(innerResult.at).toBe(104);
  });

  it('an inner attempt that left its verdict to an outer one gets it back when the outer answers instead', async () => {
    // The inner queue's timer runs first and on time enough to judge at once; it finds the outer
    // bound passed and leaves the verdict to the outer's timer, which runs late and waits for the
    // check phase, by when the outer has answered.
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const inner = new Backoff({ attemptTimeout: 101, maxTries: 1 });
    await inner.execute(async () => 'arms the inner timer for 101'); // then leaves it armed
    const { answer, outerResult, innerResult } = startNested(outer, inner);
    clock.jump(103); // the inner timer (armed first) runs 2 ms late, the outer's 3 ms
    expect(innerResult.status).toBe('pending');
    answer('done');
    await flushMicrotasks();
    expect(outerResult.value).toBe('done');
    expect(innerResult.error).toBeInstanceOf(AttemptTimeoutError);
    expect(innerResult.at).toBe(103);
  });

  it('a late timer judges as of when the attempt came due: the bound that came first decides', async () => {
    // outer 100 > mid 102 > inner 101. The inner timeout (due 101) comes after the outer bound
    // (100) it inherits through mid, so it is the outer's to decide; mid's own 102 must not
    // decide it merely because it is also overdue by the time the late timers run.
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const mid = new Backoff({ attemptTimeout: 102, maxTries: 1 });
    const inner = new Backoff({ attemptTimeout: 101, maxTries: 1 });
    await inner.execute(async () => 'arms the inner timer first, as due order would');
    const { answer, outerResult, midResult, innerResult } = startNested(outer, inner, mid);
    clock.jump(103);
    answer('done'); // the outer answers before the check phase: nothing cancels the others
    await clock.tickAsync(1);
    expect(outerResult.value).toBe('done');
    expect((innerResult.error as AttemptTimeoutError).timeout).toBe(101);
    expect(inner.statistics).toMatchObject({ timeouts: 1, cancels: 0 });
    expect((midResult!.error as AttemptTimeoutError).timeout).toBe(102);
    expect(mid.statistics).toMatchObject({ timeouts: 1, cancels: 0 });
  });

  it('late timers of several queues are judged across queues in the order they came due', async () => {
    // outer 100 > mid 102 > inner 101, started at 2; an earlier mid call (due 102) keeps mid's
    // timer first in line. Judged queue by queue, mid's own timeout (due 104) would cancel the
    // inner execution, whose own timeout (due 103) came first.
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const mid = new Backoff({ attemptTimeout: 102, maxTries: 1 });
    const inner = new Backoff({ attemptTimeout: 101, maxTries: 1 });
    const stray = track(mid.execute(hang));
    await clock.tickAsync(2);
    const { answer, outerResult, midResult, innerResult } = startNested(outer, inner, mid);
    clock.jump(104); // to 106: every timer runs late
    answer('done');
    await clock.tickAsync(1);
    expect(outerResult.value).toBe('done');
    expect((stray.error as AttemptTimeoutError).timeout).toBe(102);
    expect((innerResult.error as AttemptTimeoutError).timeout).toBe(101);
    expect(inner.statistics).toMatchObject({ timeouts: 1, cancels: 0 });
    expect((midResult!.error as AttemptTimeoutError).timeout).toBe(102);
    expect(mid.statistics).toMatchObject({ timeouts: 2, cancels: 0 });
  });

  it('an attempt timeout that came due before the deadline decides, whichever timer ran first', async () => {
    const backoff = new Backoff({ attemptTimeout: 160, deadline: 210, retryAll: true });
    const result = track(backoff.execute(hang));
    clock.jump(300); // both ran late; the deadline queue's timer was armed first
    await clock.tickAsync(1);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(backoff.statistics).toMatchObject({ attempts: 1, timeouts: 1, cancels: 0 });
  });

  it.each([
    ['times out', false],
    ['answers', true],
  ] as const)(
    'a pause that ends past the enclosing bound waits for that attempt: it %s',
    async (_, answers) => {
      const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
      const inner = new Backoff({ pause: 50, maxTries: 2, retryAll: true });
      let calls = 0;
      let answer!: (value: string) => void;
      let innerResult: Tracked<unknown> | undefined;
      const outerResult = track(
        outer.execute(() => {
          innerResult = track(
            inner.execute(async () => {
              if (++calls === 1) throw new Error('first');
              return 'second';
            }),
          );
          return new Promise<string>((resolve) => (answer = resolve));
        }),
      );
      await flushMicrotasks(); // the inner attempt failed; its pause ends at 50
      clock.jump(150); // the loop was blocked past the outer bound (100)
      expect(calls).toBe(1);
      if (answers) answer('done');
      await clock.tickAsync(1);
      if (answers) {
        expect(outerResult.value).toBe('done');
        expect(calls).toBe(2); // no bound is left to keep: the inner execution goes on
        expect(innerResult!.value).toBe('second');
      } else {
        expect(outerResult.error).toBeInstanceOf(AttemptTimeoutError);
        expect(calls).toBe(1);
        expect(innerResult!.error).toBe(outerResult.error);
      }
    },
  );

  it.each([
    ['times out', false],
    ['answers', true],
  ] as const)(
    'an execution started past the enclosing bound waits for that attempt: it %s',
    async (_, answers) => {
      // Found by the soak: a nested execute() called once the enclosing attempt's bound had
      // passed, before its timer ran (a stall), rejected at once with a DeadlineExceededError of
      // its own deadline "after 0 attempts", which the outer attempt then failed with (not
      // retriable) instead of timing out.
      const outer = new Backoff({ attemptTimeout: 100, maxTries: 2 });
      const inner = new Backoff({ deadline: 3_000 });
      let calls = 0;
      let answer!: (value: string) => void;
      let innerResult: Tracked<unknown> | undefined;
      const outerResult = track(
        outer.execute((): Promise<string> => {
          if (currentAttempt()!.attempt === 2) return Promise.resolve('retried');
          // Due at 10, run late at 150 with the rest: inside the attempt (its async context, which
          // the fake timer does not carry by itself), past its bound (100).
          setTimeout(
            AsyncResource.bind(() => {
              innerResult = track(
                inner.execute(async () => {
                  calls++;
                  return 'inner';
                }),
              );
            }),
            10,
          );
          return new Promise<string>((resolve) => (answer = resolve));
        }),
      );
      clock.jump(150); // the loop was blocked past the outer bound (100)
      expect(innerResult!.status).toBe('pending');
      if (answers) answer('done');
      await clock.tickAsync(1);
      if (answers) {
        expect(outerResult.value).toBe('done');
        expect(calls).toBe(1); // no bound is left to keep: the inner execution goes on
        expect(innerResult!.value).toBe('inner');
      } else {
        expect(calls).toBe(0);
        expect(innerResult!.error).toBeInstanceOf(AttemptTimeoutError);
        expect(outerResult.value).toBe('retried'); // the outer attempt timed out: retriable
        expect(outer.statistics).toMatchObject({ attempts: 2, timeouts: 1 });
      }
    },
  );

  it('a pause timer that runs past the deadline starts no attempt', async () => {
    const first = new TransientError('first');
    const backoff = new Backoff({ deadline: 150, pause: 100, exceptions: [TransientError] });
    let calls = 0;
    const result = track(
      backoff.execute(async () => {
        calls++;
        throw first;
      }),
    );
    await flushMicrotasks(); // the first attempt failed; the pause ends at 100
    clock.jump(300); // the loop was blocked past the deadline
    await clock.tickAsync(1);
    expect(calls).toBe(1);
    expect(result.error).toBe(first);
  });
});

describe('a budget that throws', () => {
  it('a budget whose recordFailure throws rejects the execution with that error', async () => {
    const boom = new Error('budget broke');
    const backoff = new Backoff({
      attemptTimeout: 10,
      retryAll: true,
      budget: {
        tryAcquire: () => true,
        recordSuccess() {},
        recordFailure() {
          throw boom;
        },
      },
    });
    const result = track(backoff.execute(hang));
    await clock.tickAsync(10); // the attempt timeout records the failure from a timer
    expect(result.error).toBe(boom);
  });
});

describe('context: false', () => {
  it('runs fn outside any attempt context: currentAttempt() is undefined there, after awaits too', async () => {
    const backoff = new Backoff({ context: false, retryAll: true, maxTries: 2 });
    const seen: unknown[] = [];
    const result = track(
      backoff.execute(async () => {
        seen.push(currentAttempt());
        await null;
        seen.push(currentAttempt());
        if (seen.length < 4) throw new TransientError('again');
        return 'ok';
      }),
    );
    await flushMicrotasks();
    expect(result.value).toBe('ok');
    expect(seen).toEqual([undefined, undefined, undefined, undefined]);
    expect(backoff.statistics).toMatchObject({ attempts: 2, errors: 1, successes: 1 });
  });

  it('still bounds the attempt: a timeout moves on and the late result is dropped', async () => {
    const backoff = new Backoff({
      context: false,
      attemptTimeout: 20,
      maxTries: 2,
      retryAll: true,
    });
    let calls = 0;
    const result = track(
      backoff.execute(() => {
        calls++;
        return calls === 1 ? new Promise((resolve) => setTimeout(resolve, 100, 'late')) : 'second';
      }),
    );
    await clock.tickAsync(20);
    expect(result.value).toBe('second');
    expect(backoff.statistics).toMatchObject({ attempts: 2, timeouts: 1 });
  });

  it('code inside sees the enclosing attempt, and the instance still inherits its expiry', async () => {
    const outer = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const inner = new Backoff({ context: false, retryAll: true });
    let outerAttempt: AttemptContext | undefined;
    let seenInside: AttemptContext | undefined;
    const outerResult = track(
      outer.execute(async () => {
        outerAttempt = currentAttempt();
        return inner.execute(async () => {
          await null;
          seenInside = currentAttempt();
          return hang();
        });
      }),
    );
    await clock.tickAsync(50);
    expect(seenInside).toBe(outerAttempt);
    expect(outerResult.error).toBeInstanceOf(AttemptTimeoutError);
    expect(outerResult.at).toBe(50);
    expect(inner.statistics).toMatchObject({ attempts: 1, cancels: 1 });
  });

  it('never enables AsyncLocalStorage, so Node < 24 installs no promise hooks', () => {
    const script = fileURLToPath(new URL('./support/context-off.ts', import.meta.url));
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    const out = JSON.parse(child.stdout) as { enabled: boolean | null; calls: number };
    expect(out.calls).toBe(5);
    // Node 24 implements AsyncLocalStorage without hooks and has no such flag.
    if (out.enabled !== null) expect(out.enabled).toBe(false);
  });

  it('is accepted by the decorators', async () => {
    const get = asyncretry(2, { context: false })(async () => currentAttempt());
    await expect(get()).resolves.toBeUndefined();
  });
});

describe('withSignal()', () => {
  it('views share the statistics of the instance they come from', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 2 });
    const a = backoff.withSignal(new AbortController().signal);
    const b = backoff.withSignal(new AbortController().signal);
    await backoff.execute(async () => 1);
    await a.execute(script<number>(rejectNow(new Error('x')), () => 2).fn);
    await b.execute(rejectNow(new Error('y'))).catch(() => {});
    const expected = stats({
      attempts: 5,
      done: 5,
      errors: 3,
      retries: 2,
      giveUps: 1,
      successes: 2,
    });
    expect(backoff.statistics).toEqual(expected);
    expect(a.statistics).toEqual(expected);
    expect(b.statistics).toEqual(expected);
  });

  it('views keep the policy of the instance', async () => {
    const backoff = new Backoff({ attemptTimeout: 20, maxTries: 2 });
    const view = backoff.withSignal(new AbortController().signal);
    const { fn, calls } = script(hang);
    const result = track(view.execute(fn));
    await clock.tickAsync(40);
    expect(calls.map((c) => c.at)).toEqual([0, 20]);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
  });
});

describe('statistics', () => {
  it('is a frozen snapshot', async () => {
    const backoff = new Backoff();
    const before = backoff.statistics;
    await backoff.execute(async () => 'ok');
    expect(before).toEqual(ZERO);
    expect(Object.isFrozen(before)).toBe(true);
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, successes: 1 }));
  });

  it('counts a mix of executions exactly', async () => {
    const backoff = new Backoff({ attemptTimeout: 50, deadline: 200, pause: 10, retryAll: true });
    const results = [
      // success after one failure: 2 attempts (0-20 failed, 30-40 ok)
      track(backoff.execute(script<string>(rejectIn(20, new Error('a')), resolveIn(10, 'ok')).fn)),
      // timeout then success: 2 attempts (0-50 timeout, 60-65 ok)
      track(backoff.execute(script<string>(hang, resolveIn(5, 'ok')).fn)),
      // hangs until the deadline: attempts at 0, 60, 120, 180; cut at 200
      track(backoff.execute(hang)),
    ];
    await clock.tickAsync(200);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(results[2]!.error).toBeInstanceOf(AttemptTimeoutError);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 8,
        done: 8,
        errors: 5, // 1 error + 1 timeout + 3 timeouts
        timeouts: 4,
        cancels: 1,
        retries: 5,
        giveUps: 1,
        successes: 2,
        sleptTime: 50,
        sumTime: 30 + 55 + 50 * 3 + 20,
      }),
    );
  });
});

describe('wrap() and execute()', () => {
  it('wrap keeps `this` on every attempt', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 3 });
    interface Counter {
      factor: number;
      seen: unknown[];
      times(x: number): Promise<number>;
    }
    const counter: Counter = {
      factor: 3,
      seen: [],
      times: backoff.wrap(async function (this: Counter, x: number) {
        this.seen.push(this);
        if (this.seen.length < 2) throw new TransientError('again');
        return this.factor * x;
      }),
    };
    await expect(counter.times(5)).resolves.toBe(15);
    expect(counter.seen).toEqual([counter, counter]);
    expect(counter.seen[0]).toBe(counter);
  });

  it('execute passes the arguments to every attempt and infers the result type from fn', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 3 });
    const seen: unknown[][] = [];
    const promise = backoff.execute(
      async (id: number, name: string) => {
        seen.push([id, name]);
        if (seen.length < 3) throw new TransientError('again');
        return { id, name };
      },
      7,
      'seven',
    );
    expectTypeOf(promise).toEqualTypeOf<Promise<{ id: number; name: string }>>();
    await expect(settle(clock, promise)).resolves.toEqual({ id: 7, name: 'seven' });
    expect(seen).toEqual([
      [7, 'seven'],
      [7, 'seven'],
      [7, 'seven'],
    ]);

    const sync = backoff.execute((a: number, b: number) => a + b, 20, 22);
    expectTypeOf(sync).toEqualTypeOf<Promise<number>>();
    await expect(sync).resolves.toBe(42);

    const typeErrors = () => {
      // @ts-expect-error the argument has the wrong type
      void backoff.execute((a: number) => a, 'not a number');
      // @ts-expect-error an argument is missing
      void backoff.execute((a: number) => a);
    };
    expect(typeof typeErrors).toBe('function');
  });

  it('wrap returns a function with the same parameters and a promised result', async () => {
    const backoff = new Backoff();
    const wrapped = backoff.wrap((a: string, b: number) => a.repeat(b));
    expectTypeOf(wrapped).parameters.toEqualTypeOf<[string, number]>();
    expectTypeOf(wrapped).returns.toEqualTypeOf<Promise<string>>();
    await expect(wrapped('ab', 2)).resolves.toBe('abab');
  });
});
