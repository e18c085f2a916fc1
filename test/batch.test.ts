/**
 * Batches: `backoff.map(items, fn, { concurrency, stopOnError, settled, signal, onProgress })`,
 * through the public API on fake timers (except the memory test, which runs a million synchronous
 * items on the real event loop).
 */

import { getEventListeners } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import FakeTimers from '@sinonjs/fake-timers';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Backoff,
  type BatchProgress,
  circuitBreaker,
  currentAttempt,
  type GiveupEvent,
  rerunFailed,
  tokenBucket,
} from '../src/index.js';
import { FAKED, type InstalledClock, nextMacrotask } from './support/clock.js';

let clock: InstalledClock;

class TransientError extends Error {}
class FatalError extends Error {}

/** Observes a promise so that it never counts as unhandled. */
function settleState<T>(promise: Promise<T>) {
  const state = {
    settled: false,
    value: undefined as T | undefined,
    error: undefined as unknown,
    at: -1,
  };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
      state.at = clock.now;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
      state.at = clock.now;
    },
  );
  return state;
}

/**
 * Resolves with `value` after `ms`, or rejects with the attempt signal's reason when the attempt is
 * aborted first (clearing its timer and its listener, so nothing is left behind).
 */
function work<T>(ms: number, value: T): Promise<T> {
  const signal = currentAttempt()!.signal;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(value);
    }, ms);
    signal.addEventListener('abort', onAbort);
  });
}

/** Like {@link work} but rejects with `error` after `ms`. */
function failIn(ms: number, error: unknown): Promise<never> {
  return work(ms, undefined).then(() => {
    throw error;
  });
}

