/** serverTimeout(): the current attempt's remaining time as an integer a server can be given. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  Backoff,
  currentAttempt,
  MAX_SERVER_TIMEOUT,
  serverTimeout,
} from '../src/index.js';
import { type InstalledClock, installFakeClock } from './support/clock.js';

let clock: InstalledClock;
beforeEach(() => {
  clock = installFakeClock();
});
afterEach(() => {
  clock.uninstall();
});

describe('serverTimeout', () => {
  it('is the maximum outside any attempt and in an unbounded one', async () => {
    expect(MAX_SERVER_TIMEOUT).toBe(2_147_483_647);
    expect(serverTimeout()).toBe(MAX_SERVER_TIMEOUT);
    expect(serverTimeout({ max: 30_000 })).toBe(30_000);
    const unbounded = new Backoff({ maxTries: 1 });
    await expect(unbounded.execute(async () => serverTimeout())).resolves.toBe(MAX_SERVER_TIMEOUT);
    await expect(unbounded.execute(async () => serverTimeout({ max: 5 }))).resolves.toBe(5);
  });

  it('is the remaining time rounded down, never above max', async () => {
    const backoff = new Backoff({ attemptTimeout: 200, deadline: 1_000 });
    const seen: number[] = [];
    const run = backoff.execute(async () => {
      seen.push(serverTimeout(), serverTimeout({ max: 50 }));
      await new Promise((resolve) => setTimeout(resolve, 120));
      clock.tick(0.4); // 79.6 ms left
      seen.push(serverTimeout(), currentAttempt()!.remaining);
    });
    await clock.tickAsync(200);
    await run;
    expect(seen[0]).toBe(200);
    expect(seen[1]).toBe(50);
    expect(seen[2]).toBe(79);
    expect(seen[3]).toBeCloseTo(79.6, 5);
  });

  it('is 1, never 0, when less than a millisecond is left and the signal has not aborted yet', async () => {
    const backoff = new Backoff({ attemptTimeout: 100 });
    const run = backoff.execute(async () => {
      clock.tick(99.5); // the attempt's timer (due at 100) has not run
      return [currentAttempt()!.remaining, currentAttempt()!.signal.aborted, serverTimeout()];
    });
    await expect(run).resolves.toEqual([0.5, false, 1]);
  });

  it('throws the abort reason once the attempt has aborted', async () => {
    const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    let thrown: unknown;
    const run = backoff.execute(async () => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      try {
        serverTimeout();
      } catch (error) {
        thrown = error;
      }
    });
    const outcome = run.catch((error: unknown) => error);
    await clock.tickAsync(150);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    expect(thrown).toBeInstanceOf(AttemptTimeoutError);
    expect(thrown).toBe(await outcome);
  });

  it('follows the deadline when it is nearer than the attempt timeout', async () => {
    const backoff = new Backoff({ attemptTimeout: 500, deadline: 300, pause: 250, retryAll: true });
    const seen: number[] = [];
    const run = backoff.execute(async () => {
      seen.push(serverTimeout());
      if (seen.length === 1) throw new Error('again');
    });
    await clock.tickAsync(300);
    await run;
    expect(seen).toEqual([300, 50]);
  });

  it.each([
    [
      { max: 0 },
      RangeError,
      /serverTimeout: 'max' must be an integer >= 1 and <= 2147483647, got 0/,
    ],
    [{ max: 1.5 }, RangeError, /got 1.5/],
    [{ max: 2 ** 31 }, RangeError, /got 2147483648/],
    [{ max: Number.POSITIVE_INFINITY }, RangeError, /got Infinity/],
    [
      { max: '10' },
      TypeError,
      /serverTimeout: 'max' must be an integer >= 1 and <= 2147483647, got '10'/,
    ],
    [{ limit: 10 }, TypeError, /serverTimeout: unknown option 'limit'/],
    [null, TypeError, /serverTimeout: options must be an object, got null/],
  ])('rejects %o', (options, type, message) => {
    expect(() => serverTimeout(options as never)).toThrow(type);
    expect(() => serverTimeout(options as never)).toThrow(message);
  });
});
