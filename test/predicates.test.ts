/**
 * retryOn, and predicates that answer later: giveup, retryIf and policy may return promises, which
 * are awaited within the deadline and the signals, and cost nothing when they answer at once.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  Backoff,
  DeadlineExceededError,
  isTransientNetworkError,
  RetryConditionError,
} from '../src/index.js';
import { settle } from './support/clock.js';
import { hang, sleep, TransientError, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

const coded = (code: string) => Object.assign(new Error(code), { code });

describe('retryOn', () => {
  it('retries errors it accepts, beside exceptions, and rejects at once with the rest', async () => {
    const backoff = new Backoff({ maxTries: 5, retryOn: isTransientNetworkError });
    let calls = 0;
    const fatal = coded('ENOTFOUND');
    const error = await settle(
      t.clock,
      backoff.execute(async () => {
        calls++;
        throw calls < 3 ? coded('ECONNRESET') : fatal;
      }),
    ).catch((e: unknown) => e);
    expect(error).toBe(fatal);
    expect(calls).toBe(3);
  });

  it('a non-boolean answer rejects the execution with a TypeError naming retryOn', async () => {
    const backoff = new Backoff({ maxTries: 3, retryOn: (() => 'yes') as never });
    await expect(backoff.execute(async () => Promise.reject(new Error('x')))).rejects.toThrow(
      /'retryOn' must return a boolean/,
    );
  });
});

describe('async predicates', () => {
  it('an async giveup is awaited: false retries, true stops (a promise is not read as "true")', async () => {
    const giveup = vi.fn(async (error: unknown) => (error as Error).message === 'fatal');
    const backoff = new Backoff({ retryAll: true, giveup, pause: 10 });
    let calls = 0;
    const result = track(
      backoff.execute(async () => {
        calls++;
        throw new Error(calls < 3 ? 'again' : 'fatal');
      }),
    );
    await t.clock.tickAsync(100);
    expect((result.error as Error).message).toBe('fatal');
    expect(calls).toBe(3);
    expect(giveup).toHaveBeenCalledTimes(3);
  });

  it('an async retryIf is awaited for every result', async () => {
    const backoff = new Backoff({
      retryIf: async (status: string) => status === 'running',
      pause: 5,
      maxTries: 5,
    });
    const states = ['running', 'running', 'done'];
    const result = track(backoff.execute(async () => states.shift()!));
    await t.clock.tickAsync(50);
    expect(result.value).toBe('done');
    expect(backoff.statistics.attempts).toBe(3);
  });

  it('an async policy is awaited: its abandon ends the execution, its delay replaces the pause', async () => {
    const backoff = new Backoff({
      retryAll: true,
      policy: async (fails) => (fails >= 3 ? { abandon: true } : { abandon: false, delay: 20 }),
    });
    const starts: number[] = [];
    const result = track(
      backoff.execute(async () => {
        starts.push(performance.now());
        throw new TransientError(`#${starts.length}`);
      }),
    );
    await t.clock.tickAsync(100);
    expect(starts).toEqual([0, 20, 40]);
    expect((result.error as Error).message).toBe('#3');
  });

  it('a pending predicate does not hold the execution past its deadline, nor past a signal', async () => {
    const stuck = new Backoff({ retryAll: true, deadline: 50, giveup: () => hang() });
    const failure = new TransientError('first');
    const byDeadline = track(stuck.execute(() => Promise.reject(failure)));
    const controller = new AbortController();
    const waiting = new Backoff({ retryIf: () => hang<boolean>() }).withSignal(controller.signal);
    const bySignal = track(waiting.execute(async () => 'result'));
    await t.clock.tickAsync(10);
    controller.abort('cancelled');
    await t.clock.tickAsync(40);
    expect(byDeadline.error).toBe(failure);
    expect(byDeadline.at).toBe(50);
    expect(bySignal.error).toBe('cancelled');
    expect(bySignal.at).toBe(10);
  });

  it('a rejected predicate rejects the execution with its error', async () => {
    const boom = new Error('predicate failed');
    const backoff = new Backoff({ retryAll: true, giveup: () => Promise.reject(boom) });
    await expect(backoff.execute(() => Promise.reject(new Error('x')))).rejects.toBe(boom);
  });

  it('answers that arrive after the execution ended are ignored', async () => {
    const backoff = new Backoff({
      deadline: 20,
      retryIf: () => sleep(50).then(() => true),
      returnLastResult: false,
    });
    const result = track(backoff.execute(async () => 'r'));
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    expect(backoff.statistics.attempts).toBe(1);
  });

  it('a synchronous predicate adds no turn: the retry after it starts in the same microtask run', async () => {
    const backoff = new Backoff({ retryIf: (n: number) => n < 2 });
    let n = 0;
    const promise = backoff.execute(() => ++n);
    await expect(promise).resolves.toBe(2);
    expect(t.clock.now).toBe(0);
  });

  it('a retryIf that still holds at the end rejects with RetryConditionError, async or not', async () => {
    const backoff = new Backoff({ retryIf: async () => true, maxTries: 2 });
    await expect(
      settle(
        t.clock,
        backoff.execute(async () => 'x'),
      ),
    ).rejects.toBeInstanceOf(RetryConditionError);
  });
});
