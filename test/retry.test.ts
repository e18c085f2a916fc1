import FakeTimers from '@sinonjs/fake-timers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetryConditionError, retry } from '../src/index.js';

let clock: ReturnType<typeof FakeTimers.install>;
beforeEach(() => {
  clock = FakeTimers.install({ toNotFake: ['nextTick', 'queueMicrotask'] });
});
afterEach(() => clock.uninstall());

describe('retry(fn, options)', () => {
  it('polls until retryIf no longer holds, pausing between tries', async () => {
    const statuses = ['run', 'run', 'done'] as const;
    const seen: number[] = [];
    let call = 0;
    const result = retry(
      async () => {
        seen.push(Date.now());
        return { status: statuses[call++]! };
      },
      { retryIf: (task) => task.status === 'run', pause: 1_000, maxTries: 5 },
    );
    await clock.tickAsync(2_000);
    await expect(result).resolves.toEqual({ status: 'done' });
    expect(seen.map((t) => t - seen[0]!)).toEqual([0, 1_000, 2_000]);
  });

  it('rejects with a RetryConditionError carrying the last result when tries run out', async () => {
    const result = retry(async () => ({ status: 'run' }), {
      retryIf: (task) => task.status === 'run',
      maxTries: 2,
    });
    const error = await result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryConditionError);
    expect((error as RetryConditionError).lastResult).toEqual({ status: 'run' });
    expect((error as RetryConditionError).attempts).toBe(2);
  });

  it('rejects (rather than throws) for invalid options and a non-function', async () => {
    await expect(retry(async () => 1, { maxTries: 0 })).rejects.toThrow(RangeError);
    await expect(retry(async () => 1, { pause: -1 })).rejects.toThrow(/^retry: 'pause'/);
    await expect(retry('nope' as never)).rejects.toThrow(/'fn' must be a function/);
  });
});
