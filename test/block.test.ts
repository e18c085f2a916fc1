/**
 * The code-block form: `for await (const attempt of backoff.attempts()) { ... }`, aomaker's
 * `for attempt in AoMakerRetry(counts=3, interval=2, exception_type=TypeError): with attempt:`
 * translated, and the guarantees against misuse (a forgotten report, a bare break).
 */
import { describe, expect, it, vi } from 'vitest';
import {
  AttemptTimeoutError,
  Backoff,
  type BlockAttempt,
  DeadlineExceededError,
  type RetryEvent,
} from '../src/index.js';
import { now, stats, TransientError, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

describe("aomaker's AoMakerRetry(counts=3, interval=2, exception_type=TypeError), translated", () => {
  /**
   * def demo():
   *     print('start')
   *     for attempt in AoMakerRetry(counts=3, interval=2, exception_type=TypeError):
   *         with attempt:
   *             print('running...')
   *             random_ = get_random_num()
   *             if random_ == 6:
   *                 raise TypeError
   *     print('end')
   */
  function demo(numbers: number[]) {
    const log: string[] = [];
    const starts: number[] = [];
    const thrown: TypeError[] = [];
    const getRandomNum = () => numbers[Math.min(starts.length, numbers.length) - 1]!;
    const backoff = new Backoff({ maxTries: 3, pause: 2000, exceptions: [TypeError] });
    const run = async () => {
      log.push('start');
      for await (const attempt of backoff.attempts()) {
        try {
          starts.push(now());
          log.push('running...');
          const random = getRandomNum();
          if (random === 6) {
            const error = new TypeError(`got 6 (attempt ${attempt.attempt})`);
            thrown.push(error);
            throw error;
          }
          attempt.succeed();
        } catch (error) {
          attempt.fail(error);
        }
      }
      log.push('end');
    };
    return { run, log, starts, thrown, backoff };
  }

  it('always 6: runs 3 times, 2 s apart, then the last TypeError leaves the loop', async () => {
    const { clock } = t;
    const d = demo([6]);
    const result = track(d.run());
    await clock.tickAsync(10_000);
    expect(d.starts).toEqual([0, 2000, 4000]);
    expect(d.log).toEqual(['start', 'running...', 'running...', 'running...']);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(d.thrown[2]);
    expect(result.at).toBe(4000);
    expect(d.backoff.statistics).toEqual(
      stats({ attempts: 3, done: 3, errors: 3, retries: 2, giveUps: 1, sleptTime: 4000 }),
    );
  });

  it('6, 6, then 1: succeeds on the third pass and the loop ends', async () => {
    const { clock } = t;
    const d = demo([6, 6, 1]);
    const result = track(d.run());
    await clock.tickAsync(10_000);
    expect(result.status).toBe('fulfilled');
    expect(d.starts).toEqual([0, 2000, 4000]);
    expect(d.log).toEqual(['start', 'running...', 'running...', 'running...', 'end']);
    expect(d.backoff.statistics).toEqual(
      stats({ attempts: 3, done: 3, errors: 2, retries: 2, successes: 1, sleptTime: 4000 }),
    );
  });
});

describe('attempts(): outcomes', () => {
  it('numbers the attempts and reports remaining time', async () => {
    const { clock } = t;
    const seen: [number, number][] = [];
    const backoff = new Backoff({ exceptions: [TransientError], pause: 100, deadline: 1000 });
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        seen.push([attempt.attempt, attempt.remaining]);
        if (attempt.attempt < 3) attempt.fail(new TransientError('again'));
        else attempt.succeed();
      }
    };
    const result = track(run());
    await clock.tickAsync(1000);
    expect(result.status).toBe('fulfilled');
    expect(seen).toEqual([
      [1, 1000],
      [2, 900],
      [3, 800],
    ]);
  });

  it('a non-retriable error is thrown out of the loop at once (identity)', async () => {
    const { clock } = t;
    const fatal = new RangeError('bad input');
    let passes = 0;
    const backoff = new Backoff({ exceptions: [TypeError], pause: 100, maxTries: 5 });
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        passes++;
        attempt.fail(fatal);
      }
    };
    const result = track(run());
    await clock.tickAsync(1000);
    expect(result.error).toBe(fatal);
    expect(result.at).toBe(0);
    expect(passes).toBe(1);
  });

  it('maxTries exhausted: the last error is thrown', async () => {
    const { clock } = t;
    const errors: TransientError[] = [];
    const backoff = new Backoff({ exceptions: [TransientError], pause: 10, maxTries: 4 });
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        const error = new TransientError(`#${attempt.attempt}`);
        errors.push(error);
        attempt.fail(error);
      }
    };
    const result = track(run());
    await clock.tickAsync(1000);
    expect(errors).toHaveLength(4);
    expect(result.error).toBe(errors[3]);
    expect(result.at).toBe(30);
  });

  it('hooks run for the block form too', async () => {
    const { clock } = t;
    const events: RetryEvent[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 10,
      onRetry: (event) => {
        events.push(event);
      },
    });
    const error = new TransientError('x');
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        if (attempt.attempt === 1) attempt.fail(error);
        else attempt.succeed();
      }
    };
    track(run());
    await clock.tickAsync(100);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ attempt: 1, kind: 'error', delay: 10 });
    expect(events[0]!.error).toBe(error);
  });
});

