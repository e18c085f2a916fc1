/**
 * The circuit breaker through its public factory and the engine protocol (tryPass, record*,
 * release, retryAfter, onReady), then through the engine (`new Backoff({ breaker })`) and
 * batches, on a fake clock.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Backoff,
  BREAKER_CHANNEL,
  BrokenCircuitError,
  type CircuitBreaker,
  type CircuitStateChange,
  circuitBreaker,
  DeadlineExceededError,
  rerunFailed,
} from '../src/index.js';
import type { BreakerPass } from '../src/types.js';
import { type InstalledClock, installFakeClock } from './support/clock.js';

let clock: InstalledClock;
beforeEach(() => {
  clock = installFakeClock();
});
afterEach(() => {
  clock.uninstall();
});

/** Takes a pass and reports it failed, `n` times. */
function fail(breaker: CircuitBreaker, n = 1): void {
  for (let i = 0; i < n; i++) breaker.recordFailure(breaker.tryPass()!);
}
function succeed(breaker: CircuitBreaker, n = 1): void {
  for (let i = 0; i < n; i++) breaker.recordSuccess(breaker.tryPass()!);
}
const flush = () => clock.tickAsync(0);

describe('circuitBreaker: options', () => {
  it('has documented defaults: fail mode, 5 consecutive failures, 1 s half-open delay', () => {
    const breaker = circuitBreaker();
    expect(breaker.whenOpen).toBe('fail');
    expect(breaker.state).toBe('closed');
    fail(breaker, 4);
    expect(breaker.state).toBe('closed');
    fail(breaker);
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfter()).toBe(1_000);
    expect(String(breaker)).toBe('[object CircuitBreaker]');
  });

  it.each([
    [
      { whenOpen: 'block' },
      TypeError,
      /circuitBreaker: 'whenOpen' must be 'fail' or 'wait', got 'block'/,
    ],
    [
      { consecutiveFailures: 0 },
      RangeError,
      /'consecutiveFailures' must be an integer >= 1 and <= 2147483647 \(or null\), got 0/,
    ],
    [{ consecutiveFailures: 2.5 }, RangeError, /'consecutiveFailures'.*got 2.5/],
    [
      { consecutiveFailures: '3' },
      TypeError,
      /'consecutiveFailures' must be an integer >= 1 and <= 2147483647 \(or null\), got '3'/,
    ],
    [{ failureRatio: 0 }, RangeError, /'failureRatio' must be in \(0, 1\], got 0/],
    [{ failureRatio: 1.5 }, RangeError, /'failureRatio'.*got 1.5/],
    [{ failureRatio: Number.NaN }, RangeError, /'failureRatio'.*got NaN/],
    [{ failureRatio: '0.5' }, TypeError, /'failureRatio' must be a number/],
    [
      { failureRatio: 0.5, window: 0 },
      RangeError,
      /'window' must be >= 1 and <= 2147483647 ms, got 0/,
    ],
    [
      { failureRatio: 0.5, window: 2 ** 31 },
      RangeError,
      /'window' must be >= 1 and <= 2147483647 ms, got 2147483648/,
    ],
    [{ failureRatio: 0.5, minimumCalls: 0 }, RangeError, /'minimumCalls' must be an integer >= 1/],
    [
      { failureRatio: 0.5, minimumCalls: null },
      TypeError,
      /'minimumCalls' must be an integer >= 1 and <= 2147483647, got null/,
    ],
    [{ window: 1000 }, TypeError, /'window' applies only with 'failureRatio'/],
    [{ minimumCalls: 3 }, TypeError, /'minimumCalls' applies only with 'failureRatio'/],
    [{ consecutiveFailures: null }, TypeError, /both null: the circuit could never open/],
    [{ halfOpenAfter: 0 }, RangeError, /'halfOpenAfter' must be >= 1 and <= 2147483647 ms, got 0/],
    [{ halfOpenAfter: 0.5 }, RangeError, /'halfOpenAfter' is 0.5 ms; times are milliseconds/],
    [{ halfOpenAfter: Number.POSITIVE_INFINITY }, RangeError, /'halfOpenAfter'.*got Infinity/],
    [{ halfOpenAfter: '1s' }, TypeError, /'halfOpenAfter' must be a number of milliseconds/],
    [{ onStateChange: 'log' }, TypeError, /'onStateChange' must be a function/],
    [{ name: 42 }, TypeError, /'name' must be a string, got 42/],
    [{ halfOpen: 10 }, TypeError, /circuitBreaker: unknown option 'halfOpen'/],
  ])('rejects %o', (options, type, message) => {
    expect(() => circuitBreaker(options as never)).toThrow(type);
    expect(() => circuitBreaker(options as never)).toThrow(message);
  });

  it('rejects options that are not an object', () => {
    expect(() => circuitBreaker(null as never)).toThrow(
      /circuitBreaker: options must be an object, got null/,
    );
    expect(() => circuitBreaker(5 as never)).toThrow(TypeError);
  });
});