/** A generator over `values` that counts how many items were pulled and whether it was closed. */
function counted<T>(values: Iterable<T>) {
  const state = { pulled: 0, closed: false };
  function* gen() {
    try {
      for (const value of values) {
        state.pulled++;
        yield value;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, items: gen() };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

const originalAdd = EventTarget.prototype.addEventListener;
const originalRemove = EventTarget.prototype.removeEventListener;

/** Spies on AbortSignal listeners: added, removed, still attached. */
function trackListeners() {
  const live = new Map<EventTarget, Set<unknown>>();
  let added = 0;
  let removed = 0;
  vi.spyOn(AbortSignal.prototype, 'addEventListener').mockImplementation(function (
    this: AbortSignal,
    type,
    listener,
    options,
  ) {
    let set = live.get(this);
    if (set === undefined) {
      set = new Set();
      live.set(this, set);
    }
    if (!set.has(listener)) {
      set.add(listener);
      added++;
    }
    return originalAdd.call(this, type, listener, options);
  });
  vi.spyOn(AbortSignal.prototype, 'removeEventListener').mockImplementation(function (
    this: AbortSignal,
    type,
    listener,
    options,
  ) {
    if (live.get(this)?.delete(listener)) removed++;
    return originalRemove.call(this, type, listener, options);
  });
  return {
    added: () => added,
    removed: () => removed,
    liveOn: (signal: EventTarget) => live.get(signal)?.size ?? 0,
    liveTotal: () => [...live.values()].reduce((n, set) => n + set.size, 0),
  };
}

describe('Backoff.map (fake timers)', () => {
  beforeEach(() => {
    clock = FakeTimers.install({ toFake: [...FAKED] });
  });
  afterEach(() => {
    clock.uninstall();
    vi.restoreAllMocks();
  });

  describe('order and concurrency', () => {
    it('returns the results in input order even when items finish out of order', async () => {
      const backoff = new Backoff();
      const durations = [50, 10, 40, 20, 30];
      const finished: number[] = [];
      const state = settleState(
        backoff.map(
          durations,
          async (ms, index) => {
            const value = await work(ms, `item ${index} (${ms} ms)`);
            finished.push(index);
            return value;
          },
          { concurrency: 5 },
        ),
      );
      await clock.tickAsync(49);
      expect(state.settled).toBe(false);
      await clock.tickAsync(1);
      expect(finished).toEqual([1, 3, 4, 2, 0]);
      expect(state.value).toEqual([
        'item 0 (50 ms)',
        'item 1 (10 ms)',
        'item 2 (40 ms)',
        'item 3 (20 ms)',
        'item 4 (30 ms)',
      ]);
    });

    it('never exceeds the concurrency and reaches it', async () => {
      const backoff = new Backoff();
      let inFlight = 0;
      let max = 0;
      const samples: number[] = [];
      const durations = range(40).map((i) => ((i * 7) % 13) + 1);
      const state = settleState(
        backoff.map(
          durations,
          async (ms) => {
            inFlight++;
            max = Math.max(max, inFlight);
            try {
              return await work(ms, ms * 2);
            } finally {
              inFlight--;
            }
          },
          { concurrency: 4 },
        ),
      );
      // While items remain, every freed slot is refilled in the same instant. (Not at call time:
      // the workers pull synchronously but call fn a microtask later.)
      await clock.tickAsync(0);
      for (let t = 0; t < 20; t++) {
        samples.push(inFlight);
        await clock.tickAsync(1);
      }
      await clock.tickAsync(1000);
      expect(max).toBe(4);
      expect(samples.every((n) => n === 4)).toBe(true);
      expect(state.value).toEqual(durations.map((ms) => ms * 2));
    });

    it('starts every item as soon as a worker is free (list scheduling), in input order', async () => {
      await fc.assert(
        fc.asyncProperty(
          // Not 0: fake-timers runs a 0 ms timer set during a tick 1 ms later.
          fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 25 }),
          fc.integer({ min: 1, max: 8 }),
          async (durations, concurrency) => {
            const backoff = new Backoff();
            const t0 = clock.now;
            // The schedule a lazy pool must follow: each item goes to the earliest free worker.
            const free = new Array(Math.min(concurrency, durations.length)).fill(0);
            const expectedStart = durations.map((ms) => {
              let k = 0;
              for (let j = 1; j < free.length; j++) if (free[j] < free[k]) k = j;
              const start = free[k];
              free[k] += ms;
              return start;
            });
            const makespan = Math.max(0, ...free);
            const started: number[] = [];
            let inFlight = 0;
            let max = 0;
            const state = settleState(
              backoff.map(
                durations,
                async (ms, index) => {
                  started[index] = clock.now - t0;
                  inFlight++;
                  max = Math.max(max, inFlight);
                  try {
                    return await work(ms, index);
                  } finally {
                    inFlight--;
                  }
                },
                { concurrency },
              ),
            );
            if (makespan > 0) {
              await clock.tickAsync(makespan - 1);
              expect(state.settled).toBe(false);
              await clock.tickAsync(1);
            } else await clock.tickAsync(0);
            expect(state.value).toEqual(range(durations.length));
            expect(started).toEqual(expectedStart);
            expect(max).toBe(Math.min(concurrency, durations.length));
            await clock.tickAsync(1);
            expect(clock.countTimers()).toBe(0);
          },
        ),
        { numRuns: 150 },
      );
    });

    it('defaults to 10 items in flight', async () => {
      const backoff = new Backoff();
      let inFlight = 0;
      let max = 0;
      const state = settleState(
        backoff.map(range(30), async (i) => {
          inFlight++;
          max = Math.max(max, inFlight);
          await work(10, i);
          inFlight--;
          return i;
        }),
      );
      await clock.tickAsync(30);
      expect(max).toBe(10);
      expect(state.value).toEqual(range(30));
    });
  });

  describe('lazy input', () => {
    it('advances a generator only as workers free up', async () => {
      const backoff = new Backoff();
      const { state: source, items } = counted(range(10));
      const state = settleState(backoff.map(items, (i) => work(10, i * i), { concurrency: 3 }));
      // At call time: one item per worker, no more.
      expect(source.pulled).toBe(3);
      await clock.tickAsync(9);
      expect(source.pulled).toBe(3);
      await clock.tickAsync(1);
      expect(source.pulled).toBe(6);
      await clock.tickAsync(10);
      expect(source.pulled).toBe(9);
      await clock.tickAsync(10);
      expect(source.pulled).toBe(10);
      expect(state.settled).toBe(false);
      await clock.tickAsync(10);
      expect(state.value).toEqual(range(10).map((i) => i * i));
      expect(source.closed).toBe(true);
    });

    it('never holds more than `concurrency` pulled-but-unfinished items', async () => {
      const backoff = new Backoff();
      const { state: source, items } = counted(range(200));
      let done = 0;
      let worst = 0;
      const state = settleState(
        backoff.map(
          items,
          async (i) => {
            worst = Math.max(worst, source.pulled - done);
            const value = await work((i * 37) % 11, i);
            done++;
            return value;
          },
          { concurrency: 7 },
        ),
      );
      await clock.tickAsync(1000);
      expect(state.value).toEqual(range(200));
      expect(worst).toBe(7);
    });

    it('maps an infinite generator until the first failure, then closes it', async () => {
      const backoff = new Backoff();
      const failure = new FatalError('item 25');
      const { state: source, items } = counted(
        (function* () {
          for (let i = 0; ; i++) yield i;
        })(),
      );
      const state = settleState(
        backoff.map(items, (i) => (i === 25 ? failIn(5, failure) : work(5, i)), {
          concurrency: 4,
        }),
      );
      await clock.tickAsync(100);
      expect(state.error).toBe(failure);
      expect(source.pulled).toBeLessThanOrEqual(25 + 4);
      expect(source.closed).toBe(true);
    });

    it('maps an async iterable, asking for the next item only after the previous answer', async () => {
      const backoff = new Backoff();
      let nextCalls = 0;
      let pending = 0;
      let overlapping = 0;
      let i = 0;
      // A hand-written async iterator that would misbehave under concurrent next() calls.
      const source: AsyncIterable<number> = {
        [Symbol.asyncIterator]: () => ({
          next: () => {
            nextCalls++;
            pending++;
            if (pending > 1) overlapping++;
            return new Promise<IteratorResult<number>>((resolve) =>
              setTimeout(() => {
                pending--;
                resolve(i < 8 ? { value: i++, done: false } : { value: undefined, done: true });
              }, 2),
            );
          },
        }),
      };
      const state = settleState(
        backoff.map(source, (item) => work(10, `#${item}`), { concurrency: 3 }),
      );
      await clock.tickAsync(1);
      expect(nextCalls).toBe(1);
      await clock.tickAsync(200);
      expect(state.value).toEqual(range(8).map((n) => `#${n}`));
      expect(overlapping).toBe(0);
    });

    it('maps an async generator in input order with a bounded number in flight', async () => {
      const backoff = new Backoff();
      let pulled = 0;
      let inFlight = 0;
      let max = 0;
      async function* source() {
        for (let i = 0; i < 12; i++) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          pulled++;
          yield i;
        }
      }
      const state = settleState(
        backoff.map(
          source(),
          async (i) => {
            inFlight++;
            max = Math.max(max, inFlight);
            const value = await work(20 - i, i * 10);
            inFlight--;
            return value;
          },
          { concurrency: 4 },
        ),
      );
      await clock.tickAsync(10);
      expect(pulled).toBe(4);
      await clock.tickAsync(200);
      expect(state.value).toEqual(range(12).map((i) => i * 10));
      expect(max).toBe(4);
    });

    it('maps a Set, a Map and a string', async () => {
      const backoff = new Backoff();
      const p = Promise.all([
        backoff.map(new Set(['a', 'b']), (x) => x.toUpperCase()),
        backoff.map(
          new Map([
            [1, 'x'],
            [2, 'y'],
          ]),
          ([k, v]) => `${k}${v}`,
        ),
        backoff.map('héllo', (ch, index) => `${index}:${ch}`, { concurrency: 2 }),
        backoff.map([], () => 1),
      ]);
      await expect(p).resolves.toEqual([
        ['A', 'B'],
        ['1x', '2y'],
        ['0:h', '1:é', '2:l', '3:l', '4:o'],
        [],
      ]);
    });
  });

  describe('settled mode', () => {
    it('resolves with every outcome, in input order, and runs every item', async () => {
      const backoff = new Backoff({ exceptions: [TransientError], maxTries: 2 });
      const fatal = new FatalError('fatal');
      const persistent = new TransientError('twice');
      const tries = new Map<number, number>();
      const state = settleState(
        backoff.map(
          range(6),
          async (i) => {
            const n = (tries.get(i) ?? 0) + 1;
            tries.set(i, n);
            if (i === 1) return failIn(5, fatal);
            if (i === 2 && n === 1) return failIn(5, new TransientError('once'));
            if (i === 4) return failIn(5, persistent);
            return work(10 - i, `ok ${i}`);
          },
          { settled: true, concurrency: 2 },
        ),
      );
      await clock.tickAsync(100);
      expect(state.value).toEqual([
        { status: 'fulfilled', value: 'ok 0', item: 0, index: 0 },
        { status: 'rejected', reason: fatal, item: 1, index: 1 },
        { status: 'fulfilled', value: 'ok 2', item: 2, index: 2 },
        { status: 'fulfilled', value: 'ok 3', item: 3, index: 3 },
        { status: 'rejected', reason: persistent, item: 4, index: 4 },
        { status: 'fulfilled', value: 'ok 5', item: 5, index: 5 },
      ]);
      const outcomes = state.value!;
      expect((outcomes[1] as { reason: unknown }).reason).toBe(fatal);
      expect((outcomes[4] as { reason: unknown }).reason).toBe(persistent);
      expect([...tries.values()]).toEqual([1, 1, 2, 1, 2, 1]);
      expect(backoff.statistics).toMatchObject({
        attempts: 8,
        retries: 2,
        giveUps: 2,
        successes: 4,
      });
    });

    it('ignores stopOnError', async () => {
      const backoff = new Backoff();
      const errors = range(3).map((i) => new FatalError(`e${i}`));
      const p = backoff.map(range(3), (i) => Promise.reject(errors[i]), {
        settled: true,
        stopOnError: true,
      });
      await expect(p).resolves.toEqual(
        errors.map((reason, i) => ({ status: 'rejected', reason, item: i, index: i })),
      );
    });
  });

  describe('stopOnError (default)', () => {
    it('aborts the attempts in flight with the first final failure, starts nothing new, rejects with it', async () => {
      const backoff = new Backoff();
      const failure = new FatalError('item 1 failed');
      const signals = new Map<number, AbortSignal>();
      const { state: source, items } = counted(range(10));
      const started: number[] = [];
      const state = settleState(
        backoff.map(
          items,
          (i) => {
            started.push(i);
            signals.set(i, currentAttempt()!.signal);
            return i === 1 ? failIn(15, failure) : work(100, i);
          },
          { concurrency: 3 },
        ),
      );
      await clock.tickAsync(15);
      expect(state.settled).toBe(true);
      expect(state.error).toBe(failure);
      expect(started).toEqual([0, 1, 2]);
      expect(source.pulled).toBe(3);
      expect(source.closed).toBe(true);
      for (const i of [0, 2]) {
        expect(signals.get(i)!.aborted).toBe(true);
        expect(signals.get(i)!.reason).toBe(failure);
      }
      expect(signals.get(1)!.aborted).toBe(false);
      expect(backoff.statistics).toMatchObject({ attempts: 3, cancels: 2, giveUps: 1 });
      await clock.tickAsync(1000);
      expect(started).toEqual([0, 1, 2]);
      expect(clock.countTimers()).toBe(0);
    });

    it('does not stop on a failure that is retried and then succeeds', async () => {
      const backoff = new Backoff({ exceptions: [TransientError], maxTries: 3, pause: 5 });
      const tries = new Map<number, number>();
      const state = settleState(
        backoff.map(
          range(8),
          (i) => {
            const n = (tries.get(i) ?? 0) + 1;
            tries.set(i, n);
            return i % 3 === 0 && n < 3 ? failIn(2, new TransientError(`${i}/${n}`)) : work(2, i);
          },
          { concurrency: 3 },
        ),
      );
      await clock.tickAsync(200);
      expect(state.value).toEqual(range(8));
      expect(backoff.statistics).toMatchObject({ retries: 6, giveUps: 0, successes: 8 });
    });

    it('with stopOnError: false runs every item, then rejects with an AggregateError of all failures', async () => {
      const backoff = new Backoff();
      const errors = new Map<number, Error>([
        [1, new FatalError('one')],
        [4, new FatalError('four')],
        [5, new FatalError('five')],
      ]);
      const calls: number[] = [];
      const state = settleState(
        backoff.map(
          range(8),
          (i) => {
            calls.push(i);
            const error = errors.get(i);
            return error === undefined ? work(10, i) : failIn(20 - i, error);
          },
          { concurrency: 2, stopOnError: false },
        ),
      );
      await clock.tickAsync(500);
      expect(calls).toEqual(range(8));
      expect(state.error).toBeInstanceOf(AggregateError);
      const aggregate = state.error as AggregateError;
      expect(aggregate.errors).toHaveLength(3);
      // Identity kept; the order is the order in which the items failed.
      expect(new Set(aggregate.errors)).toEqual(new Set(errors.values()));
      expect(aggregate.message).toMatch(/3 of 8/);
      expect(backoff.statistics).toMatchObject({ giveUps: 3, successes: 5, cancels: 0 });
    });
  });

  describe('cancellation', () => {
    it('a caller signal aborting midway rejects with its reason and leaves nothing running', async () => {
      const listeners = trackListeners();
      const backoff = new Backoff({ attemptTimeout: 500, deadline: 5000, pause: 10 });
      const controller = new AbortController();
      const reason = new Error('shutdown');
      const signals = new Map<number, AbortSignal>();
      const { state: source, items } = counted(range(20));
      const started: number[] = [];
      const state = settleState(
        backoff.map(
          items,
          (i) => {
            started.push(i);
            signals.set(i, currentAttempt()!.signal);
            return work(100 + i, i);
          },
          { concurrency: 3, signal: controller.signal },
        ),
      );
      await clock.tickAsync(150); // items 0, 1, 2 done at 100..102; 3, 4, 5 in flight
      expect(started).toEqual([0, 1, 2, 3, 4, 5]);
      controller.abort(reason);
      await clock.tickAsync(0);
      expect(state.settled).toBe(true);
      expect(state.error).toBe(reason);
      for (const i of [3, 4, 5]) {
        expect(signals.get(i)!.aborted).toBe(true);
        expect(signals.get(i)!.reason).toBe(reason);
      }
      for (const i of [0, 1, 2]) expect(signals.get(i)!.aborted).toBe(false);
      expect(source.pulled).toBe(6);
      expect(source.closed).toBe(true);
      expect(clock.countTimers()).toBe(0);
      expect(listeners.liveTotal()).toBe(0);
      expect(listeners.added()).toBe(listeners.removed());
      expect(listeners.added()).toBeGreaterThan(0);
      expect(backoff.statistics).toMatchObject({ attempts: 6, successes: 3, cancels: 3 });
      await clock.tickAsync(5000);
      expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it('cuts into a pause between attempts', async () => {
      const backoff = new Backoff({ retryAll: true, maxTries: 3, pause: 1000 });
      const controller = new AbortController();
      let calls = 0;
      const state = settleState(
        backoff.map(
          [1],
          () => {
            calls++;
            return Promise.reject(new TransientError('again'));
          },
          { signal: controller.signal },
        ),
      );
      await clock.tickAsync(500);
      controller.abort('stop');
      await clock.tickAsync(0);
      expect(state.error).toBe('stop');
      expect(calls).toBe(1);
      expect(clock.countTimers()).toBe(0);
    });

    it('rejects at once with the reason of an already aborted signal, pulling nothing', async () => {
      const backoff = new Backoff();
      const reason = new Error('already');
      const { state: source, items } = counted(range(3));
      const fn = vi.fn((i: number) => i);
      await expect(backoff.map(items, fn, { signal: AbortSignal.abort(reason) })).rejects.toBe(
        reason,
      );
      expect(fn).not.toHaveBeenCalled();
      expect(source.pulled).toBe(0);
    });

    it('aborting while waiting for a slow async source rejects at once and asks the source for nothing more', async () => {
      // An async source that yields one item and then has nothing for a long time (a queue
      // consumer, a paginated cursor waiting on the network).
      const backoff = new Backoff();
      const controller = new AbortController();
      let nextCalls = 0;
      let returned = false;
      const source: AsyncIterable<number> = {
        [Symbol.asyncIterator]: () => ({
          next: () => {
            nextCalls++;
            const delay = nextCalls === 1 ? 0 : 60_000;
            return new Promise<IteratorResult<number>>((resolve) =>
              setTimeout(() => resolve({ value: nextCalls, done: false }), delay),
            );
          },
          return: async () => {
            returned = true;
            return { value: undefined, done: true };
          },
        }),
      };
      const state = settleState(
        backoff.map(source, (i) => work(10, i), { concurrency: 2, signal: controller.signal }),
      );
      await clock.tickAsync(100);
      const asked = nextCalls; // the first item ran; both workers now wait for the source
      controller.abort(new Error('stop'));
      await clock.tickAsync(0);
      // Expected: the batch is cancelled now. Actual: it stays pending until the source answers
      // (forever for a source that never does), and then asks the source for yet another item.
      expect(state.settled).toBe(true);
      expect((state.error as Error).message).toBe('stop');
      await clock.tickAsync(200_000);
      expect(nextCalls).toBe(asked);
      expect(returned).toBe(true);
    });
  });

  describe('shared instance state', () => {
    it('a retry budget shared by two instances and a batch refuses retries across all of them', async () => {
      // 6 tokens; each failed attempt takes 1, each success gives back 0.1; retries only while > 3.
      const budget = tokenBucket({ maxTokens: 6, tokenRatio: 0.1 });
      const giveups: GiveupEvent[] = [];
      const a = new Backoff({
        retryAll: true,
        maxTries: 2,
        budget,
        onGiveup: (event) => {
          giveups.push(event);
        },
      });
      const otherGiveups: GiveupEvent[] = [];
      const b = new Backoff({
        retryAll: true,
        maxTries: 2,
        budget,
        onGiveup: (event) => {
          otherGiveups.push(event);
        },
      });
      const tries = new Map<number, number>();
      const errors = range(6).map((i) => new TransientError(`item ${i}`));
      // Every item fails its first attempt and would succeed on its retry.
      const state = settleState(
        a.map(
          range(6),
          (i) => {
            const n = (tries.get(i) ?? 0) + 1;
            tries.set(i, n);
            return n === 1 ? failIn(5, errors[i]) : work(5, i);
          },
          { concurrency: 1, settled: true },
        ),
      );
      await clock.tickAsync(100);
      // tokens: 6 → 5 (retry) → 5.1 → 4.1 (retry) → 4.2 → 3.2 (retry) → 3.3 → 2.3 (refused) ...
      expect(state.value).toEqual([
        { status: 'fulfilled', value: 0, item: 0, index: 0 },
        { status: 'fulfilled', value: 1, item: 1, index: 1 },
        { status: 'fulfilled', value: 2, item: 2, index: 2 },
        { status: 'rejected', reason: errors[3], item: 3, index: 3 },
        { status: 'rejected', reason: errors[4], item: 4, index: 4 },
        { status: 'rejected', reason: errors[5], item: 5, index: 5 },
      ]);
      expect(a.statistics).toMatchObject({ attempts: 9, retries: 3, budgetRefusals: 3 });
      expect(giveups.map((event) => event.reason)).toEqual(['budget', 'budget', 'budget']);
      expect(giveups.map((event) => event.error)).toEqual(errors.slice(3));
      // The other instance finds the bucket drained by the batch.
      const other = new TransientError('other');
      let otherCalls = 0;
      const direct = settleState(
        b.execute(() => {
          otherCalls++;
          return failIn(5, other);
        }),
      );
      await clock.tickAsync(20);
      expect(direct.error).toBe(other);
      expect(otherCalls).toBe(1);
      expect(b.statistics.budgetRefusals).toBe(1);
      expect(otherGiveups.map((event) => event.reason)).toEqual(['budget']);
      expect(budget.stats).toEqual({ acquired: 3, refused: 4 });
    });

    it("a batch drained by another instance's failures gets no retries", async () => {
      const budget = tokenBucket({ maxTokens: 4, tokenRatio: 0.1 });
      const a = new Backoff({ retryAll: true, maxTries: 3, budget });
      const b = new Backoff({ retryAll: true, maxTries: 2, budget });
      // b: two failed attempts (one retry allowed at 3 > 2) leave 2 tokens: no more retries.
      await Promise.all([
        expect(b.execute(() => failIn(1, new TransientError('b')))).rejects.toThrow('b'),
        clock.tickAsync(5),
      ]);
      const giveups: string[] = [];
      const c = new Backoff({
        retryAll: true,
        maxTries: 3,
        budget,
        onGiveup: (event) => {
          giveups.push(event.reason);
        },
      });
      const state = settleState(
        c.map(range(4), () => failIn(1, new TransientError('c')), {
          concurrency: 2,
          stopOnError: false,
        }),
      );
      await clock.tickAsync(20);
      expect(state.error).toBeInstanceOf(AggregateError);
      expect((state.error as AggregateError).errors).toHaveLength(4);
      expect(c.statistics).toMatchObject({ attempts: 4, retries: 0, budgetRefusals: 4 });
      expect(giveups).toEqual(['budget', 'budget', 'budget', 'budget']);
      expect(a.statistics.attempts).toBe(0);
    });

    it('statistics count the whole batch together with direct calls on the same instance', async () => {
      const backoff = new Backoff({ exceptions: [TransientError], maxTries: 2 });
      const tries = new Map<number, number>();
      const batch = settleState(
        backoff.map(
          range(10),
          (i) => {
            const n = (tries.get(i) ?? 0) + 1;
            tries.set(i, n);
            return i % 3 === 0 && n === 1 ? failIn(3, new TransientError('once')) : work(5, i);
          },
          { concurrency: 4 },
        ),
      );
      const direct = settleState(backoff.execute(() => work(7, 'direct')));
      await clock.tickAsync(3);
      const midway = backoff.statistics;
      expect(midway.attempts).toBeGreaterThan(5);
      expect(midway.successes).toBe(0);
      await clock.tickAsync(100);
      expect(batch.value).toEqual(range(10));
      expect(direct.value).toBe('direct');
      expect(backoff.statistics).toMatchObject({
        attempts: 15,
        done: 15,
        errors: 4,
        retries: 4,
        successes: 11,
        giveUps: 0,
        cancels: 0,
      });
    });

    it("the instance signal stops the whole batch with the instance signal's reason", async () => {
      const listeners = trackListeners();
      const shutdown = new AbortController();
      const backoff = new Backoff({ signal: shutdown.signal, attemptTimeout: 1000 });
      const signals: AbortSignal[] = [];
      const started: number[] = [];
      const state = settleState(
        backoff.map(
          range(20),
          (i) => {
            started.push(i);
            signals.push(currentAttempt()!.signal);
            return work(10, i);
          },
          { concurrency: 5, stopOnError: false },
        ),
      );
      await clock.tickAsync(25); // 10 done, 5 in flight
      const reason = new Error('process exiting');
      shutdown.abort(reason);
      await clock.tickAsync(0);
      expect(state.settled).toBe(true);
      expect(started).toHaveLength(15);
      expect(signals.slice(10).every((s) => s.aborted && s.reason === reason)).toBe(true);
      expect(signals.slice(0, 10).some((s) => s.aborted)).toBe(false);
      // With stopOnError: false the batch reports the cancelled items; with the default it rejects
      // with the reason itself. Either way nothing more starts and nothing is left behind.
      const errors = (state.error as AggregateError).errors;
      expect(errors.every((e) => e === reason)).toBe(true);
      await clock.tickAsync(1);
      expect(clock.countTimers()).toBe(0);
      expect(listeners.liveTotal()).toBe(0);
      await expect(backoff.execute(() => 1)).rejects.toBe(reason);
      expect(started).toHaveLength(15);
    });

    it('the instance signal with the default stopOnError rejects with the reason', async () => {
      const shutdown = new AbortController();
      const backoff = new Backoff({ signal: shutdown.signal });
      const state = settleState(backoff.map(range(20), (i) => work(10, i), { concurrency: 5 }));
      await clock.tickAsync(15);
      shutdown.abort('bye');
      await clock.tickAsync(0);
      expect(state.error).toBe('bye');
      expect(backoff.statistics).toMatchObject({ attempts: 10, successes: 5, cancels: 5 });
    });
  });

  describe('onProgress', () => {
    it('is called after each item with consistent counts', async () => {
      const backoff = new Backoff();
      const progress: BatchProgress[] = [];
      let running = 0;
      const durations = [7, 3, 11, 5, 2, 13, 17, 1, 4, 9];
      const state = settleState(
        backoff.map(
          durations,
          async (ms, i) => {
            running++;
            try {
              return i % 4 === 1 ? await failIn(ms, new FatalError(`${i}`)) : await work(ms, i);
            } finally {
              running--;
            }
          },
          {
            concurrency: 3,
            settled: true,
            onProgress: (p) => {
              progress.push(p);
              // Counted after the item settled and before the next one starts.
              expect(p.inFlight).toBe(running);
            },
          },
        ),
      );
      await clock.tickAsync(100);
      const outcomes = state.value!;
      expect(progress).toHaveLength(durations.length);
      progress.forEach((p, k) => {
        expect(p.done).toBe(k + 1);
        expect(p.succeeded + p.failed).toBe(p.done);
        expect(p.total).toBe(durations.length);
        expect(p.inFlight).toBeLessThanOrEqual(3);
        expect(p.done + p.inFlight).toBeLessThanOrEqual(durations.length);
      });
      for (let k = 1; k < progress.length; k++) {
        expect(progress[k]!.succeeded).toBeGreaterThanOrEqual(progress[k - 1]!.succeeded);
        expect(progress[k]!.failed).toBeGreaterThanOrEqual(progress[k - 1]!.failed);
      }
      const last = progress.at(-1)!;
      expect(last).toEqual({
        done: 10,
        succeeded: outcomes.filter((o) => o.status === 'fulfilled').length,
        failed: outcomes.filter((o) => o.status === 'rejected').length,
        inFlight: 0,
        total: 10,
      });
      expect(last.failed).toBe(3);
    });

    it('reports an unknown total for generators and the size of a Set', async () => {
      const backoff = new Backoff();
      const totals: (number | undefined)[] = [];
      const onProgress = (p: BatchProgress) => totals.push(p.total);
      await backoff.map(counted(range(2)).items, (i) => i, { onProgress });
      await backoff.map(new Set([1, 2, 3]), (i) => i, { onProgress });
      expect(totals).toEqual([undefined, undefined, 3, 3, 3]);
    });

    it('a throwing onProgress does not leave the batch running after it settled', async () => {
      const backoff = new Backoff();
      const controller = new AbortController();
      const listeners = trackListeners();
      let calls = 0;
      let thrown = false;
      const progressError = new Error('progress sink failed');
      const state = settleState(
        backoff.map(
          range(8),
          (i) => {
            calls++;
            return work((i + 1) * 10, i);
          },
          {
            concurrency: 2,
            signal: controller.signal,
            onProgress: () => {
              if (!thrown) {
                thrown = true;
                throw progressError;
              }
            },
          },
        ),
      );
      await clock.tickAsync(10);
      // However the library treats the hook's error (reject with it, or ignore it), once map()
      // has settled no item may start any more and the caller's signal must hold no listener.
      // Actual: map() rejects with the hook's error at 10 ms while the other worker keeps
      // pulling and running the remaining items for another ~300 ms, detached from the promise.
      if (!state.settled) await clock.tickAsync(1000);
      expect(state.settled).toBe(true);
      const callsAtSettle = calls;
      await clock.tickAsync(1000);
      expect(calls).toBe(callsAtSettle);
      expect(listeners.liveOn(controller.signal)).toBe(0);
    });
  });

  describe('input failures', () => {
    it('rejects with the error thrown by a sync iterator and aborts the items in flight with it', async () => {
      const backoff = new Backoff();
      const broken = new Error('cursor broke');
      const signals: AbortSignal[] = [];
      function* source() {
        yield 0;
        yield 1;
        yield 2;
        throw broken;
      }
      const state = settleState(
        backoff.map(
          source(),
          (i) => {
            signals.push(currentAttempt()!.signal);
            return work(i === 0 ? 5 : 50, i);
          },
          { concurrency: 3 },
        ),
      );
      await clock.tickAsync(5); // item 0 done; its worker pulls and the iterator throws
      expect(state.error).toBe(broken);
      expect(signals.slice(1).every((s) => s.aborted && s.reason === broken)).toBe(true);
      await clock.tickAsync(1);
      expect(clock.countTimers()).toBe(0);
    });

    it('rejects with the error of an async iterator, even in settled mode', async () => {
      const backoff = new Backoff();
      const broken = new Error('stream broke');
      async function* source() {
        yield 'a';
        await new Promise((resolve) => setTimeout(resolve, 10));
        throw broken;
      }
      const state = settleState(
        backoff.map(source(), (x) => work(1, x), { settled: true, stopOnError: false }),
      );
      await clock.tickAsync(20);
      expect(state.error).toBe(broken);
    });

    it('rejects when [Symbol.iterator]().next throws on the first pull', async () => {
      const backoff = new Backoff();
      const broken = new TypeError('next exploded');
      const items = {
        [Symbol.iterator]: () => ({
          next: (): IteratorResult<number> => {
            throw broken;
          },
        }),
      };
      const fn = vi.fn((i: number) => i);
      await expect(backoff.map(items, fn)).rejects.toBe(broken);
      expect(fn).not.toHaveBeenCalled();
    });
  });

  describe('option validation', () => {
    const backoff = new Backoff();
    it.each(['settled', 'stopOnError'])(
      "refuses a non-boolean '%s' before pulling an item",
      async (key) => {
        const { state: source, items } = counted(range(3));
        const fn = vi.fn((i: number) => i);
        await expect(backoff.map(items, fn, { [key]: 'yes' } as never)).rejects.toThrow(
          new TypeError(`Backoff.map: '${key}' must be a boolean, got 'yes' (a string)`),
        );
        expect(fn).not.toHaveBeenCalled();
        expect(source.pulled).toBe(0);
      },
    );
    it.each([
      [0, RangeError],
      [1.5, RangeError],
      [-1, RangeError],
      [Number.NaN, RangeError],
      ['2', TypeError],
    ])('concurrency %s → %o', async (concurrency, ErrorClass) => {
      const { state: source, items } = counted(range(3));
      const fn = vi.fn((i: number) => i);
      const p = backoff.map(items, fn, { concurrency: concurrency as number });
      await expect(p).rejects.toThrow(ErrorClass);
      await expect(p).rejects.toThrow(/concurrency/);
      expect(fn).not.toHaveBeenCalled();
      expect(source.pulled).toBe(0);
    });

    it('accepts concurrency Infinity', async () => {
      await expect(backoff.map(range(5), (i) => i, { concurrency: Infinity })).resolves.toEqual(
        range(5),
      );
    });

    it.each([null, undefined, 42, {}, { length: 2 }])('items %o → TypeError', async (items) => {
      const p = backoff.map(items as unknown as number[], (i) => i);
      await expect(p).rejects.toThrow(TypeError);
      await expect(p).rejects.toThrow(/items/);
    });

    it('rejects a non-function fn, a non-signal signal and a non-function onProgress', async () => {
      await expect(backoff.map([1], 'f' as never)).rejects.toThrow(/'fn'/);
      await expect(backoff.map([1], (i) => i, { signal: {} as AbortSignal })).rejects.toThrow(
        TypeError,
      );
      await expect(
        backoff.map([1], (i) => i, { onProgress: 1 as unknown as () => void }),
      ).rejects.toThrow(/onProgress/);
    });
  });
});

describe('Backoff.map: workers, options, rerunFailed (fake timers)', () => {
  beforeEach(() => {
    clock = FakeTimers.install({ toFake: [...FAKED] });
  });
  afterEach(() => {
    clock.uninstall();
  });

  it('concurrency 2 ** 31 over 3 items runs them at once without a worker per slot', async () => {
    const backoff = new Backoff();
    let running = 0;
    let most = 0;
    const fn = async (i: number) => {
      running++;
      most = Math.max(most, running);
      await work(5, i);
      running--;
      return i * 10;
    };
    const array = settleState(backoff.map([1, 2, 3], fn, { concurrency: 2 ** 31 }));
    const { state: source, items } = counted([4, 5, 6]);
    const generated = settleState(backoff.map(items, fn, { concurrency: 2 ** 31 }));
    async function* slow() {
      for (const i of [7, 8, 9]) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        yield i;
      }
    }
    await clock.tickAsync(0);
    expect(running).toBe(6); // both synchronous inputs started everything at once
    await clock.tickAsync(10);
    expect(array.value).toEqual([10, 20, 30]);
    expect(generated.value).toEqual([40, 50, 60]);
    expect(source.pulled).toBe(3);
    const asynchronous = settleState(backoff.map(slow(), fn, { concurrency: 2 ** 31 }));
    await clock.tickAsync(20);
    expect(asynchronous.value).toEqual([70, 80, 90]);
    expect(most).toBe(6);
  });

  it('concurrency Infinity over a generator pulls each item once and starts them all', async () => {
    const backoff = new Backoff();
    const { state: source, items } = counted(range(50));
    let started = 0;
    const state = settleState(
      backoff.map(
        items,
        (i) => {
          started++;
          return work(10, i);
        },
        { concurrency: Infinity },
      ),
    );
    await clock.tickAsync(0);
    expect(started).toBe(50);
    await clock.tickAsync(10);
    expect(state.value).toEqual(range(50));
    expect(source.pulled).toBe(50);
  });

  it('an async source with a large concurrency grows its workers as items come', async () => {
    const backoff = new Backoff();
    let nextCalls = 0;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          nextCalls++;
          return nextCalls <= 4
            ? { value: nextCalls, done: false }
            : { value: undefined, done: true };
        },
      }),
    };
    const state = settleState(backoff.map(source, (i) => work(10, i), { concurrency: 1_000 }));
    await clock.tickAsync(10);
    expect(state.value).toEqual([1, 2, 3, 4]);
    // 4 items; every worker that found the source done asked once more: never 1,000 asks.
    expect(nextCalls).toBeLessThanOrEqual(4 + 5);
  });

  it('options null or not an object is a TypeError naming Backoff.map', async () => {
    const backoff = new Backoff();
    for (const options of [null, 5, 'settled', []]) {
      const p = backoff.map([1], (i) => i, options as never);
      await expect(p).rejects.toBeInstanceOf(TypeError);
      await expect(p).rejects.toThrow(/^Backoff\.map: options must be an object, got /);
    }
    await expect(backoff.map([1], (i) => i, { concurency: 2 } as never)).rejects.toThrow(
      "Backoff.map: unknown option 'concurency'",
    );
  });

  it('rerunFailed runs only the failed items again, with their original index, and merges', async () => {
    const backoff = new Backoff({ maxTries: 1 });
    const down = new Set([1, 3, 4]);
    const calls: [string, number][] = [];
    const fn = async (item: string, index: number) => {
      calls.push([item, index]);
      await work(5, undefined);
      if (down.has(index)) throw new TransientError(`${item} failed`);
      return item.toUpperCase();
    };
    const first = settleState(backoff.map(['a', 'b', 'c', 'd', 'e'], fn, { settled: true }));
    await clock.tickAsync(10);
    const outcomes = first.value!;
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'rejected',
    ]);
    expect(outcomes[3]).toMatchObject({ item: 'd', index: 3 });

    down.clear();
    down.add(4);
    calls.length = 0;
    const progress: BatchProgress[] = [];
    const second = settleState(
      rerunFailed(backoff, outcomes, fn, { concurrency: 2, onProgress: (p) => progress.push(p) }),
    );
    await clock.tickAsync(20);
    const merged = second.value!;
    expect(calls).toEqual([
      ['b', 1],
      ['d', 3],
      ['e', 4],
    ]);
    expect(merged[0]).toBe(outcomes[0]); // untouched
    expect(merged.slice(1)).toEqual([
      { status: 'fulfilled', value: 'B', item: 'b', index: 1 },
      outcomes[2],
      { status: 'fulfilled', value: 'D', item: 'd', index: 3 },
      { status: 'rejected', reason: expect.any(TransientError), item: 'e', index: 4 },
    ]);
    expect(progress.at(-1)).toMatchObject({ done: 3, succeeded: 2, failed: 1, total: 3 });
    expect(outcomes[1]!.status).toBe('rejected'); // the input is not modified
  });

  it('rerunFailed with nothing failed resolves with a copy at once', async () => {
    const backoff = new Backoff();
    const outcomes = await backoff.map([1, 2], (i) => i, { settled: true });
    const fn = vi.fn((i: number) => i);
    const again = await rerunFailed(backoff, outcomes, fn);
    expect(again).toEqual(outcomes);
    expect(again).not.toBe(outcomes);
    expect(fn).not.toHaveBeenCalled();
  });

  it('rerunFailed checks its arguments', async () => {
    const backoff = new Backoff();
    await expect(rerunFailed(backoff, 'x' as never, (i) => i)).rejects.toThrow(
      /rerunFailed: 'outcomes' must be an array of batch outcomes/,
    );
    await expect(
      rerunFailed(backoff, [{ status: 'fulfilled', value: 1 }] as never, (i) => i),
    ).rejects.toThrow(/rerunFailed: 'outcomes\[0\]' must be a batch outcome/);
    const outcomes = await backoff.map([1], (i) => i, { settled: true });
    await expect(
      rerunFailed(backoff, outcomes, (i) => i, { settled: false } as never),
    ).rejects.toThrow("rerunFailed: unknown option 'settled'");
    await expect(rerunFailed(backoff, outcomes, (i) => i, null as never)).rejects.toThrow(
      /rerunFailed: options must be an object, got null/,
    );
  });
});