describe('attempts(): misuse surfaces instead of looping or vanishing', () => {
  it('an attempt that is never reported: TypeError at the next iteration, no further attempt', async () => {
    const { clock } = t;
    let passes = 0;
    const backoff = new Backoff({ retryAll: true, pause: 10, maxTries: 5, deadline: 1000 });
    const run = async () => {
      for await (const _attempt of backoff.attempts()) {
        passes++;
      }
    };
    const result = track(run());
    await clock.tickAsync(1000);
    expect(result.error).toBeInstanceOf(TypeError);
    expect((result.error as Error).message).toMatch(/succeed\(\)|fail\(/);
    expect(passes).toBe(1);
    await clock.tickAsync(1);
    expect(clock.countTimers()).toBe(0);
  });

  it('break without a report: TypeError', async () => {
    const { clock } = t;
    let passes = 0;
    const backoff = new Backoff({ retryAll: true, pause: 10, deadline: 1000 });
    const run = async () => {
      for await (const _attempt of backoff.attempts()) {
        passes++;
        break;
      }
    };
    const result = track(run());
    await clock.tickAsync(10);
    expect(result.error).toBeInstanceOf(TypeError);
    expect(passes).toBe(1);
    await clock.tickAsync(1);
    expect(clock.countTimers()).toBe(0);
  });

  it('break after fail(e): e is thrown even though it is retriable', async () => {
    const { clock } = t;
    const error = new TransientError('stop here');
    const backoff = new Backoff({ exceptions: [TransientError], pause: 10, maxTries: 5 });
    let passes = 0;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        passes++;
        attempt.fail(error);
        break;
      }
    };
    const result = track(run());
    await clock.tickAsync(100);
    expect(result.error).toBe(error);
    expect(passes).toBe(1);
  });

  it('break after succeed(): the loop ends normally', async () => {
    const { clock } = t;
    const backoff = new Backoff({ retryAll: true });
    let after = false;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        attempt.succeed();
        break;
      }
      after = true;
    };
    const result = track(run());
    await clock.tickAsync(0);
    expect(result.status).toBe('fulfilled');
    expect(after).toBe(true);
    expect(backoff.statistics).toEqual(stats({ attempts: 1, done: 1, successes: 1 }));
  });

  it('reporting twice throws a TypeError from the second report', async () => {
    const { clock } = t;
    const backoff = new Backoff({ retryAll: true });
    let second: unknown;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        attempt.succeed();
        try {
          attempt.fail(new Error('late'));
        } catch (error) {
          second = error;
        }
      }
    };
    const result = track(run());
    await clock.tickAsync(0);
    expect(result.status).toBe('fulfilled');
    expect(second).toBeInstanceOf(TypeError);
  });

  it('an uncaught throw in the body propagates unchanged and the execution is cleaned up', async () => {
    const { clock } = t;
    const bug = new Error('bug in the body');
    const controller = new AbortController();
    const backoff = new Backoff({
      retryAll: true,
      pause: 10,
      attemptTimeout: 500,
      deadline: 5000,
      signal: controller.signal,
    });
    let passes = 0;
    let signal: AbortSignal | undefined;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        passes++;
        signal = attempt.signal;
        await wait(20, attempt.signal);
        throw bug;
      }
    };
    const result = track(run());
    await clock.tickAsync(20);
    expect(result.error).toBe(bug);
    expect(result.at).toBe(20);
    await clock.tickAsync(1);
    expect(clock.countTimers()).toBe(0);
    await clock.tickAsync(10_000);
    expect(passes).toBe(1);
    // Aborting the instance signal later reaches no execution.
    controller.abort(new Error('late'));
    expect(signal!.aborted).toBe(false);
    expect(backoff.statistics).toMatchObject({ attempts: 1, done: 1, cancels: 0 });
  });
});