describe('circuitBreaker: opening', () => {
  it('a success resets the run of consecutive failures', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 3 });
    fail(breaker, 2);
    succeed(breaker);
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    expect(breaker.stats.consecutiveFailures).toBe(2);
    fail(breaker);
    expect(breaker.state).toBe('open');
  });

  it('opens on the failure ratio over the window once minimumCalls were made', () => {
    const breaker = circuitBreaker({
      consecutiveFailures: null,
      failureRatio: 0.5,
      window: 1_000,
      minimumCalls: 6,
    });
    // 2 failures out of 4: the ratio is reached but not the minimum number of calls.
    fail(breaker);
    succeed(breaker);
    fail(breaker);
    succeed(breaker);
    expect(breaker.state).toBe('closed');
    succeed(breaker); // 2 of 5
    fail(breaker); // 3 of 6 = 0.5
    expect(breaker.state).toBe('open');
    expect(breaker.stats).toMatchObject({ opened: 1, failures: 3, successes: 3, passed: 6 });
  });

  it('forgets calls that slid out of the window', () => {
    const breaker = circuitBreaker({
      consecutiveFailures: null,
      failureRatio: 0.5,
      window: 1_000,
      minimumCalls: 4,
    });
    fail(breaker, 3);
    expect(breaker.state).toBe('closed'); // 3 calls < minimumCalls
    clock.tick(1_100); // those three are out of the window now
    succeed(breaker, 3);
    fail(breaker); // 1 of 4 in the window
    expect(breaker.state).toBe('closed');
    fail(breaker); // 2 of 5
    expect(breaker.state).toBe('closed');
    fail(breaker); // 3 of 6
    expect(breaker.state).toBe('open');
  });

  it('either rule opens it when both are set', () => {
    const byRatio = circuitBreaker({ consecutiveFailures: 10, failureRatio: 0.5, minimumCalls: 4 });
    const changes: CircuitStateChange[] = [];
    const byRun = circuitBreaker({
      consecutiveFailures: 2,
      failureRatio: 0.9,
      minimumCalls: 100,
      onStateChange: (change) => changes.push(change),
    });
    succeed(byRatio, 2);
    fail(byRatio, 2);
    expect(byRatio.state).toBe('open');
    fail(byRun, 2);
    expect(byRun.state).toBe('open');
    expect(changes.map((c) => c.reason)).toEqual(['consecutive-failures']);
  });

  it('an open circuit hands out no pass and counts the refusals', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1 });
    fail(breaker);
    expect(breaker.tryPass()).toBeUndefined();
    expect(breaker.tryPass()).toBeUndefined();
    expect(breaker.stats).toMatchObject({ state: 'open', rejected: 2, passed: 1 });
  });

  it('reports of passes from before the opening do not count against the next closed period', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2, halfOpenAfter: 100 });
    const early = [breaker.tryPass()!, breaker.tryPass()!, breaker.tryPass()!];
    breaker.recordFailure(early[0]!);
    breaker.recordFailure(early[1]!);
    expect(breaker.state).toBe('open');
    clock.tick(100);
    breaker.recordSuccess(breaker.tryPass()!); // the probe closes it
    expect(breaker.state).toBe('closed');
    breaker.recordFailure(early[2]!); // an attempt that started before the outage
    expect(breaker.stats.consecutiveFailures).toBe(0);
    fail(breaker);
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker: half-open and the probe', () => {
  it('half-opens after halfOpenAfter, lets exactly one probe through, closes on its success', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 500 });
    fail(breaker);
    clock.tick(499);
    expect(breaker.retryAfter()).toBe(1);
    expect(breaker.state).toBe('open');
    clock.tick(1);
    expect(breaker.state).toBe('half-open');
    expect(breaker.retryAfter()).toBe(0);
    const probe = breaker.tryPass()!;
    expect(probe.probe).toBe(true);
    expect(breaker.tryPass()).toBeUndefined(); // the probe is out
    breaker.recordSuccess(probe);
    expect(breaker.state).toBe('closed');
    const next = breaker.tryPass()!;
    expect(next.probe).toBe(false);
    expect(breaker.stats).toMatchObject({ opened: 1, halfOpened: 1, closed: 1, rejected: 1 });
  });

  it('re-opens on the probe failure for another halfOpenAfter', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 500 });
    fail(breaker);
    clock.tick(500);
    breaker.recordFailure(breaker.tryPass()!);
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfter()).toBe(500);
    clock.tick(500);
    expect(breaker.state).toBe('half-open');
    expect(breaker.stats).toMatchObject({ opened: 2, halfOpened: 2, closed: 0 });
  });

  it('a released probe frees the slot for another probe, the state stays half-open', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    fail(breaker);
    clock.tick(100);
    const probe = breaker.tryPass()!;
    breaker.release(probe);
    expect(breaker.state).toBe('half-open');
    const second = breaker.tryPass()!;
    expect(second.probe).toBe(true);
    expect(breaker.stats).toMatchObject({ released: 1, passed: 3 });
  });

  it('a pass counts once; a foreign pass is a TypeError', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2 });
    const pass = breaker.tryPass()!;
    breaker.recordFailure(pass);
    breaker.recordFailure(pass);
    breaker.release(pass);
    expect(breaker.stats).toMatchObject({ failures: 1, released: 0, state: 'closed' });
    const other = circuitBreaker().tryPass()!;
    expect(() => breaker.recordSuccess(other)).toThrow(
      /CircuitBreaker.recordSuccess: 'pass' must be a pass this breaker's tryPass\(\) returned/,
    );
    expect(() => breaker.release({ probe: false } as BreakerPass)).toThrow(TypeError);
  });
});

