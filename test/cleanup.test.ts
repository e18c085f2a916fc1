/**
 * Nothing leaks: once an execution settled (and the event-loop turn ended), no timer, no abort
 * listener and no unhandled rejection is left behind, whatever way it ended.
 */
import FakeTimers from '@sinonjs/fake-timers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AttemptTimeoutError,
  Backoff,
  type BackoffOptions,
  currentAttempt,
  retry,
} from '../src/index.js';
import { FAKED, type InstalledClock, nextMacrotask } from './support/clock.js';

const originalAdd = EventTarget.prototype.addEventListener;
const originalRemove = EventTarget.prototype.removeEventListener;

/**
 * Spies on AbortSignal listeners: how many were added, removed, and are still attached, per
 * signal. (A listener added twice for the same type counts once, as EventTarget does.)
 */
function trackListeners() {
  const live = new Map<EventTarget, Set<unknown>>();
  const added = new Map<EventTarget, number>();
  const removed = new Map<EventTarget, number>();
  let peak = 0;
  const key = (type: string, listener: unknown) => `${type}\u0000${listenerId(listener)}`;
  const add = vi.spyOn(AbortSignal.prototype, 'addEventListener').mockImplementation(function (
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
    const k = key(type, listener);
    if (!set.has(k)) {
      set.add(k);
      added.set(this, (added.get(this) ?? 0) + 1);
    }
    peak = Math.max(peak, set.size);
    return originalAdd.call(this, type, listener, options);
  });
  const remove = vi
    .spyOn(AbortSignal.prototype, 'removeEventListener')
    .mockImplementation(function (this: AbortSignal, type, listener, options) {
      const set = live.get(this);
      if (set?.delete(key(type, listener))) removed.set(this, (removed.get(this) ?? 0) + 1);
      return originalRemove.call(this, type, listener, options);
    });
  return {
    add,
    remove,
    added: (signal: EventTarget) => added.get(signal) ?? 0,
    removed: (signal: EventTarget) => removed.get(signal) ?? 0,
    liveOn: (signal: EventTarget) => live.get(signal)?.size ?? 0,
    liveTotal: () => [...live.values()].reduce((n, set) => n + set.size, 0),
    addedTotal: () => [...added.values()].reduce((n, c) => n + c, 0),
    removedTotal: () => [...removed.values()].reduce((n, c) => n + c, 0),
    peak: () => peak,
  };
}
const ids = new WeakMap<object, number>();
let nextId = 0;
function listenerId(listener: unknown): number {
  if (typeof listener !== 'object' && typeof listener !== 'function') return -1;
  if (listener === null) return -1;
  let id = ids.get(listener);
  if (id === undefined) {
    id = nextId++;
    ids.set(listener, id);
  }
  return id;
}

let clock: InstalledClock;

/**
 * Ends the event-loop turn in which the execution settled, so the engine's deferred release
 * (setImmediate) runs. Not `tickAsync(0)`: fake-timers schedules a setImmediate made *during* a
 * tick 1 ms later, and most executions here settle inside a tick.
 */
const endOfTurn = () => clock.tickAsync(1);
beforeEach(() => {
  clock = FakeTimers.install({ toFake: [...FAKED] });
});
afterEach(() => {
  clock.uninstall();
  vi.restoreAllMocks();
});

class TransientError extends Error {}

const hang = (): Promise<never> => new Promise<never>(() => {});
const resolveIn = <T>(ms: number, value: T) =>
  new Promise<T>((resolve) => setTimeout(resolve, ms, value));
const rejectIn = (ms: number, error: unknown) =>
  new Promise<never>((_, reject) => setTimeout(reject, ms, error));