describe('attempts(): timeouts, deadline, cancellation', () => {
  it('an attempt timeout aborts attempt.signal with AttemptTimeoutError; reported, it is retried', async () => {
    const { clock } = t;
    const reasons: unknown[] = [];
    const starts: number[] = [];
    const backoff = new Backoff({ attemptTimeout: 100, pause: 50, maxTries: 3 });
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        starts.push(now());
        try {
          await wait(attempt.attempt === 1 ? 1000 : 10, attempt.signal);
          attempt.succeed();
        } catch (error) {
          reasons.push(error);
          attempt.fail(error);
        }
      }
    };
    const result = track(run());
    await clock.tickAsync(1000);
    expect(result.status).toBe('fulfilled');
    expect(starts).toEqual([0, 150]);
    expect(reasons).toHaveLength(1);
    const reason = reasons[0] as AttemptTimeoutError;
    expect(reason).toBeInstanceOf(AttemptTimeoutError);
    expect(reason.attempt).toBe(1);
    expect(reason.timeout).toBe(100);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 2,
        done: 2,
        errors: 1,
        timeouts: 1,
        retries: 1,
        successes: 1,
        sleptTime: 50,
        sumTime: 110,
      }),
    );
  });

  it('every attempt timing out: the last AttemptTimeoutError leaves the loop', async () => {
    const { clock } = t;
    let last: BlockAttempt | undefined;
    const backoff = new Backoff({ attemptTimeout: 100, pause: 50, maxTries: 2 });
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        last = attempt;
        try {
          await wait(1000, attempt.signal);
          attempt.succeed();
        } catch (error) {
          attempt.fail(error);
        }
      }
    };
    const result = track(run());
    await clock.tickAsync(1000);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(result.error).toBe(last!.signal.reason);
    expect(result.at).toBe(250);
  });

  it('the deadline during the body: attempt.signal aborts with DeadlineExceededError, which leaves the loop', async () => {
    const { clock } = t;
    const backoff = new Backoff({ retryAll: true, pause: 50, deadline: 500 });
    let passes = 0;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        passes++;
        try {
          await wait(10_000, attempt.signal);
          attempt.succeed();
        } catch (error) {
          attempt.fail(error);
        }
      }
    };
    const result = track(run());
    await clock.tickAsync(499);
    expect(result.status).toBe('pending');
    await clock.tickAsync(1);
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    expect(result.at).toBe(500);
    expect(passes).toBe(1);
  });

  it('the deadline during the body after a failure: the last failed attempt’s error leaves the loop', async () => {
    const { clock } = t;
    const first = new TransientError('first');
    const backoff = new Backoff({ exceptions: [TransientError], pause: 50, deadline: 500 });
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        try {
          if (attempt.attempt === 1) throw first;
          await wait(10_000, attempt.signal);
          attempt.succeed();
        } catch (error) {
          attempt.fail(error);
        }
      }
    };
    const result = track(run());
    await clock.tickAsync(500);
    expect(result.error).toBe(first);
    expect(result.at).toBe(500);
    expect(backoff.statistics).toMatchObject({ attempts: 2, done: 2, errors: 1, cancels: 1 });
  });

  it('the deadline while a timed-out body has not reported yet: the attempt timeout leaves the loop', async () => {
    // Rule 2: an attempt had failed (it timed out at 100), so the deadline (150) rejects with its
    // error, not with a DeadlineExceededError, although the body ignores its signal until 200.
    const { clock } = t;
    const backoff = new Backoff({ attemptTimeout: 100, deadline: 150, retryAll: true });
    let timedOut: unknown;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        await new Promise((resolve) => setTimeout(resolve, 200)); // ignores its signal
        timedOut = attempt.signal.reason;
        attempt.fail(new Error('reported late'));
      }
    };
    const result = track(run());
    await clock.tickAsync(300);
    expect(timedOut).toBeInstanceOf(AttemptTimeoutError);
    expect(result.error).toBe(timedOut);
    expect(backoff.statistics).toMatchObject({ attempts: 1, timeouts: 1 });
  });

  it('cancellation via the instance signal during the pause: the loop throws the reason', async () => {
    const { clock } = t;
    const controller = new AbortController();
    const backoff = new Backoff({ retryAll: true, pause: 1000, signal: controller.signal });
    let passes = 0;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        passes++;
        attempt.fail(new Error('down'));
      }
    };
    const result = track(run());
    await clock.tickAsync(300);
    expect(result.status).toBe('pending');
    const reason = new Error('shutdown');
    controller.abort(reason);
    await clock.tickAsync(0);
    expect(result.error).toBe(reason);
    expect(result.at).toBe(300);
    await clock.tickAsync(5000);
    expect(passes).toBe(1);
    expect(clock.countTimers()).toBe(0);
  });

  it('cancellation during the body: attempt.signal aborts with the reason, which leaves the loop', async () => {
    const { clock } = t;
    const controller = new AbortController();
    const backoff = new Backoff({ retryAll: true, pause: 10 });
    const run = async () => {
      for await (const attempt of backoff.withSignal(controller.signal).attempts()) {
        try {
          await wait(10_000, attempt.signal);
          attempt.succeed();
        } catch (error) {
          attempt.fail(error);
        }
      }
    };
    const result = track(run());
    await clock.tickAsync(100);
    const reason = new Error('client went away');
    controller.abort(reason);
    await clock.tickAsync(0);
    expect(result.error).toBe(reason);
    expect(result.at).toBe(100);
    expect(backoff.statistics).toMatchObject({ attempts: 1, cancels: 1, giveUps: 0 });
  });

  it('an already aborted signal: the loop throws the reason before the body runs', async () => {
    const { clock } = t;
    const reason = new Error('already down');
    const backoff = new Backoff({ retryAll: true, signal: AbortSignal.abort(reason) });
    let passes = 0;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        passes++;
        attempt.succeed();
      }
    };
    const result = track(run());
    await clock.tickAsync(0);
    expect(result.error).toBe(reason);
    expect(passes).toBe(0);
  });
});