describe('Backoff.map memory', () => {
  // A million synchronous items on the real event loop. The heap is measured with a forced GC
  // (exposed at run time through v8 flags), so the numbers are the live heap, not garbage.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };

  // BATCH_MEMORY_ITEMS shrinks it where every test runs many times over (mutation testing).
  const N = Number(process.env.BATCH_MEMORY_ITEMS ?? 1_000_000);
  it(`maps ${N.toLocaleString('en-US')} generator items with concurrency 100 without a promise per item`, async () => {
    const CONCURRENCY = 100;
    const backoff = new Backoff();
    let pulled = 0;
    function* source() {
      for (let i = 0; i < N; i++) {
        pulled++;
        yield i;
      }
    }
    const before = heap();
    let midway = Number.NaN;
    let worstAhead = 0;
    const results = await backoff.map(source(), (i) => i, {
      concurrency: CONCURRENCY,
      onProgress: (p) => {
        if ((p.done & 1023) === 0) worstAhead = Math.max(worstAhead, pulled - p.done);
        if (p.done === N / 2) midway = heap() - before;
      },
    });
    const after = heap() - before;
    expect(results).toHaveLength(N);
    expect(results[0]).toBe(0);
    expect(results[N - 1]).toBe(N - 1);
    expect(results[Math.floor(N / 3)]).toBe(Math.floor(N / 3));
    // Lazy: never more than `concurrency` items pulled ahead of the finished ones.
    expect(worstAhead).toBeLessThanOrEqual(CONCURRENCY);
    // The results array costs 8 bytes per slot (x1.5 for growth slack); a promise, a closure or
    // an array slot kept per item would add >= 40 bytes per item (>= 20 MB at the midpoint).
    const budget = (items: number) => items * 8 * 1.5 + 4 * 1024 * 1024;
    expect(midway).toBeLessThan(budget(N / 2));
    expect(after).toBeLessThan(budget(N));
    expect(backoff.statistics).toMatchObject({ attempts: N, successes: N });
  }, 60_000);
});

