/**
 * One attempt store per process: the ESM build, the CJS build and the CLI bundle are separate
 * copies of the code, and an attempt started by one must be visible to the others. Here a second
 * copy of the source is loaded as a separate module instance.
 */
import { describe, expect, it, vi } from 'vitest';
import * as first from '../src/index.js';
import { track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

async function secondCopy(): Promise<typeof first> {
  // With the module registry reset, the loader evaluates every file again: a copy of its own.
  vi.resetModules();
  return (await import('../src/index.js')) as typeof first;
}

describe('the attempt store is shared by every copy of the package', () => {
  it('is one AsyncLocalStorage on globalThis under a versioned Symbol.for key', async () => {
    const key = Symbol.for('asyncbackoff.attemptStorage.v1');
    expect((globalThis as Record<symbol, unknown>)[key]).toBeDefined();
    const other = await secondCopy();
    expect(other.currentAttempt).not.toBe(first.currentAttempt);
  });

  it('currentAttempt() in another copy sees this copy’s attempt, after awaits too', async () => {
    const other = await secondCopy();
    const backoff = new first.Backoff({ attemptTimeout: 100 });
    const seen = await backoff.execute(async () => {
      await Promise.resolve();
      return [first.currentAttempt(), other.currentAttempt()];
    });
    expect(seen[0]).toBeDefined();
    expect(seen[1]).toBe(seen[0]);
  });

  it('an execution of another copy inherits the enclosing attempt’s bound and cancellation', async () => {
    const other = await secondCopy();
    const outer = new first.Backoff({ attemptTimeout: 50, maxTries: 1 });
    const inner = new other.Backoff({ retryAll: true, pause: 10 });
    let innerSignal: AbortSignal | undefined;
    let innerRemaining = Number.NaN;
    const result = track(
      outer.execute(() =>
        inner.execute(() => {
          innerSignal = other.currentAttempt()!.signal;
          innerRemaining = other.currentAttempt()!.remaining;
          return new Promise(() => {});
        }),
      ),
    );
    await t.clock.tickAsync(50);
    expect(innerRemaining).toBe(50);
    expect(result.error).toBeInstanceOf(first.AttemptTimeoutError);
    expect(innerSignal!.aborted).toBe(true);
    expect(innerSignal!.reason).toBe(result.error);
  });
});
