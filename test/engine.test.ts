/**
 * The entry point's fast path (src/engine.ts), for policies nothing can cut into: it chains a plain
 * native promise directly and hands anything else to the general path, which adopts it as `await`.
 */
import { Backoff, type RetryBudget } from 'asyncbackoff';
import { describe, expect, it } from 'vitest';

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