/**
 * A hand-written sync iterator over `values` that counts its `next()` and `return()` calls (a
 * generator hides the `next()` calls made after its end). With `length`, the input is sized.
 */
function probedSource<T>(values: readonly T[], length?: number) {
  const calls = { next: 0, return: 0 };
  let i = 0;
  const iterator: Iterator<T> = {
    next: () => {
      calls.next++;
      return i < values.length
        ? { value: values[i++] as T, done: false }
        : { value: undefined, done: true };
    },
    return: () => {
      calls.return++;
      i = values.length;
      return { value: undefined, done: true };
    },
  };
  const items = {
    [Symbol.iterator]: () => iterator,
    ...(length === undefined ? {} : { length }),
  } as Iterable<T>;
  return { calls, items };
}

class Down extends Error {}

/** A circuit breaker that is half-open now: opened by one failure `halfOpenAfter` ms ago. */
async function halfOpenBreaker(halfOpenAfter = 100) {
  const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter });
  breaker.recordFailure(breaker.tryPass()!);
  await clock.tickAsync(halfOpenAfter);
  expect(breaker.state).toBe('half-open');
  return breaker;
}

describe('Backoff.map: options, input and outcome checks', () => {
  beforeEach(() => {
    clock = FakeTimers.install({ toFake: [...FAKED] });
  });
  afterEach(() => {
    clock.uninstall();
  });

  it('accepts each documented option (the option names are read when the module loads)', async () => {
    vi.resetModules();
    const { Backoff: FreshBackoff } = await import('../src/index.js');
    const backoff = new FreshBackoff();
    const double = (i: number) => i * 2;
    const done: number[] = [];
    await expect(backoff.map([1, 2], double, { concurrency: 1 })).resolves.toEqual([2, 4]);
    await expect(backoff.map([1, 2], double, { stopOnError: false })).resolves.toEqual([2, 4]);
    await expect(backoff.map([1], double, { settled: true })).resolves.toEqual([
      { status: 'fulfilled', value: 2, item: 1, index: 0 },
    ]);
    await expect(
      backoff.map([1, 2], double, { signal: new AbortController().signal }),
    ).resolves.toEqual([2, 4]);
    await expect(
      backoff.map([1, 2], double, { onProgress: (p) => done.push(p.done) }),
    ).resolves.toEqual([2, 4]);
    expect(done).toEqual([1, 2]);
  });

  it('refuses a non-function fn even when there is no item to call it with', async () => {
    const backoff = new Backoff();
    const { calls, items } = probedSource<number>([]);
    await expect(backoff.map(items, 'f' as never)).rejects.toThrow(
      new TypeError("Backoff.map: 'fn' must be a function, got 'f' (a string)"),
    );
    expect(calls.next).toBe(0);
  });

  it('a `size` that is not a number (a method) leaves the total unknown', async () => {
    const backoff = new Backoff();
    class Bag<T> {
      constructor(private readonly values: T[]) {}
      size(): number {
        return this.values.length;
      }
      [Symbol.iterator]() {
        return this.values[Symbol.iterator]();
      }
    }
    const totals: (number | undefined)[] = [];
    const state = settleState(
      backoff.map(new Bag([1, 2, 3]), (i) => work(5, i * 10), {
        concurrency: 2,
        onProgress: (p) => totals.push(p.total),
      }),
    );
    await clock.tickAsync(10);
    expect(state.value).toEqual([10, 20, 30]);
    expect(totals).toEqual([undefined, undefined, undefined]);
  });

  it('rerunFailed rejects (never throws) for each outcome that is not a batch outcome', async () => {
    const backoff = new Backoff();
    const fn = vi.fn((i: number) => i);
    const bad = [
      null,
      undefined,
      { status: 'pending', item: 1, index: 0 },
      { status: 'rejected', reason: 1, item: 1, index: 0.5 },
      { status: 'rejected', reason: 1, item: 1, index: '0' },
      { status: 'rejected', reason: 1, index: 0 },
    ];
    for (const outcome of bad) {
      const ok = { status: 'fulfilled', value: 0, item: 0, index: 0 };
      let p: Promise<unknown> | undefined;
      expect(() => {
        p = rerunFailed(backoff, [ok, outcome] as never, fn);
      }).not.toThrow();
      await expect(p).rejects.toThrow(
        /^rerunFailed: 'outcomes\[1\]' must be a batch outcome \(\{ status, item, index, \.\.\. \}\), got /,
      );
    }
    expect(fn).not.toHaveBeenCalled();
  });
});

