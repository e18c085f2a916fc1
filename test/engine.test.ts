/**
 * The entry point's fast path (src/engine.ts), for policies nothing can cut into: it chains a plain
 * native promise directly and hands anything else to the general path, which adopts it as `await`.
 */
import { Backoff, type RetryBudget } from 'asyncbackoff';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type InstalledClock, installFakeClock } from './support/clock.js';

describe('the unbounded fast path', () => {
  it('a Proxy of a native promise settles as `await` settles it (a TypeError), not as the promise', async () => {
    const proxied = () => new Proxy(Promise.resolve('value'), {});
    const awaited = await (async () => await proxied())().catch((e: unknown) => e);
    expect(awaited).toBeInstanceOf(TypeError);
    const backoff = new Backoff({ maxTries: 1 });
    const executed = await backoff.execute(proxied).catch((e: unknown) => e);
    expect(executed).toBeInstanceOf(TypeError);
    expect((executed as Error).message).toBe((awaited as Error).message);
    expect(backoff.statistics).toMatchObject({ attempts: 1, giveUps: 1 });
  });
});

describe('the unbounded retry loop', () => {
  it('a budget that throws when told of the success after a retry: rejects with what it threw', async () => {
    const budgetError = new Error('budget store down');
    const budget: RetryBudget = {
      recordFailure: () => {},
      tryAcquire: () => true,
      recordSuccess: (lastRetryKind) => {
        if (lastRetryKind !== undefined) throw budgetError;
      },
    };
    const backoff = new Backoff({ retryAll: true, maxTries: 3, pause: 0, budget });
    let calls = 0;
    const fn = async () => {
      if (++calls === 1) throw new Error('first attempt fails');
      return 'second attempt answers';
    };
    await expect(backoff.execute(fn)).rejects.toBe(budgetError);
    expect(calls).toBe(2);
    expect(backoff.statistics).toMatchObject({ attempts: 2, retries: 1, successes: 0, giveUps: 1 });
  });
});

describe('the unbounded fast path and retry loop: attempt times', () => {
  let clock: InstalledClock;
  beforeEach(() => {
    clock = installFakeClock();
  });
  afterEach(() => {
    clock.uninstall();
  });

  it('counts the time of a first attempt that succeeds', async () => {
    clock.tick(1000); // away from the clock's origin, so that only a difference of times gives 40
    const backoff = new Backoff({ maxTries: 1 });
    const done = backoff.execute(
      () => new Promise<string>((resolve) => setTimeout(() => resolve('ok'), 40)),
    );
    await clock.tickAsync(40);
    await expect(done).resolves.toBe('ok');
    expect(backoff.statistics).toMatchObject({ attempts: 1, done: 1, successes: 1, sumTime: 40 });
  });

  it('counts the time of each attempt on the plain retry loop', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 2, pause: 5 });
    let calls = 0;
    const done = backoff.execute(
      () =>
        new Promise<string>((resolve, reject) => {
          if (++calls === 1) setTimeout(() => reject(new Error('first attempt fails')), 10);
          else setTimeout(() => resolve('ok'), 30);
        }),
    );
    await clock.tickAsync(45);
    await expect(done).resolves.toBe('ok');
    expect(backoff.statistics).toMatchObject({
      attempts: 2,
      done: 2,
      retries: 1,
      successes: 1,
      sumTime: 40,
      sleptTime: 5,
    });
  });
});

describe('the unbounded fast path: settling', () => {
  it("a first-attempt success settles as the attempt's own `.then` would, in the same tick", async () => {
    const value = Promise.resolve('v');
    const log: string[] = [];
    const executed = new Backoff({ maxTries: 1 })
      .execute(() => value)
      .then(() => log.push('execute'));
    // Registered after execute() chained the attempt's promise: one `.then` on the same promise.
    const reference = value.then((v) => v).then(() => log.push('value.then'));
    await Promise.all([executed, reference]);
    expect(log).toEqual(['execute', 'value.then']);
  });
});

describe('the unbounded retry loop: what the callbacks are told', () => {
  it('tells the budget and the retryAfter extractor that the failure was an error', async () => {
    const budget = {
      recordFailure: vi.fn<RetryBudget['recordFailure']>(),
      tryAcquire: vi.fn<RetryBudget['tryAcquire']>(() => true),
      recordSuccess: vi.fn<RetryBudget['recordSuccess']>(),
    };
    const retryAfter = vi.fn(() => undefined);
    const backoff = new Backoff({ retryAll: true, maxTries: 2, pause: 0, budget, retryAfter });
    const failure = new Error('first attempt fails');
    let calls = 0;
    const fn = async () => {
      if (++calls === 1) throw failure;
      return 'second attempt answers';
    };
    await expect(backoff.execute(fn)).resolves.toBe('second attempt answers');
    expect(budget.recordFailure.mock.calls).toEqual([['error']]);
    expect(budget.tryAcquire.mock.calls).toEqual([['error']]);
    expect(budget.recordSuccess.mock.calls).toEqual([['error']]);
    expect(retryAfter.mock.calls).toEqual([[failure, 'error']]);
  });
});

describe('the arguments an execution keeps', () => {
  it('a bounded call without arguments calls fn with none; one with arguments passes them on each try', async () => {
    const clock = installFakeClock();
    try {
      const backoff = new Backoff({
        attemptTimeout: 1000,
        deadline: 5000,
        retryAll: true,
        pause: 0,
      });
      const seen: unknown[][] = [];
      /** Fails its first call, then answers with how many arguments it got. */
      const failingOnce = () => {
        let calls = 0;
        return (...args: unknown[]) => {
          seen.push(args);
          return calls++ === 0 ? Promise.reject(new Error('once')) : Promise.resolve(args.length);
        };
      };
      const none = backoff.execute(failingOnce());
      const two = backoff.execute(failingOnce(), 'a', 2);
      await clock.tickAsync(0);
      expect(await none).toBe(0);
      expect(await two).toBe(2);
      expect(seen).toEqual([[], ['a', 2], [], ['a', 2]]);
    } finally {
      clock.uninstall();
    }
  });

  it('the shared empty arguments array is empty (a fresh copy of the module, as loaded)', async () => {
    vi.resetModules();
    const fresh = await import('../src/index.js');
    const backoff = new fresh.Backoff({ attemptTimeout: 1000 });
    expect(await backoff.execute((...args: unknown[]) => args)).toEqual([]);
  });
});
