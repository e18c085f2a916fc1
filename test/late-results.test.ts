/**
 * onLateResult: what an abandoned attempt acquires after the execution moved on is handed back,
 * once, so it can be released; never the result the execution resolved with.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  AttemptTimeoutError,
  Backoff,
  DeadlineExceededError,
  type LateResultInfo,
} from '../src/index.js';
import { nextMacrotask } from './support/clock.js';
import { hang, sleep, stats, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

/** Resolves with `value` after `ms` fake milliseconds, whatever its signal says. */
const resolveAfter =
  <T>(ms: number, value: T) =>
  (): Promise<T> =>
    sleep(ms).then(() => value);

describe('onLateResult', () => {
  it('hands a timed-out attempt’s late value to onLateResult, once, with the attempt and the reason', async () => {
    const late: Array<[unknown, LateResultInfo]> = [];
    const backoff = new Backoff({
      attemptTimeout: 50,
      maxTries: 2,
      onLateResult: (value, info) => {
        late.push([value, info]);
      },
    });
    let calls = 0;
    const result = track(
      backoff.execute(() =>
        ++calls === 1 ? resolveAfter(80, 'lease-1')() : resolveAfter(10, 'lease-2')(),
      ),
    );
    await t.clock.tickAsync(60);
    expect(result.value).toBe('lease-2'); // attempt 2 won at 60
    expect(late).toEqual([]);
    await t.clock.tickAsync(20); // attempt 1 fulfils at 80
    expect(late).toHaveLength(1);
    const [value, info] = late[0]!;
    expect(value).toBe('lease-1');
    expect(info.attempt).toBe(1);
    expect(info.reason).toBeInstanceOf(AttemptTimeoutError);
    expect(Object.isFrozen(info)).toBe(true);
    await t.clock.tickAsync(1000);
    expect(late).toHaveLength(1);
    expect(backoff.statistics).toEqual(
      stats({
        attempts: 2,
        done: 2,
        errors: 1,
        timeouts: 1,
        retries: 1,
        successes: 1,
        sumTime: 60,
        lateResults: 1,
      }),
    );
  });

  it('after the deadline the reason is the DeadlineExceededError; after a cancellation, the signal’s reason', async () => {
    const reasons: unknown[] = [];
    const onLateResult = (_: unknown, info: LateResultInfo) => {
      reasons.push(info.reason);
    };
    const timed = new Backoff({ deadline: 30, onLateResult });
    const first = track(timed.execute(resolveAfter(50, 'x')));
    const controller = new AbortController();
    const cancelled = new Backoff({ onLateResult }).withSignal(controller.signal);
    const second = track(cancelled.execute(resolveAfter(50, 'y')));
    await t.clock.tickAsync(10);
    controller.abort('shutdown');
    await t.clock.tickAsync(60);
    expect(first.error).toBeInstanceOf(DeadlineExceededError);
    expect(second.error).toBe('shutdown');
    expect(reasons).toHaveLength(2);
    expect(reasons).toContain('shutdown');
    expect(reasons.find((r) => r instanceof DeadlineExceededError)).toBe(first.error);
  });

  it('is never called for the result the execution resolved with, nor for late rejections', async () => {
    const onLateResult = vi.fn();
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 2, retryAll: true, onLateResult });
    let calls = 0;
    const result = track(
      backoff.execute(async () => {
        if (++calls === 1) {
          await sleep(70);
          throw new Error('late failure');
        }
        return 'ok';
      }),
    );
    await t.clock.tickAsync(100);
    expect(result.value).toBe('ok');
    expect(onLateResult).not.toHaveBeenCalled();
    expect(backoff.statistics.lateResults).toBe(0);
  });

  it('counts late results in statistics without a handler too', async () => {
    const backoff = new Backoff({ attemptTimeout: 10, maxTries: 1 });
    const result = track(backoff.execute(resolveAfter(20, 'x')));
    await t.clock.tickAsync(30);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(backoff.statistics.lateResults).toBe(1);
  });

  it('reports a throwing or rejecting handler as a process warning, never an unhandled rejection', async () => {
    const warnings: Array<{ code?: string; message: string }> = [];
    const onWarning = (warning: Error & { code?: string }) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      for (const onLateResult of [
        () => {
          throw new Error('release failed');
        },
        () => Promise.reject(new Error('release rejected')),
      ]) {
        const backoff = new Backoff({ attemptTimeout: 10, maxTries: 1, onLateResult });
        track(backoff.execute(resolveAfter(20, 'x')));
        await t.clock.tickAsync(30);
      }
      await nextMacrotask();
      await nextMacrotask();
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.code)).toEqual([
      'ASYNCBACKOFF_LATE_RESULT_FAILED',
      'ASYNCBACKOFF_LATE_RESULT_FAILED',
    ]);
    expect(warnings[0]!.message).toMatch(/release failed/);
    expect(warnings[1]!.message).toMatch(/release rejected/);
  });

  it('is validated: a non-function is a TypeError naming the option', () => {
    expect(() => new Backoff({ onLateResult: 'release' as never })).toThrow(
      /Backoff: 'onLateResult' must be a function, got 'release'/,
    );
  });

  it('sees the attempt that never settles as nothing: no call, no count', async () => {
    const onLateResult = vi.fn();
    const backoff = new Backoff({ attemptTimeout: 10, maxTries: 1, onLateResult });
    const result = track(backoff.execute(hang));
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(onLateResult).not.toHaveBeenCalled();
  });
});