describe('circuitBreaker: onReady', () => {
  it('calls back in a microtask when a pass is available now', async () => {
    const breaker = circuitBreaker();
    const ready = vi.fn();
    breaker.onReady(ready);
    expect(ready).not.toHaveBeenCalled();
    await flush();
    expect(ready).toHaveBeenCalledTimes(1);
  });

  it('an unsubscribe before the microtask cancels the call', async () => {
    const ready = vi.fn();
    circuitBreaker().onReady(ready)();
    await flush();
    expect(ready).not.toHaveBeenCalled();
  });

  it('while open, calls every waiter once when it half-opens, on time; no timer without waiters', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 300 });
    fail(breaker);
    expect(clock.countTimers()).toBe(0);
    const first = vi.fn();
    const second = vi.fn();
    breaker.onReady(first);
    breaker.onReady(second);
    expect(clock.countTimers()).toBe(1);
    await clock.tickAsync(299);
    expect(first).not.toHaveBeenCalled();
    await clock.tickAsync(1);
    expect(first).toHaveBeenCalledTimes(1);
    expect(second).toHaveBeenCalledTimes(1);
    expect(breaker.state).toBe('half-open');
    expect(clock.countTimers()).toBe(0);
    await clock.tickAsync(10_000);
    expect(first).toHaveBeenCalledTimes(1);
  });

  it('the last unsubscribe clears the timer', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 300 });
    fail(breaker);
    const off1 = breaker.onReady(() => {});
    const off2 = breaker.onReady(() => {});
    off1();
    expect(clock.countTimers()).toBe(1);
    off2();
    expect(clock.countTimers()).toBe(0);
    off2(); // twice is harmless
  });

  it('with the probe out, waiters are called when it ends: closed on success', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    fail(breaker);
    clock.tick(100);
    const probe = breaker.tryPass()!;
    const ready = vi.fn();
    breaker.onReady(ready);
    await flush();
    expect(ready).not.toHaveBeenCalled();
    expect(clock.countTimers()).toBe(0); // nothing to time: the probe decides
    breaker.recordSuccess(probe);
    await flush();
    expect(ready).toHaveBeenCalledTimes(1);
  });

  it('with the probe out, a released probe wakes the waiters; a failed one re-arms the timer', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    fail(breaker);
    clock.tick(100);
    let probe = breaker.tryPass()!;
    const a = vi.fn();
    breaker.onReady(a);
    breaker.release(probe);
    await flush();
    expect(a).toHaveBeenCalledTimes(1);

    probe = breaker.tryPass()!;
    const b = vi.fn();
    breaker.onReady(b);
    breaker.recordFailure(probe);
    await flush();
    expect(b).not.toHaveBeenCalled();
    expect(clock.countTimers()).toBe(1);
    await clock.tickAsync(100);
    expect(b).toHaveBeenCalledTimes(1);
  });

  it('a waiter that throws something other than an Error is reported with a description of it', async () => {
    const warnings: unknown[] = [];
    const onWarning = (warning: unknown) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const breaker = circuitBreaker();
      breaker.onReady(() => {
        throw 'not an error';
      });
      await flush();
      await new Promise((resolve) => process.nextTick(resolve));
      expect(warnings).toContainEqual(
        expect.objectContaining({
          code: 'ASYNCBACKOFF_BREAKER_CALLBACK_FAILED',
          message: "asyncbackoff: a circuit breaker callback threw: 'not an error' (a string)",
        }),
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('counts a pass once: a second recordSuccess of the same pass is ignored', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2 });
    const pass = breaker.tryPass()!;
    breaker.recordSuccess(pass);
    breaker.recordSuccess(pass);
    breaker.recordFailure(pass);
    expect(breaker.stats).toMatchObject({ successes: 1, failures: 0, consecutiveFailures: 0 });
  });

  it('a success reported after the circuit opened does not close it nor reset the failure count', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2 });
    const early = breaker.tryPass()!;
    fail(breaker, 2);
    expect(breaker.state).toBe('open');
    breaker.recordSuccess(early);
    expect(breaker.state).toBe('open');
    expect(breaker.stats).toMatchObject({ successes: 1, failures: 2, consecutiveFailures: 2 });
  });

  it('a waiter that throws is reported as a warning and does not stop the others', async () => {
    const warnings: unknown[] = [];
    const onWarning = (warning: unknown) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const breaker = circuitBreaker();
      const boom = new Error('waiter broke');
      const after = vi.fn();
      breaker.onReady(() => {
        throw boom;
      });
      breaker.onReady(after);
      await flush();
      expect(after).toHaveBeenCalledTimes(1);
      // 'warning' is emitted on process.nextTick.
      await new Promise((resolve) => process.nextTick(resolve));
      expect(warnings).toContainEqual(
        expect.objectContaining({
          code: 'ASYNCBACKOFF_BREAKER_CALLBACK_FAILED',
          message: expect.stringContaining(boom.message),
        }),
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('rejects a callback that is not a function', () => {
    expect(() => circuitBreaker().onReady(5 as never)).toThrow(
      /CircuitBreaker.onReady: 'callback' must be a function, got 5/,
    );
  });
});

describe('circuitBreaker: visibility', () => {
  it('onStateChange sees every change with its reason, in order', () => {
    const changes: CircuitStateChange[] = [];
    const breaker = circuitBreaker({
      consecutiveFailures: 2,
      halfOpenAfter: 50,
      name: 'pg',
      onStateChange: (change) => changes.push(change),
    });
    fail(breaker, 2);
    clock.tick(50);
    breaker.recordFailure(breaker.tryPass()!);
    clock.tick(50);
    breaker.recordSuccess(breaker.tryPass()!);
    expect(changes.map(({ from, to, reason }) => `${from}>${to}:${reason}`)).toEqual([
      'closed>open:consecutive-failures',
      'open>half-open:delay-elapsed',
      'half-open>open:probe-failed',
      'open>half-open:delay-elapsed',
      'half-open>closed:probe-succeeded',
    ]);
    expect(changes[0]).toMatchObject({ breaker, name: 'pg', at: 0 });
    expect(changes[4]!.at).toBe(100);
    expect(Object.isFrozen(changes[0])).toBe(true);
  });

  it('a throwing onStateChange is reported and leaves the state consistent', async () => {
    const warnings: unknown[] = [];
    const onWarning = (warning: unknown) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const boom = new Error('hook broke');
      const breaker = circuitBreaker({
        consecutiveFailures: 1,
        onStateChange: () => {
          throw boom;
        },
      });
      expect(() => fail(breaker)).not.toThrow();
      expect(breaker.state).toBe('open');
      await new Promise((resolve) => process.nextTick(resolve));
      expect(warnings).toContainEqual(
        expect.objectContaining({
          code: 'ASYNCBACKOFF_BREAKER_CALLBACK_FAILED',
          message: expect.stringContaining(boom.message),
        }),
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  it(`publishes state changes on diagnostics_channel '${BREAKER_CHANNEL}'`, () => {
    const seen: CircuitStateChange[] = [];
    const listener = (message: unknown) => seen.push(message as CircuitStateChange);
    diagnosticsChannel.subscribe(BREAKER_CHANNEL, listener);
    try {
      const breaker = circuitBreaker({ consecutiveFailures: 1, name: 'orders-db' });
      fail(breaker);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ breaker, name: 'orders-db', from: 'closed', to: 'open' });
    } finally {
      diagnosticsChannel.unsubscribe(BREAKER_CHANNEL, listener);
    }
  });

  it('stats is a frozen snapshot', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2 });
    const before = breaker.stats;
    fail(breaker);
    expect(Object.isFrozen(before)).toBe(true);
    expect(before).toEqual({
      state: 'closed',
      opened: 0,
      halfOpened: 0,
      closed: 0,
      passed: 0,
      rejected: 0,
      successes: 0,
      failures: 0,
      released: 0,
      consecutiveFailures: 0,
    });
    expect(breaker.stats).toMatchObject({ passed: 1, failures: 1, consecutiveFailures: 1 });
  });
});

