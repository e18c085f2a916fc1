/**
 * The statistics counters, with exact values for scripted scenarios on a fake clock:
 * attempts, done, errors, cancels, sumTime, timeouts, retries, giveUps, sleptTime,
 * budgetRefusals, successes.
 */
import { describe, expect, it } from 'vitest';
import { Backoff, type RetryBudget } from '../src/index.js';
import {
  FatalError,
  hang,
  sleep,
  stats,
  TransientError,
  track,
  useFakeClock,
  ZERO_STATS,
} from './support/harness.js';

const t = useFakeClock();

const refusingBudget = (): RetryBudget => ({
  recordFailure() {},
  tryAcquire: () => false,
  recordSuccess() {},
});

describe('statistics: a scripted scenario', () => {
  it('counts every kind of outcome exactly', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      attemptTimeout: 100,
      deadline: 2000,
      pause: 50,
      exceptions: [TransientError],
      retryIf: (result: string) => result === 'run',
      maxTries: 5,
    });
    expect(backoff.statistics).toEqual(ZERO_STATS);

    // A: error (0-30), pause, timeout (80-180), pause, 'run' (230-250), pause, 'done' (300-310).
    let a = 0;
    const A = track(
      backoff.execute(async () => {
        a++;
        if (a === 1) {
          await sleep(30);
          throw new TransientError('a1');
        }
        if (a === 2) return hang<string>();
        if (a === 3) {
          await sleep(20);
          return 'run';
        }
        await sleep(10);
        return 'done';
      }),
    );
    await clock.tickAsync(310);
    expect(A.value).toBe('done');
    expect(A.at).toBe(310);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 4,
        done: 4,
        errors: 3,
        timeouts: 1,
        retries: 3,
        sleptTime: 150,
        sumTime: 160,
        successes: 1,
      }),
    );

    // B at 1000: a non-retriable error after 5 ms.
    await clock.tickAsync(690);
    const B = track(
      backoff.execute(async () => {
        await sleep(5);
        throw new FatalError('b');
      }),
    );
    await clock.tickAsync(5);
    expect(B.status).toBe('rejected');

    // C at 1100: cancelled 40 ms into its first attempt (a view: same statistics).
    await clock.tickAsync(95);
    const controller = new AbortController();
    const C = track(backoff.withSignal(controller.signal).execute(() => hang<string>()));
    await clock.tickAsync(40);
    controller.abort(new Error('cancelled'));
    await clock.tickAsync(0);
    expect(C.status).toBe('rejected');

    // D at 1140: every attempt times out; 5 tries: 1140-1240, 1290-1390, ..., 1740-1840.
    const D = track(backoff.execute(() => hang<string>()));
    await clock.tickAsync(700);
    expect(D.status).toBe('rejected');
    expect(D.at).toBe(1840);

    expect(backoff.statistics).toEqual(
      stats({
        attempts: 4 + 1 + 1 + 5,
        done: 4 + 1 + 1 + 5,
        errors: 3 + 1 + 0 + 5,
        cancels: 1,
        timeouts: 1 + 5,
        retries: 3 + 4,
        giveUps: 2,
        sleptTime: 150 + 200,
        sumTime: 160 + 5 + 40 + 500,
        successes: 1,
      }),
    );
    expect(backoff.withSignal(controller.signal).statistics).toEqual(backoff.statistics);
  });

  it('a deadline passing during an attempt: one cancel and one give-up', async () => {
    const { clock } = t;
    const backoff = new Backoff({ deadline: 250, pause: 50, retryAll: true });
    let calls = 0;
    const result = track(
      backoff.execute(async () => {
        if (++calls === 1) {
          await sleep(100);
          throw new Error('first');
        }
        return hang<string>();
      }),
    );
    await clock.tickAsync(250);
    expect(result.status).toBe('rejected');
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 2,
        done: 2,
        errors: 1,
        cancels: 1,
        retries: 1,
        giveUps: 1,
        sleptTime: 50,
        sumTime: 200,
      }),
    );
  });

  it('a retry refused by the budget: one budget refusal and one give-up', async () => {
    const { clock } = t;
    const backoff = new Backoff({ retryAll: true, pause: 50, budget: refusingBudget() });
    const result = track(backoff.execute(() => Promise.reject(new Error('x'))));
    await clock.tickAsync(100);
    expect(result.status).toBe('rejected');
    expect(backoff.statistics).toEqual(
      stats({ attempts: 1, done: 1, errors: 1, budgetRefusals: 1, giveUps: 1 }),
    );
  });

  it('a pause cancelled half-way is not counted in sleptTime', async () => {
    const { clock } = t;
    const controller = new AbortController();
    const backoff = new Backoff({ retryAll: true, pause: 1000, signal: controller.signal });
    track(backoff.execute(() => Promise.reject(new Error('x'))));
    await clock.tickAsync(300);
    controller.abort(new Error('stop'));
    await clock.tickAsync(0);
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, errors: 1, retries: 1 }));
  });

  it('the snapshot is frozen and does not change afterwards', async () => {
    const { clock } = t;
    const backoff = new Backoff({ retryAll: true });
    const before = backoff.statistics;
    expect(Object.isFrozen(before)).toBe(true);
    track(backoff.execute(async () => 1));
    await clock.tickAsync(0);
    expect(before).toEqual(ZERO_STATS);
    expect(backoff.statistics.successes).toBe(1);
  });
});

describe('statistics when a hook ends the execution', () => {
  const boom = new Error('hook failed');

  it('onGiveup throwing: the execution is counted as one give-up', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 2,
      onGiveup: () => {
        throw boom;
      },
    });
    const result = track(backoff.execute(() => Promise.reject(new TransientError('x'))));
    await clock.tickAsync(10);
    expect(result.error).toBe(boom);
    expect(backoff.statistics).toEqual(
      stats({ attempts: 2, done: 2, errors: 2, retries: 1, giveUps: 1 }),
    );
  });

  it('onSuccess throwing: the execution rejected, so it is a give-up, not a success', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      onSuccess: () => {
        throw boom;
      },
    });
    const result = track(backoff.execute(async () => 'ok'));
    await clock.tickAsync(10);
    expect(result.error).toBe(boom);
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, giveUps: 1, successes: 0 }));
  });

  it('onSuccess hanging past the deadline: resolved at the deadline, counted as a success', async () => {
    const { clock } = t;
    const backoff = new Backoff({ deadline: 500, onSuccess: () => hang() });
    const result = track(backoff.execute(async () => 'ok'));
    await clock.tickAsync(500);
    expect(result.value).toBe('ok');
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, successes: 1 }));
  });

  it('onRetry throwing: no retry followed, so none is counted', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 10,
      onRetry: () => {
        throw boom;
      },
    });
    const result = track(backoff.execute(() => Promise.reject(new TransientError('x'))));
    await clock.tickAsync(100);
    expect(result.error).toBe(boom);
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, errors: 1, giveUps: 1 }));
  });

  it('a slow onRetry leaving no time for the pause: no retry is counted', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 300,
      deadline: 1000,
      onRetry: () => sleep(800),
    });
    const result = track(backoff.execute(() => Promise.reject(new TransientError('x'))));
    await clock.tickAsync(1000);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(800);
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, errors: 1, giveUps: 1 }));
  });
});