/** Observes a promise so that it never counts as unhandled. */
function settleState<T>(promise: Promise<T>) {
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

interface Scenario {
  readonly title: string;
  readonly options: BackoffOptions;
  /** Plays the scenario with `run`, ticking the clock until the execution settled. */
  play(
    run: <T>(fn: () => Promise<T>) => Promise<T>,
    abort: (reason: unknown) => void,
  ): Promise<void>;
}

const BOUNDS = { attemptTimeout: 100, deadline: 1000 } as const;

const scenarios: Scenario[] = [
  {
    title: 'a success',
    options: BOUNDS,
    async play(run) {
      const state = settleState(run(() => resolveIn(10, 'ok')));
      await clock.tickAsync(10);
      expect(state.value).toBe('ok');
    },
  },
  {
    title: 'a synchronous success',
    options: BOUNDS,
    async play(run) {
      await expect(run(async () => 'ok')).resolves.toBe('ok');
    },
  },
  {
    title: 'a non-retriable error',
    options: { ...BOUNDS, pause: 50 },
    async play(run) {
      const error = new Error('fatal');
      const state = settleState(run(() => rejectIn(10, error)));
      await clock.tickAsync(10);
      expect(state.error).toBe(error);
    },
  },
  {
    title: 'retries exhausted after pauses',
    options: { ...BOUNDS, pause: 50, maxTries: 3, retryAll: true },
    async play(run) {
      const state = settleState(run(() => rejectIn(10, new TransientError('again'))));
      await clock.tickAsync(130);
      expect(state.error).toBeInstanceOf(TransientError);
    },
  },
  {
    title: 'an attempt timeout',
    options: { attemptTimeout: 20, maxTries: 2 },
    async play(run) {
      const state = settleState(run(hang));
      await clock.tickAsync(40);
      expect(state.settled).toBe(true);
    },
  },
  {
    title: 'the deadline during an attempt',
    options: { attemptTimeout: 100, deadline: 150 },
    async play(run) {
      const state = settleState(run(hang));
      await clock.tickAsync(150);
      expect(state.settled).toBe(true);
    },
  },
  {
    title: 'a fail-fast pause',
    options: { deadline: 100, pause: 80, retryAll: true },
    async play(run) {
      const state = settleState(run(() => rejectIn(30, new TransientError('x'))));
      await clock.tickAsync(30);
      expect(state.error).toBeInstanceOf(TransientError);
    },
  },
  {
    title: 'deadline 0',
    options: { deadline: 0, attemptTimeout: 10 },
    async play(run) {
      await expect(run(async () => 'never')).rejects.toThrow();
    },
  },
  {
    title: 'a cancellation during an attempt',
    options: { ...BOUNDS, retryAll: true },
    async play(run, abort) {
      const state = settleState(run(hang));
      await clock.tickAsync(30);
      abort('stop');
      await clock.tickAsync(0);
      expect(state.error).toBe('stop');
    },
  },
  {
    title: 'a cancellation during a pause',
    options: { ...BOUNDS, retryAll: true, pause: 200 },
    async play(run, abort) {
      const state = settleState(run(() => rejectIn(10, new TransientError('x'))));
      await clock.tickAsync(30);
      abort('stop');
      await clock.tickAsync(0);
      expect(state.error).toBe('stop');
    },
  },
  {
    title: 'a nested execution cut by the outer attempt timeout',
    options: { attemptTimeout: 50, maxTries: 1 },
    async play(run) {
      const inner = new Backoff({ attemptTimeout: 500, deadline: 5000, pause: 10, retryAll: true });
      let innerState: ReturnType<typeof settleState> | undefined;
      const state = settleState(
        run(async () => {
          await null;
          const promise = inner.execute(hang);
          innerState = settleState(promise);
          return promise;
        }),
      );
      await clock.tickAsync(50);
      expect(state.settled).toBe(true);
      expect(innerState!.settled).toBe(true);
    },
  },
];

describe.each([
  ['through the instance signal', 'instance'],
  ['through a withSignal view', 'view'],
] as const)('nothing is left after settling %s', (_, mode) => {
  it.each(scenarios)('after $title', async (scenario) => {
    const listeners = trackListeners();
    const controller = new AbortController();
    const backoff =
      mode === 'instance'
        ? new Backoff({ ...scenario.options, signal: controller.signal })
        : new Backoff(scenario.options);
    const run = <T>(fn: () => Promise<T>) =>
      mode === 'instance' ? backoff.execute(fn) : backoff.withSignal(controller.signal).execute(fn);

    await scenario.play(run, (reason) => controller.abort(reason));
    await endOfTurn();

    expect(clock.countTimers()).toBe(0);
    expect(listeners.liveTotal()).toBe(0);
    expect(listeners.addedTotal()).toBe(listeners.removedTotal());
    expect(listeners.added(controller.signal)).toBeLessThanOrEqual(1);
  });
});

describe('listeners on a shared long-lived signal', () => {
  it('1000 concurrent executions through an instance add exactly one listener', async () => {
    const listeners = trackListeners();
    const shutdown = new AbortController();
    const backoff = new Backoff({ ...BOUNDS, signal: shutdown.signal });
    const results = Array.from({ length: 1000 }, (_, i) =>
      settleState(backoff.execute(() => resolveIn(10 + (i % 7), i))),
    );
    expect(listeners.added(shutdown.signal)).toBe(1);
    expect(listeners.liveOn(shutdown.signal)).toBe(1);
    await clock.tickAsync(20);
    expect(results.every((r, i) => r.value === i)).toBe(true);
    await endOfTurn();
    expect(listeners.added(shutdown.signal)).toBe(1);
    expect(listeners.removed(shutdown.signal)).toBe(1);
    expect(listeners.liveTotal()).toBe(0);
    expect(clock.countTimers()).toBe(0);
  });

  it('1000 sequential executions in one turn add one listener at a time, twice at most', async () => {
    const listeners = trackListeners();
    const shutdown = new AbortController();
    const backoff = new Backoff({ ...BOUNDS, signal: shutdown.signal });
    for (let i = 0; i < 1000; i++) await expect(backoff.execute(async () => i)).resolves.toBe(i);
    // The first execution's listener goes at once (a signal used once is not held past its
    // call); from the second on, the signal is known to be reused and keeps one to the turn's end.
    expect(listeners.added(shutdown.signal)).toBe(2);
    expect(listeners.peak()).toBe(1);
    await endOfTurn();
    expect(listeners.removed(shutdown.signal)).toBe(2);
    expect(listeners.liveTotal()).toBe(0);
    expect(clock.countTimers()).toBe(0);
  });

  it('1000 concurrent executions through withSignal called per call add exactly one listener', async () => {
    const listeners = trackListeners();
    const shutdown = new AbortController();
    const backoff = new Backoff(BOUNDS);
    const results = Array.from({ length: 1000 }, (_, i) =>
      settleState(backoff.withSignal(shutdown.signal).execute(() => resolveIn(10, i))),
    );
    expect(listeners.added(shutdown.signal)).toBe(1);
    expect(listeners.peak()).toBe(1);
    await clock.tickAsync(10);
    expect(results.every((r, i) => r.value === i)).toBe(true);
    await endOfTurn();
    expect(listeners.removed(shutdown.signal)).toBe(1);
    expect(listeners.liveTotal()).toBe(0);
    expect(clock.countTimers()).toBe(0);
  });

  it('aborting the shared signal cancels all 1000 executions and leaves nothing behind', async () => {
    const listeners = trackListeners();
    const shutdown = new AbortController();
    const backoff = new Backoff(BOUNDS);
    const results = Array.from({ length: 1000 }, () =>
      settleState(backoff.withSignal(shutdown.signal).execute(hang)),
    );
    await clock.tickAsync(10);
    const reason = new Error('shutdown');
    shutdown.abort(reason);
    await endOfTurn();
    expect(results.every((r) => r.error === reason)).toBe(true);
    expect(listeners.added(shutdown.signal)).toBe(1);
    expect(listeners.liveTotal()).toBe(0);
    expect(clock.countTimers()).toBe(0);
    expect(backoff.statistics.cancels).toBe(1000);
  });

  it('a new execution after the listener was released attaches it again, once', async () => {
    const listeners = trackListeners();
    const shutdown = new AbortController();
    const backoff = new Backoff({ signal: shutdown.signal });
    await backoff.execute(async () => 1);
    await endOfTurn();
    expect(listeners.liveOn(shutdown.signal)).toBe(0);
    const state = settleState(backoff.execute(hang));
    expect(listeners.liveOn(shutdown.signal)).toBe(1);
    shutdown.abort('later');
    await endOfTurn();
    expect(state.error).toBe('later');
    expect(listeners.added(shutdown.signal)).toBe(2);
    expect(listeners.removed(shutdown.signal)).toBe(2);
  });
});

describe('abandoned attempts', () => {
  async function expectNoUnhandledRejection(play: () => Promise<void>): Promise<void> {
    const spy = vi.fn();
    process.on('unhandledRejection', spy);
    try {
      await play();
      await nextMacrotask();
      await nextMacrotask();
    } finally {
      process.off('unhandledRejection', spy);
    }
    expect(spy).not.toHaveBeenCalled();
  }

  it('an attempt abandoned by its timeout that rejects later causes no unhandled rejection', async () => {
    await expectNoUnhandledRejection(async () => {
      const backoff = new Backoff({ attemptTimeout: 10, maxTries: 1 });
      const state = settleState(backoff.execute(() => rejectIn(50, new Error('late'))));
      await clock.tickAsync(100);
      expect(state.error).toBeInstanceOf(AttemptTimeoutError);
      expect(clock.countTimers()).toBe(0);
    });
  });

  it('an attempt abandoned by the deadline that rejects later causes no unhandled rejection', async () => {
    await expectNoUnhandledRejection(async () => {
      const backoff = new Backoff({ deadline: 10 });
      settleState(backoff.execute(() => rejectIn(50, new Error('late'))));
      await clock.tickAsync(100);
      expect(clock.countTimers()).toBe(0);
    });
  });

  it('an attempt abandoned by a cancellation that rejects later causes no unhandled rejection', async () => {
    await expectNoUnhandledRejection(async () => {
      const controller = new AbortController();
      const backoff = new Backoff({ signal: controller.signal });
      settleState(backoff.execute(() => rejectIn(50, new Error('late'))));
      await clock.tickAsync(10);
      controller.abort('stop');
      await clock.tickAsync(100);
      expect(clock.countTimers()).toBe(0);
    });
  });

  it('an attempt that rejects with its own aborted signal’s reason after the abort causes no unhandled rejection', async () => {
    await expectNoUnhandledRejection(async () => {
      const backoff = new Backoff({ attemptTimeout: 10, maxTries: 2 });
      const state = settleState(
        backoff.execute(
          () =>
            new Promise<never>((_, reject) => {
              const signal = currentAttempt()!.signal;
              signal.addEventListener('abort', () => reject(signal.reason), { once: true });
            }),
        ),
      );
      await clock.tickAsync(20);
      expect(state.settled).toBe(true);
    });
  });
});

describe('MaxListenersExceededWarning', () => {
  it('is not emitted when 100 concurrent executions share a signal through withSignal called per call', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const shutdown = new AbortController();
      const backoff = new Backoff({
        attemptTimeout: 100,
        deadline: 1000,
        pause: 5,
        retryAll: true,
      });
      const results = Array.from({ length: 100 }, (_, i) =>
        settleState(
          backoff.withSignal(shutdown.signal).execute(async () => {
            // Half the executions fail once, so retries come through the same view too.
            if (i % 2 === 0 && currentAttempt()!.attempt === 1) throw new TransientError('once');
            await resolveIn(10, null);
            return currentAttempt()!.signal.aborted;
          }),
        ),
      );
      await clock.tickAsync(30);
      expect(results.every((r) => r.value === false)).toBe(true);
      await endOfTurn();
      // process.emitWarning reports on the next tick: let it.
      await nextMacrotask();
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});

describe('one listener per signal, whatever shares it', () => {
  it('an instance bound to shutdown and a view per request in flight add one listener to shutdown', async () => {
    const listeners = trackListeners();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const shutdown = new AbortController();
    const backoff = new Backoff({ ...BOUNDS, signal: shutdown.signal });
    const requests = Array.from({ length: 50 }, () => new AbortController());
    const results = requests.map((request, i) =>
      settleState(backoff.withSignal(request.signal).execute(() => resolveIn(10, i))),
    );
    expect(listeners.liveOn(shutdown.signal)).toBe(1);
    expect(requests.every((r) => listeners.liveOn(r.signal) === 1)).toBe(true);
    await clock.tickAsync(10);
    expect(results.every((r, i) => r.value === i)).toBe(true);
    await endOfTurn();
    process.off('warning', onWarning);
    expect(listeners.liveTotal()).toBe(0);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('aborting shutdown still cancels every request view’s execution', async () => {
    const shutdown = new AbortController();
    const backoff = new Backoff({ signal: shutdown.signal });
    const results = Array.from({ length: 5 }, () =>
      settleState(backoff.withSignal(new AbortController().signal).execute(hang)),
    );
    shutdown.abort('shutdown');
    await clock.tickAsync(0);
    expect(results.map((r) => r.error)).toEqual(Array(5).fill('shutdown'));
  });

  it('retry(fn, { signal }) in a loop that never yields a macrotask adds one listener, not one per call', async () => {
    const listeners = trackListeners();
    const longLived = new AbortController();
    for (let i = 0; i < 20_000; i++)
      await retry(async () => i, { signal: longLived.signal, maxTries: 2, retryAll: true });
    expect(listeners.added(longLived.signal)).toBeLessThanOrEqual(2);
    expect(listeners.peak()).toBe(1);
    await endOfTurn();
    expect(listeners.liveTotal()).toBe(0);
  });

  it('a signal made for one call is let go when that call settles, not at the end of the turn', async () => {
    const listeners = trackListeners();
    const backoff = new Backoff(BOUNDS);
    let pendingAfterFirst = 0;
    for (let i = 0; i < 100; i++) {
      const signal = new AbortController().signal;
      await backoff.withSignal(signal).execute(async () => i);
      expect(listeners.liveOn(signal)).toBe(0);
      if (i === 0) pendingAfterFirst = clock.countTimers();
    }
    // Nothing waits for the turn's end on their behalf: only the instance's two shared timers
    // and their releases, as after the first call.
    expect(clock.countTimers()).toBe(pendingAfterFirst);
  });
});