describe('attempt.succeed(value) feeds retryIf', () => {
  it('retries while retryIf holds for the reported value, as aomaker’s retry_condition does', async () => {
    const backoff = new Backoff({
      retryIf: (response: { ret_code: number }) => response.ret_code !== 0,
      pause: 10,
      maxTries: 5,
    });
    const codes = [1, 1, 0];
    const seen: number[] = [];
    const done = (async () => {
      for await (const attempt of backoff.attempts()) {
        const response = { ret_code: codes[attempt.attempt - 1]! };
        seen.push(response.ret_code);
        attempt.succeed(response);
      }
    })();
    await t.clock.tickAsync(100);
    await done;
    expect(seen).toEqual([1, 1, 0]);
    expect(backoff.statistics).toMatchObject({ attempts: 3, errors: 2, successes: 1 });
  });

  it('without a value retryIf sees undefined, as before; tries running out reject with RetryConditionError', async () => {
    const backoff = new Backoff({ retryIf: (r: unknown) => r === undefined, maxTries: 2 });
    const loop = (async () => {
      for await (const attempt of backoff.attempts()) attempt.succeed();
    })();
    const outcome = track(loop);
    await t.clock.tickAsync(10);
    expect((outcome.error as Error).name).toBe('RetryConditionError');
  });

  it('leaving the loop with break after a value retryIf rejects is a RetryConditionError', async () => {
    const backoff = new Backoff({ retryIf: (r: number) => r < 10, maxTries: 5 });
    const loop = (async () => {
      for await (const attempt of backoff.attempts()) {
        attempt.succeed(attempt.attempt);
        break;
      }
    })();
    const outcome = track(loop);
    await t.clock.tickAsync(10);
    expect((outcome.error as Error).name).toBe('RetryConditionError');
  });
});