// ── Through the engine: `new Backoff({ breaker })` and `backoff.map` ──────────────────────────

class Down extends Error {
  override name = 'Down';
}

/** A dependency that fails while `down` (after `ms`), recording the fake time of every call. */
function dependency(ms = 0) {
  const calls: number[] = [];
  const state = { down: true };
  const fn = async <T>(value?: T): Promise<T | 'ok'> => {
    calls.push(performance.now());
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    if (state.down) throw new Down('down');
    return value ?? 'ok';
  };
  return { calls, state, fn };
}

/** Observes a promise so it never counts as unhandled. */
function observe<T>(promise: Promise<T>) {
  const seen = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  promise.then(
    (value) => Object.assign(seen, { settled: true, value }),
    (error: unknown) => Object.assign(seen, { settled: true, error }),
  );
  return seen;
}

describe("circuitBreaker with the engine: whenOpen 'fail'", () => {
  it('opens after the failures, then rejects at once with BrokenCircuitError without calling fn; a probe closes it', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2, halfOpenAfter: 1_000 });
    const backoff = new Backoff({ breaker, retryOn: (e) => e instanceof Down, maxTries: 1 });
    const dep = dependency();
    await expect(backoff.execute(dep.fn)).rejects.toBeInstanceOf(Down);
    await expect(backoff.execute(dep.fn)).rejects.toBeInstanceOf(Down);
    expect(breaker.state).toBe('open');
    const refused = await backoff.execute(dep.fn).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BrokenCircuitError);
    expect(refused).toMatchObject({ code: 'ASYNCBACKOFF_BROKEN_CIRCUIT', retryAfter: 1_000 });
    expect(dep.calls).toHaveLength(2);
    expect(backoff.statistics.breakerRefusals).toBe(1);

    await clock.tickAsync(1_000);
    dep.state.down = false;
    await expect(backoff.execute(dep.fn)).resolves.toBe('ok');
    expect(breaker.stats).toMatchObject({ state: 'closed', opened: 1, halfOpened: 1, closed: 1 });
    expect(dep.calls).toHaveLength(3);
  });

  it('a refused retry ends the execution with BrokenCircuitError carrying the last error as cause', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1 });
    const backoff = new Backoff({
      breaker,
      retryOn: (e) => e instanceof Down,
      maxTries: 3,
      pause: 10,
    });
    const dep = dependency();
    const outcome = observe(backoff.execute(dep.fn));
    await clock.tickAsync(10);
    expect(outcome.error).toBeInstanceOf(BrokenCircuitError);
    expect((outcome.error as Error).cause).toBeInstanceOf(Down);
    expect(dep.calls).toHaveLength(1);
  });

  it('one breaker is shared by two instances: failures of one open it for the other', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 3 });
    const a = new Backoff({ breaker, retryAll: true, maxTries: 1 });
    const b = new Backoff({ breaker, retryAll: true, maxTries: 1 });
    const dep = dependency();
    for (let i = 0; i < 3; i++) await a.execute(dep.fn).catch(() => undefined);
    await expect(b.execute(dep.fn)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(dep.calls).toHaveLength(3);
  });

  it('a non-retriable error says the dependency answered: it does not count against it', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1 });
    const backoff = new Backoff({ breaker, retryOn: (e) => e instanceof Down, maxTries: 1 });
    await expect(
      backoff.execute(async () => {
        throw new TypeError('a bug, not an outage');
      }),
    ).rejects.toBeInstanceOf(TypeError);
    expect(breaker.state).toBe('closed');
  });
});

