/**
 * How the engine treats a circuit breaker, seen through a scripted breaker that implements the
 * protocol (`circuitBreaker()` itself is tested in breaker.test.ts): which attempts it admits,
 * what it is told of each, and how 'fail' and 'wait' end or hold an execution.
 */
import { describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  Backoff,
  BrokenCircuitError,
  type CircuitBreaker,
  DeadlineExceededError,
} from '../src/index.js';
import type { BreakerPass } from '../src/types.js';
import { hang, sleep, TransientError, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

/** A breaker whose openness the test sets; it logs what the engine tells it. */
function scriptedBreaker(whenOpen: 'fail' | 'wait') {
  const log: string[] = [];
  let open = false;
  let waiters: Array<() => void> = [];
  const breaker: CircuitBreaker = {
    get state() {
      return open ? 'open' : 'closed';
    },
    whenOpen,
    tryPass: () => (open ? undefined : { probe: false }),
    recordSuccess: (_pass: BreakerPass) => void log.push('success'),
    recordFailure: (_pass: BreakerPass) => void log.push('failure'),
    release: (_pass: BreakerPass) => void log.push('release'),
    retryAfter: () => 1000,
    onReady(callback) {
      waiters.push(callback);
      return () => {
        waiters = waiters.filter((w) => w !== callback);
        log.push('unsubscribed');
      };
    },
  };
  return {
    breaker,
    log,
    waiting: () => waiters.length,
    setOpen(value: boolean) {
      open = value;
      if (!value) {
        const ready = waiters;
        waiters = [];
        for (const callback of ready) callback();
      }
    },
  };
}

describe('the breaker option', () => {
  it('tells the breaker each attempt’s outcome: retriable failures and timeouts against, answers for', async () => {
    const s = scriptedBreaker('fail');
    class Fatal extends Error {}
    const backoff = new Backoff({
      breaker: s.breaker,
      exceptions: [TransientError],
      attemptTimeout: 50,
      pause: 1,
      maxTries: 4,
    });
    const steps = [
      () => Promise.reject(new TransientError('a')),
      () => hang(),
      () => Promise.reject(new Fatal('b')),
    ];
    const result = track(backoff.execute(() => steps.shift()!()));
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(Fatal);
    expect(s.log).toEqual(['failure', 'failure', 'success']);
  });

  it("'fail': an open breaker rejects with BrokenCircuitError without calling fn", async () => {
    const s = scriptedBreaker('fail');
    s.setOpen(true);
    const backoff = new Backoff({ breaker: s.breaker, retryAll: true });
    let calls = 0;
    const error = await backoff.execute(async () => calls++).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect((error as BrokenCircuitError).code).toBe('ASYNCBACKOFF_BROKEN_CIRCUIT');
    expect((error as BrokenCircuitError).retryAfter).toBe(1000);
    expect(calls).toBe(0);
    expect(backoff.statistics).toMatchObject({ attempts: 0, breakerRefusals: 1, giveUps: 1 });
  });

  it("'fail' on a retry: rejects with BrokenCircuitError whose cause is the last failure", async () => {
    const s = scriptedBreaker('fail');
    const first = new TransientError('first');
    const backoff = new Backoff({
      breaker: s.breaker,
      retryAll: true,
      pause: 10,
      onRetry: () => s.setOpen(true),
    });
    const result = track(backoff.execute(() => Promise.reject(first)));
    await t.clock.tickAsync(20);
    expect(result.error).toBeInstanceOf(BrokenCircuitError);
    expect((result.error as Error).cause).toBe(first);
  });

  it("'wait': holds the attempt until the breaker is ready, then runs it", async () => {
    const s = scriptedBreaker('wait');
    s.setOpen(true);
    const backoff = new Backoff({ breaker: s.breaker, deadline: 1000 });
    const result = track(backoff.execute(async () => 'ran'));
    await t.clock.tickAsync(300);
    expect(result.status).toBe('pending');
    expect(s.waiting()).toBe(1);
    s.setOpen(false);
    await t.clock.tickAsync(0);
    expect(result.value).toBe('ran');
    expect(backoff.statistics).toMatchObject({ attempts: 1, breakerRefusals: 1, successes: 1 });
  });

  it("'wait': the deadline and signals still end a held execution, and it stops listening", async () => {
    const s = scriptedBreaker('wait');
    s.setOpen(true);
    const byDeadline = track(new Backoff({ breaker: s.breaker, deadline: 100 }).execute(sleep, 1));
    const controller = new AbortController();
    const bySignal = track(
      new Backoff({ breaker: s.breaker }).withSignal(controller.signal).execute(sleep, 1),
    );
    await t.clock.tickAsync(50);
    controller.abort('stop');
    await t.clock.tickAsync(50);
    expect(byDeadline.error).toBeInstanceOf(DeadlineExceededError);
    expect(bySignal.error).toBe('stop');
    expect(s.waiting()).toBe(0);
    expect(s.log).toEqual(['unsubscribed', 'unsubscribed']);
  });

  it('an attempt cut by the deadline or a cancellation releases its pass without a verdict', async () => {
    const s = scriptedBreaker('fail');
    const result = track(new Backoff({ breaker: s.breaker, deadline: 30 }).execute(hang));
    await t.clock.tickAsync(30);
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    expect(s.log).toEqual(['release']);
  });

  it('an attempt timeout counts against the dependency', async () => {
    const s = scriptedBreaker('fail');
    const result = track(
      new Backoff({ breaker: s.breaker, attemptTimeout: 10, maxTries: 1 }).execute(hang),
    );
    await t.clock.tickAsync(10);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(s.log).toEqual(['failure']);
  });

  it('is validated: something without the protocol is a TypeError', () => {
    expect(() => new Backoff({ breaker: {} as never })).toThrow(
      /Backoff: 'breaker' must be a CircuitBreaker/,
    );
  });
});