describe('attempts(): leaving the loop waits for the verdict', () => {
  it('break right after succeed() waits for an async onSuccess hook before the loop ends', async () => {
    let hookDone = false;
    const backoff = new Backoff({
      onSuccess: async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        hookDone = true;
      },
    });
    const loop = (async () => {
      for await (const attempt of backoff.attempts()) {
        attempt.succeed('value');
        break;
      }
      return hookDone;
    })();
    const outcome = track(loop);
    await t.clock.tickAsync(49);
    expect(outcome.status).toBe('pending');
    await t.clock.tickAsync(1);
    expect(outcome.value).toBe(true);
    expect(outcome.at).toBe(50);
  });

  it('break after succeed(value) that an async retryIf rejects: RetryConditionError, no further attempt', async () => {
    let passes = 0;
    const backoff = new Backoff({
      retryIf: async (value: unknown) => value === 'not yet',
      maxTries: 5,
    });
    const loop = (async () => {
      for await (const attempt of backoff.attempts()) {
        passes++;
        attempt.succeed('not yet');
        break;
      }
    })();
    const outcome = track(loop);
    await t.clock.tickAsync(10);
    expect((outcome.error as Error).name).toBe('RetryConditionError');
    expect(passes).toBe(1);
    expect(backoff.statistics.attempts).toBe(1);
  });

  it('break after the attempt timed out without a report: the AttemptTimeoutError leaves the loop', async () => {
    const backoff = new Backoff({ attemptTimeout: 20, maxTries: 5 });
    const loop = (async () => {
      for await (const attempt of backoff.attempts()) {
        await wait(30, attempt.signal).catch(() => {});
        break;
      }
    })();
    const outcome = track(loop);
    await t.clock.tickAsync(30);
    expect(outcome.error).toBeInstanceOf(AttemptTimeoutError);
    expect(backoff.statistics).toMatchObject({ attempts: 1, timeouts: 1, giveUps: 1 });
  });
});

describe('attempts(): the iterator used by hand', () => {
  it('return() before the first next() ends it without an attempt', async () => {
    const backoff = new Backoff({ retryAll: true });
    const iterator = backoff.attempts()[Symbol.asyncIterator]();
    await expect(iterator.return!()).resolves.toEqual({ value: undefined, done: true });
    expect(backoff.statistics.attempts).toBe(0);
  });

  it('once the loop succeeded, next() and return() keep answering done', async () => {
    const backoff = new Backoff({ retryAll: true });
    const iterator = backoff.attempts()[Symbol.asyncIterator]();
    const first = await iterator.next();
    (first.value as BlockAttempt).succeed();
    await expect(iterator.next()).resolves.toEqual({ value: undefined, done: true });
    await expect(iterator.next()).resolves.toEqual({ value: undefined, done: true });
    await expect(iterator.return!()).resolves.toEqual({ value: undefined, done: true });
    expect(backoff.statistics).toMatchObject({ attempts: 1, successes: 1 });
  });

  it('once next() rejected for a missing report, it stays ended: a late succeed() changes nothing', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 5 });
    const iterator = backoff.attempts()[Symbol.asyncIterator]();
    const attempt = (await iterator.next()).value as BlockAttempt;
    const error = await iterator.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    attempt.succeed();
    await expect(iterator.next()).rejects.toBe(error);
    await expect(iterator.return!()).rejects.toBe(error);
    expect(backoff.statistics).toMatchObject({ attempts: 1, successes: 0, giveUps: 1 });
  });

  it('once return() threw for a missing report, it stays ended: a late succeed() changes nothing', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 5 });
    const iterator = backoff.attempts()[Symbol.asyncIterator]();
    const attempt = (await iterator.next()).value as BlockAttempt;
    const error = await iterator.return!().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    attempt.succeed();
    await expect(iterator.return!()).rejects.toBe(error);
    await expect(iterator.next()).rejects.toBe(error);
    expect(backoff.statistics).toMatchObject({ attempts: 1, successes: 0, giveUps: 1 });
  });
});