describe("circuitBreaker with the engine: whenOpen 'wait'", () => {
  it('holds attempts while open, lets one probe through when it half-opens, then releases the rest', async () => {
    const breaker = circuitBreaker({
      whenOpen: 'wait',
      consecutiveFailures: 1,
      halfOpenAfter: 500,
    });
    const backoff = new Backoff({ breaker, retryAll: true, deadline: 5_000, pause: 10 });
    const dep = dependency(5);
    const first = observe(backoff.execute(dep.fn, 'first'));
    await clock.tickAsync(20);
    expect(breaker.state).toBe('open');
    const others = [1, 2, 3].map((i) => observe(backoff.execute(dep.fn, `other ${i}`)));
    await clock.tickAsync(200);
    dep.state.down = false;
    expect(dep.calls).toEqual([0]); // nothing reached the dependency while it was open
    await clock.tickAsync(287); // t = 507: opened at 5, half-open at 505, the probe runs until 510
    expect(dep.calls).toEqual([0, 505]); // exactly one probe
    await clock.tickAsync(20);
    expect(first.value).toBe('first');
    expect(others.map((o) => o.value)).toEqual(['other 1', 'other 2', 'other 3']);
    expect(dep.calls).toHaveLength(5);
    expect(breaker.stats).toMatchObject({ state: 'closed', opened: 1, closed: 1 });
    expect(clock.countTimers()).toBe(0);
  });

  it('a probe that fails re-opens it; the held executions keep waiting within their deadlines', async () => {
    const breaker = circuitBreaker({
      whenOpen: 'wait',
      consecutiveFailures: 1,
      halfOpenAfter: 100,
    });
    const backoff = new Backoff({ breaker, retryAll: true, deadline: 1_000, pause: 1 });
    const dep = dependency();
    const held = observe(backoff.execute(dep.fn));
    await clock.tickAsync(350); // probes at 101, 202, 303 all fail
    expect(held.settled).toBe(false);
    expect(dep.calls.length).toBeGreaterThanOrEqual(3);
    expect(dep.calls.length).toBeLessThanOrEqual(5);
    dep.state.down = false;
    await clock.tickAsync(200);
    expect(held.value).toBe('ok');
  });

  it('a held execution ends at its deadline: with the last error, or DeadlineExceededError if it never ran', async () => {
    const breaker = circuitBreaker({
      whenOpen: 'wait',
      consecutiveFailures: 1,
      halfOpenAfter: 10_000,
    });
    const backoff = new Backoff({ breaker, retryAll: true, deadline: 300, pause: 1 });
    const dep = dependency();
    const ran = observe(backoff.execute(dep.fn));
    await clock.tickAsync(5);
    const never = observe(backoff.execute(dep.fn));
    await clock.tickAsync(300);
    expect(ran.error).toBeInstanceOf(Down);
    expect(never.error).toBeInstanceOf(DeadlineExceededError);
    expect(dep.calls).toHaveLength(1);
    expect(clock.countTimers()).toBe(0); // no breaker timer left without waiters
  });

  it('a held execution stops at once on its signal', async () => {
    const breaker = circuitBreaker({
      whenOpen: 'wait',
      consecutiveFailures: 1,
      halfOpenAfter: 10_000,
    });
    const backoff = new Backoff({ breaker, retryAll: true, pause: 1 });
    const dep = dependency();
    const controller = new AbortController();
    const held = observe(backoff.withSignal(controller.signal).execute(dep.fn));
    await clock.tickAsync(5);
    expect(clock.countTimers()).toBe(1); // the breaker's half-open timer, for the waiter
    const reason = new Error('shutdown');
    controller.abort(reason);
    await clock.tickAsync(0);
    expect(held.error).toBe(reason);
    expect(clock.countTimers()).toBe(0);
  });
});