describe('Backoff.map: stopping (fake timers)', () => {
  beforeEach(() => {
    clock = FakeTimers.install({ toFake: [...FAKED] });
  });
  afterEach(() => {
    clock.uninstall();
    vi.restoreAllMocks();
  });

  it('rejects with the error of a throwing onProgress and starts no further item', async () => {
    const backoff = new Backoff();
    const progressError = new Error('progress sink failed');
    const started: number[] = [];
    const state = settleState(
      backoff.map(
        range(6),
        (i) => {
          started.push(i);
          return work(10 * (i + 1), i);
        },
        {
          concurrency: 2,
          onProgress: () => {
            throw progressError;
          },
        },
      ),
    );
    await clock.tickAsync(10);
    expect(state.settled).toBe(true);
    expect(state.error).toBe(progressError);
    await clock.tickAsync(1000);
    expect(started).toEqual([0, 1]);
  });

  it('an item failing with `undefined` rejects the batch with `undefined` itself', async () => {
    const backoff = new Backoff({ maxTries: 1 });
    const outcome = await backoff
      .map([1, 2], () => Promise.reject(undefined))
      .then(
        () => 'resolved',
        (error: unknown) => ({ error }),
      );
    expect(outcome).toStrictEqual({ error: undefined });
  });

  it('an item pulled while the batch is being cancelled (by the source itself) is not run', async () => {
    const backoff = new Backoff();
    const controller = new AbortController();
    const reason = new Error('cancelled from the source');
    function* source() {
      yield 0;
      controller.abort(reason);
      yield 1;
      yield 2;
    }
    const fn = vi.fn((i: number) => work(5, i));
    const progress: BatchProgress[] = [];
    const state = settleState(
      backoff.map(source(), fn, {
        concurrency: 1,
        signal: controller.signal,
        onProgress: (p) => progress.push(p),
      }),
    );
    await clock.tickAsync(100);
    expect(state.error).toBe(reason);
    expect(fn.mock.calls.map(([i]) => i)).toEqual([0]);
    // Not counted as an item either: neither as a failure nor as a call.
    expect(progress).toEqual([{ done: 1, succeeded: 1, failed: 0, inFlight: 0, total: undefined }]);
    expect(backoff.statistics).toMatchObject({ attempts: 1, successes: 1, cancels: 0 });
  });

  it('a source is not asked again once it reported its end', async () => {
    const backoff = new Backoff();
    const { calls, items } = probedSource([30, 10, 20]);
    const state = settleState(backoff.map(items, (ms) => work(ms, ms), { concurrency: 3 }));
    await clock.tickAsync(30);
    expect(state.value).toEqual([30, 10, 20]);
    expect(calls).toEqual({ next: 4, return: 0 });
  });

  it('a source that reported its end is not closed when the batch is cancelled afterwards', async () => {
    const backoff = new Backoff();
    // Unsized: a third worker finds the end at once. Sized: a worker looks for it a microtask later.
    for (const length of [undefined, 2]) {
      const controller = new AbortController();
      const { calls, items } = probedSource(['a', 'b'], length);
      const state = settleState(
        backoff.map(items, (x) => work(100, x), { concurrency: 4, signal: controller.signal }),
      );
      await clock.tickAsync(10);
      expect(calls.next).toBe(3);
      controller.abort('stop');
      await clock.tickAsync(0);
      expect(state.error).toBe('stop');
      expect(calls.return).toBe(0);
    }
    // While items remain, a cancelled batch does close its source.
    const controller = new AbortController();
    const { calls, items } = probedSource(['a', 'b', 'c'], 3);
    const state = settleState(
      backoff.map(items, (x) => work(100, x), { concurrency: 1, signal: controller.signal }),
    );
    await clock.tickAsync(10);
    controller.abort('stop');
    await clock.tickAsync(0);
    expect(state.error).toBe('stop');
    expect(calls).toEqual({ next: 1, return: 1 });
  });

  it('an async source is asked for one item at a time until it gives one: an empty one is asked once', async () => {
    const backoff = new Backoff();
    let nextCalls = 0;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          nextCalls++;
          return { value: undefined, done: true };
        },
      }),
    };
    await expect(backoff.map(source, (i) => i, { concurrency: 10 })).resolves.toEqual([]);
    expect(nextCalls).toBe(1);
  });

  it('a stopped async source whose return() rejects leaves no unhandled rejection', async () => {
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    try {
      const backoff = new Backoff();
      const controller = new AbortController();
      let returned = 0;
      const source: AsyncIterable<number> = {
        [Symbol.asyncIterator]: () => ({
          next: async () => ({ value: 1, done: false }),
          return: () => {
            returned++;
            return Promise.reject(new Error('cannot close'));
          },
        }),
      };
      const state = settleState(
        backoff.map(source, (i) => work(10, i), { concurrency: 2, signal: controller.signal }),
      );
      await clock.tickAsync(5);
      controller.abort('stop');
      await clock.tickAsync(0);
      expect(state.error).toBe('stop');
      expect(returned).toBe(1);
      await nextMacrotask();
      await nextMacrotask();
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });

  it('leaves no listener on its own signal after a batch with a breaker or an async source', async () => {
    /** Runs `run` on `backoff` and returns the signal the batch made for itself. */
    const batchSignal = async (backoff: Backoff, run: () => Promise<unknown>) => {
      const withSignal = vi.spyOn(backoff, 'withSignal');
      await run();
      await clock.tickAsync(1); // the executions' shared listener goes at the end of the turn
      expect(withSignal).toHaveBeenCalledTimes(1);
      return withSignal.mock.calls[0]![0];
    };
    const guarded = new Backoff({ breaker: circuitBreaker() });
    const sync = await batchSignal(guarded, () =>
      expect(guarded.map(range(3), (i) => i)).resolves.toEqual(range(3)),
    );
    expect(getEventListeners(sync, 'abort')).toEqual([]);
    async function* source() {
      yield 1;
      yield 2;
    }
    const plain = new Backoff();
    const async = await batchSignal(plain, () =>
      expect(plain.map(source(), (i) => i)).resolves.toEqual([1, 2]),
    );
    expect(getEventListeners(async, 'abort')).toEqual([]);
  });
});