describe('attempts(): details the other tests leave open', () => {
  it('a freshly imported module runs a plain loop to its end', async () => {
    vi.resetModules();
    const fresh = await import('../src/index.js');
    const backoff = new fresh.Backoff({ retryAll: true });
    let passes = 0;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        passes++;
        attempt.succeed('done');
      }
    };
    const result = track(run());
    await t.clock.tickAsync(0);
    expect(result.status).toBe('fulfilled');
    expect(passes).toBe(1);
    expect(backoff.statistics).toMatchObject({ attempts: 1, successes: 1 });
  });

  it('reporting twice: the message names the second call and the first outcome', async () => {
    const backoff = new Backoff({ retryAll: true });
    const messages: string[] = [];
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        if (attempt.attempt === 1) {
          attempt.fail(new Error('first'));
          try {
            attempt.fail(new Error('again'));
          } catch (error) {
            messages.push((error as Error).message);
          }
        } else {
          attempt.succeed();
          try {
            attempt.succeed();
          } catch (error) {
            messages.push((error as Error).message);
          }
        }
      }
    };
    const result = track(run());
    await t.clock.tickAsync(0);
    expect(result.status).toBe('fulfilled');
    expect(messages).toEqual([
      'attempts(): fail() called on attempt 1, which was already reported (error)',
      'attempts(): succeed() called on attempt 2, which was already reported (success)',
    ]);
  });

  it('break without a report: the message names the attempt', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 3 });
    const run = async () => {
      for await (const _attempt of backoff.attempts()) break;
    };
    const result = track(run());
    await t.clock.tickAsync(0);
    expect(result.error).toBeInstanceOf(TypeError);
    expect((result.error as Error).message).toBe(
      'attempts(): the loop was left during attempt 1 without attempt.succeed() or attempt.fail(error)',
    );
  });

  it('cancelled during an unreported body, the next iteration throws the reason, not a TypeError', async () => {
    const controller = new AbortController();
    const backoff = new Backoff({ retryAll: true, pause: 10 });
    const run = async () => {
      for await (const attempt of backoff.withSignal(controller.signal).attempts()) {
        await wait(10_000, attempt.signal).catch(() => {});
      }
    };
    const result = track(run());
    await t.clock.tickAsync(100);
    const reason = new Error('client went away');
    controller.abort(reason);
    await t.clock.tickAsync(0);
    expect(result.error).toBe(reason);
    expect(backoff.statistics).toMatchObject({ attempts: 1, cancels: 1 });
  });

  it('cancelled during an unreported body, break throws the reason, not a TypeError', async () => {
    const controller = new AbortController();
    const backoff = new Backoff({ retryAll: true, pause: 10 });
    const run = async () => {
      for await (const attempt of backoff.withSignal(controller.signal).attempts()) {
        await wait(10_000, attempt.signal).catch(() => {});
        break;
      }
    };
    const result = track(run());
    await t.clock.tickAsync(100);
    const reason = new Error('client went away');
    controller.abort(reason);
    await t.clock.tickAsync(0);
    expect(result.error).toBe(reason);
    expect(backoff.statistics).toMatchObject({ attempts: 1, cancels: 1 });
  });

  it('by hand: return() after succeed() answers exactly { value: undefined, done: true }', async () => {
    const backoff = new Backoff({ retryAll: true });
    const iterator = backoff.attempts()[Symbol.asyncIterator]();
    const attempt = (await iterator.next()).value as BlockAttempt;
    attempt.succeed('value');
    await expect(iterator.return!()).resolves.toStrictEqual({ value: undefined, done: true });
    expect(backoff.statistics).toMatchObject({ attempts: 1, successes: 1 });
  });

  it('by hand: a second next() while the breaker holds the first attempt waits for it too', async () => {
    let ready: (() => void) | undefined;
    let open = true;
    const breaker = {
      whenOpen: 'wait' as const,
      tryPass: () => (open ? undefined : {}),
      recordSuccess() {},
      recordFailure() {},
      release() {},
      retryAfter: () => 0,
      onReady(listener: () => void) {
        ready = listener;
        return () => {};
      },
    };
    const backoff = new Backoff({ retryAll: true, breaker: breaker as any });
    const iterator = backoff.attempts()[Symbol.asyncIterator]();
    void iterator.next();
    const second = track(iterator.next());
    await t.clock.tickAsync(0);
    expect(second.status).toBe('pending');
    open = false;
    ready!();
    await t.clock.tickAsync(0);
    expect(second.status).toBe('fulfilled');
    expect((second.value as IteratorResult<BlockAttempt>).value).toMatchObject({ attempt: 1 });
  });
});

describe('attempts(): the last attempt timing out while the body runs', () => {
  it('the loop still waits for the body to report: the verdict is not given without it', async () => {
    const { clock } = t;
    const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const late = new TransientError('reported late');
    let reportedAt = Number.NaN;
    let abortedAt = Number.NaN;
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        attempt.signal.addEventListener('abort', () => {
          abortedAt = now();
        });
        await new Promise((resolve) => setTimeout(resolve, 300)); // ignores its signal
        reportedAt = now();
        attempt.fail(late);
      }
    };
    const result = track(run());
    await clock.tickAsync(100);
    expect(abortedAt).toBe(100);
    expect(result.status).toBe('pending');
    expect(backoff.statistics).toMatchObject({ timeouts: 1, giveUps: 0 });
    await clock.tickAsync(200);
    expect(reportedAt).toBe(300);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(backoff.statistics).toMatchObject({ attempts: 1, timeouts: 1, giveUps: 1 });
  });
});