describe('circuitBreaker with batches', () => {
  it("'fail': an open breaker stops the batch pulling items, one item carries the probe, then the rest run", async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 3, halfOpenAfter: 200 });
    const backoff = new Backoff({ breaker, retryOn: (e) => e instanceof Down, maxTries: 1 });
    const dep = dependency(10);
    setTimeout(() => {
      dep.state.down = false;
    }, 150);
    const batch = observe(
      backoff.map(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => dep.fn(i),
        {
          concurrency: 5,
          settled: true,
        },
      ),
    );
    await clock.tickAsync(10);
    expect(breaker.state).toBe('open');
    // Items 5 and 6 were pulled at t = 10 by the first two failures, while it was still closed.
    await clock.tickAsync(195); // t = 205: opened at 10, half-open at 210
    expect(dep.calls).toEqual([0, 0, 0, 0, 0, 10, 10]); // nothing pulled while open
    await clock.tickAsync(5);
    expect(dep.calls.slice(7)).toEqual([210]); // the probe, alone
    await clock.tickAsync(5);
    expect(dep.calls).toHaveLength(8);
    await clock.tickAsync(100);
    const outcomes = batch.value!;
    expect(outcomes.map((o) => o.status)).toEqual([
      ...Array(7).fill('rejected'),
      ...Array(13).fill('fulfilled'),
    ]);
    // No item was failed by the breaker itself: the batch waited instead.
    expect(
      outcomes.some((o) => o.status === 'rejected' && o.reason instanceof BrokenCircuitError),
    ).toBe(false);
    const again = observe(rerunFailed(backoff, outcomes, (i) => dep.fn(i)));
    await clock.tickAsync(20);
    expect(again.value!.every((o) => o.status === 'fulfilled')).toBe(true);
    expect(again.value!.map((o) => (o.status === 'fulfilled' ? o.value : undefined))).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it("'wait': a batch rides out an outage within its deadline, with no final failure", async () => {
    const breaker = circuitBreaker({
      whenOpen: 'wait',
      consecutiveFailures: 3,
      halfOpenAfter: 100,
    });
    const backoff = new Backoff({
      breaker,
      retryOn: (e) => e instanceof Down,
      deadline: 5_000,
      pause: 20,
    });
    const dep = dependency(10);
    dep.state.down = false;
    setTimeout(() => {
      dep.state.down = true;
    }, 50);
    setTimeout(() => {
      dep.state.down = false;
    }, 1_000);
    const batch = observe(
      backoff.map(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => dep.fn(i),
        { concurrency: 10 },
      ),
    );
    await clock.tickAsync(500);
    const whileOpen = dep.calls.length;
    await clock.tickAsync(400); // still down: only probes, one per halfOpenAfter
    expect(dep.calls.length - whileOpen).toBeLessThanOrEqual(5);
    await clock.tickAsync(2_000);
    expect(batch.value).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(breaker.stats.opened).toBeGreaterThanOrEqual(1);
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker with batches: the end of the input', () => {
  it('a sized batch whose last items failed and opened the breaker settles at once, without waiting for it', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2, halfOpenAfter: 10_000 });
    const backoff = new Backoff({ breaker, retryOn: (e) => e instanceof Down, maxTries: 1 });
    const dep = dependency(5);
    const batch = observe(
      backoff.map([1, 2, 3], (i) => dep.fn(i), { concurrency: 3, settled: true }),
    );
    await clock.tickAsync(5);
    expect(breaker.state).toBe('open');
    expect(batch.value?.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    await clock.tickAsync(1);
    expect(clock.countTimers()).toBe(0); // no breaker timer left behind
  });

  it('workers waiting on the breaker leave as soon as another one finds the end of an async source', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    const backoff = new Backoff({ breaker, retryOn: (e) => e instanceof Down, maxTries: 1 });
    const dep = dependency(5);
    async function* items() {
      yield 1;
      yield 2;
      await new Promise((resolve) => setTimeout(resolve, 300)); // a slow source's last answer
    }
    const batch = observe(
      backoff.map(items(), (i) => dep.fn(i), { concurrency: 3, settled: true }),
    );
    await clock.tickAsync(150); // both failed at 5 and opened it; half-open at 105; a third worker waits on the source
    expect(batch.settled).toBe(false);
    await clock.tickAsync(160); // the source ends at 300
    expect(batch.value?.map((o) => o.status)).toEqual(['rejected', 'rejected']);
  });
});