describe('Backoff.map with a circuit breaker (fake timers)', () => {
  beforeEach(() => {
    clock = FakeTimers.install({ toFake: [...FAKED] });
  });
  afterEach(() => {
    clock.uninstall();
  });

  it('after a half-open probe succeeds, runs `concurrency` items at once and never more', async () => {
    const breaker = await halfOpenBreaker();
    const backoff = new Backoff({ breaker });
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const state = settleState(
      backoff.map(
        range(12),
        async (i) => {
          started.push(clock.now);
          running++;
          most = Math.max(most, running);
          try {
            return await work(10, i);
          } finally {
            running--;
          }
        },
        { concurrency: 4 },
      ),
    );
    await clock.tickAsync(5);
    expect(running).toBe(1); // the probe, alone
    await clock.tickAsync(10);
    expect(breaker.state).toBe('closed');
    expect(running).toBe(4);
    await clock.tickAsync(100);
    expect(state.value).toEqual(range(12));
    expect(most).toBe(4);
  });

  it('a batch whose input is used up settles when its last items fail, though they opened the breaker', async () => {
    // Sized, one worker per item (all taken: no pull is needed), and unsized with a spare worker
    // (which found the end at the start).
    const inputs: [() => Iterable<number>, number][] = [
      [() => [1, 2], 2],
      [() => counted([1, 2]).items, 3],
    ];
    for (const [input, concurrency] of inputs) {
      const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 10_000 });
      const backoff = new Backoff({ breaker, retryOn: (e) => e instanceof Down, maxTries: 1 });
      const t0 = clock.now;
      const state = settleState(
        backoff.map(input(), (i) => failIn(5, new Down(`${i}`)), {
          concurrency,
          settled: true,
        }),
      );
      await clock.tickAsync(5);
      expect(breaker.state).toBe('open');
      expect(state.settled).toBe(true);
      expect(state.at - t0).toBe(5);
      expect(state.value?.map((o) => o.status)).toEqual(['rejected', 'rejected']);
      await clock.tickAsync(1);
      expect(clock.countTimers()).toBe(0);
    }
  });

  it('cancelling a batch that waits on an open breaker rejects at once, pulls nothing more and leaves no timer', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 1_000 });
    const backoff = new Backoff({ breaker, retryOn: (e) => e instanceof Down, maxTries: 1 });
    const controller = new AbortController();
    const { state: source, items } = counted(range(10));
    const state = settleState(
      backoff.map(items, (i) => failIn(5, new Down(`${i}`)), {
        concurrency: 2,
        settled: true,
        signal: controller.signal,
      }),
    );
    await clock.tickAsync(10); // both items failed at 5, the first opened it: both workers wait
    expect(breaker.state).toBe('open');
    expect(source.pulled).toBe(2);
    expect(clock.countTimers()).toBe(1); // the breaker's half-open timer, for the batch
    controller.abort('stop');
    await clock.tickAsync(0);
    expect(state.settled).toBe(true);
    expect(state.error).toBe('stop');
    expect(source.pulled).toBe(2);
    expect(source.closed).toBe(true);
    expect(clock.countTimers()).toBe(0);
  });

  it('a worker that waited for the half-open probe does not ask the source again after its end', async () => {
    const breaker = await halfOpenBreaker();
    const backoff = new Backoff({ breaker });
    const { calls, items } = probedSource(['probe']);
    const state = settleState(backoff.map(items, (x) => work(10, x), { concurrency: 2 }));
    await clock.tickAsync(10);
    expect(state.value).toEqual(['probe']);
    expect(breaker.state).toBe('closed');
    expect(calls).toEqual({ next: 2, return: 0 });
  });
});