// ── Pinned edges: option table, messages, window arithmetic, probe bookkeeping, timers ─────────

/** Collects the process warnings emitted while `body` runs (they are emitted on nextTick). */
async function collectWarnings(body: () => void | Promise<void>): Promise<Error[]> {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  try {
    await body();
    await new Promise((resolve) => process.nextTick(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  return warnings;
}

describe('circuitBreaker: the module as loaded', () => {
  it("accepts every documented option and publishes on the documented channel 'asyncbackoff:breaker'", async () => {
    vi.resetModules();
    const mod = await import('../src/breaker.js');
    expect(mod.BREAKER_CHANNEL).toBe('asyncbackoff:breaker');
    const seen: unknown[] = [];
    const listener = (message: unknown) => seen.push(message);
    diagnosticsChannel.subscribe('asyncbackoff:breaker', listener);
    try {
      const changes: CircuitStateChange[] = [];
      const breaker = mod.circuitBreaker({
        whenOpen: 'wait',
        consecutiveFailures: 2,
        failureRatio: 0.5,
        window: 1_000,
        minimumCalls: 4,
        halfOpenAfter: 200,
        onStateChange: (change) => changes.push(change),
        name: 'all-options',
      });
      fail(breaker, 2);
      expect(breaker.state).toBe('open');
      expect(changes).toHaveLength(1);
      expect(seen).toEqual(changes);
      expect(changes[0]).toMatchObject({ name: 'all-options', reason: 'consecutive-failures' });
    } finally {
      diagnosticsChannel.unsubscribe('asyncbackoff:breaker', listener);
    }
  });

  it('each known option alone is accepted; an unknown one is named with the circuitBreaker prefix', async () => {
    vi.resetModules();
    const { circuitBreaker: make } = await import('../src/breaker.js');
    const alone = [
      { whenOpen: 'fail' },
      { consecutiveFailures: 3 },
      { failureRatio: 0.5 },
      { failureRatio: 0.5, window: 500 },
      { failureRatio: 0.5, minimumCalls: 2 },
      { halfOpenAfter: 10 },
      { onStateChange: () => {} },
      { name: 'x' },
    ] as const;
    for (const options of alone) expect(() => make(options)).not.toThrow();
    expect(() => make({ halfOpen: 1 } as never)).toThrow(
      /^circuitBreaker: unknown option 'halfOpen'$/,
    );
    expect(() => make({ name: 1 } as never)).toThrow(/^circuitBreaker: 'name' must be a string/);
  });
});

describe('circuitBreaker: pinned edges', () => {
  it('accepts a failureRatio of exactly 1: it opens once every call in the window failed', () => {
    const breaker = circuitBreaker({ consecutiveFailures: null, failureRatio: 1, minimumCalls: 3 });
    succeed(breaker);
    fail(breaker, 3);
    expect(breaker.state).toBe('closed'); // 3 of 4
    clock.tick(10_000);
    fail(breaker, 3);
    expect(breaker.state).toBe('open');
  });

  it('without failureRatio, only the run of failures opens it (no ratio rule by default)', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 5 });
    succeed(breaker, 20);
    fail(breaker, 4);
    expect(breaker.state).toBe('closed');
  });

  it('counts calls spread over the buckets of one window together', () => {
    const changes: CircuitStateChange[] = [];
    const breaker = circuitBreaker({
      consecutiveFailures: null,
      failureRatio: 0.5,
      window: 1_000,
      minimumCalls: 4,
      onStateChange: (change) => changes.push(change),
    });
    for (let i = 0; i < 3; i++) {
      fail(breaker);
      clock.tick(150);
    }
    expect(breaker.state).toBe('closed'); // 3 calls < minimumCalls
    fail(breaker); // t = 450: 4 of 4 failed, over four buckets
    expect(breaker.state).toBe('open');
    expect(changes.map((c) => c.reason)).toEqual(['failure-ratio']);
  });

  it('the pass-check error names the method it came from', () => {
    const breaker = circuitBreaker();
    const other = circuitBreaker().tryPass()!;
    expect(() => breaker.recordFailure(other)).toThrow(
      /^CircuitBreaker\.recordFailure: 'pass' must be a pass/,
    );
    expect(() => breaker.release(other)).toThrow(/^CircuitBreaker\.release: 'pass' must be a pass/);
  });

  it('retryAfter is 0 on a circuit that never opened', () => {
    expect(circuitBreaker({ halfOpenAfter: 5_000 }).retryAfter()).toBe(0);
  });

  it('after a successful probe, the next opening lets a probe through again', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    fail(breaker);
    clock.tick(100);
    succeed(breaker); // the probe closes it
    fail(breaker);
    expect(breaker.state).toBe('open');
    clock.tick(100);
    const probe = breaker.tryPass();
    expect(probe?.probe).toBe(true);
  });

  it('a success reported from before the last opening does not reset the new run of failures', () => {
    const breaker = circuitBreaker({ consecutiveFailures: 2, halfOpenAfter: 100 });
    const early = breaker.tryPass()!;
    fail(breaker, 2);
    clock.tick(100);
    succeed(breaker); // the probe closes it
    fail(breaker);
    breaker.recordSuccess(early);
    expect(breaker.stats.consecutiveFailures).toBe(1);
    fail(breaker);
    expect(breaker.state).toBe('open');
  });

  it('a success reported from before the last opening is not counted in the failure-ratio window', () => {
    const breaker = circuitBreaker({
      consecutiveFailures: 2,
      failureRatio: 0.5,
      minimumCalls: 2,
      halfOpenAfter: 100,
    });
    const early = breaker.tryPass()!;
    fail(breaker, 2);
    clock.tick(100);
    succeed(breaker); // the probe closes it and clears the window
    breaker.recordSuccess(early);
    succeed(breaker);
    fail(breaker); // 1 of 2 in the window
    expect(breaker.state).toBe('open');
  });

  it('releasing a pass that is not the probe keeps the probe slot taken and wakes no waiter', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    const early = breaker.tryPass()!;
    fail(breaker);
    clock.tick(100);
    const probe = breaker.tryPass()!;
    expect(probe.probe).toBe(true);
    const ready = vi.fn();
    breaker.onReady(ready);
    breaker.release(early);
    await flush();
    expect(ready).not.toHaveBeenCalled();
    expect(breaker.tryPass()).toBeUndefined();
    expect(breaker.stats).toMatchObject({ released: 1, state: 'half-open' });
  });

  it('onReady on a half-open circuit with no probe out calls back at once', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    fail(breaker);
    clock.tick(100);
    expect(breaker.state).toBe('half-open');
    const ready = vi.fn();
    breaker.onReady(ready);
    await flush();
    expect(ready).toHaveBeenCalledTimes(1);
  });

  it('the warning for a throwing callback has the AsyncBackoffWarning type', async () => {
    const warnings = await collectWarnings(() => {
      const breaker = circuitBreaker({
        consecutiveFailures: 1,
        onStateChange: () => {
          throw new Error('hook broke');
        },
      });
      fail(breaker);
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      name: 'AsyncBackoffWarning',
      code: 'ASYNCBACKOFF_BREAKER_CALLBACK_FAILED',
    });
  });

  it('with only a channel subscriber and no onStateChange, a state change emits no warning', async () => {
    const seen: unknown[] = [];
    const listener = (message: unknown) => seen.push(message);
    diagnosticsChannel.subscribe(BREAKER_CHANNEL, listener);
    try {
      const warnings = await collectWarnings(() => {
        fail(circuitBreaker({ consecutiveFailures: 1 }));
      });
      expect(seen).toHaveLength(1);
      expect(warnings).toEqual([]);
    } finally {
      diagnosticsChannel.unsubscribe(BREAKER_CHANNEL, listener);
    }
  });

  it('a half-open timer that fires a fraction of a millisecond early waits the rest, then wakes the waiter', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    fail(breaker); // opened at 0
    const ready = vi.fn();
    breaker.onReady(ready);
    expect(clock.countTimers()).toBe(1);
    // A coarse clock: performance.now() lags the timers by half a millisecond.
    const fakeNow = performance.now.bind(performance);
    const lagging = vi.spyOn(performance, 'now').mockImplementation(() => fakeNow() - 0.5);
    try {
      await clock.tickAsync(100); // the timer fires at 100, the breaker reads 99.5: still open
      expect(ready).not.toHaveBeenCalled();
      expect(clock.countTimers()).toBe(1); // re-armed for the rest
      await clock.tickAsync(1);
      expect(ready).toHaveBeenCalledTimes(1);
      expect(clock.countTimers()).toBe(0);
    } finally {
      lagging.mockRestore();
    }
  });
});
