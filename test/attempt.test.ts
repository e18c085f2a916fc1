/**
 * The attempt (src/attempt.ts) as the executions nested in it see it: every execution started in
 * an attempt stops when it is aborted, and every one that left its verdict to it gets it back when
 * it answers instead.
 */
import { AttemptTimeoutError, Backoff } from 'asyncbackoff';
import { describe, expect, it } from 'vitest';
import { hang, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

/** Lets pending promise reactions run without moving the clock. */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('an attempt and the executions nested in it', () => {
  it("its timeout cancels every execution started in it, with the attempt's own AttemptTimeoutError", async () => {
    const outer = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const inner = new Backoff();
    const nested: ReturnType<typeof track<never>>[] = [];
    const outerResult = track(
      outer.execute(() => {
        nested.push(track(inner.execute(() => hang())), track(inner.execute(() => hang())));
        return hang();
      }),
    );
    await t.clock.tickAsync(50);
    expect(outerResult.error).toBeInstanceOf(AttemptTimeoutError);
    expect(nested.map((r) => r.error)).toEqual([outerResult.error, outerResult.error]);
    expect(inner.statistics).toMatchObject({ attempts: 2, cancels: 2 });
  });

  it('two executions that left their verdict to it both get it back when it answers instead', async () => {
    // On a late event loop (clock.jump): the inner queue's timer, armed first, runs 2 ms late and
    // judges at once; both inner attempts end with the outer bound and leave it to the outer's
    // timer, which runs 3 ms late and waits for the check phase, by when the outer has answered.
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const inner = new Backoff({ attemptTimeout: 101, maxTries: 1 });
    await inner.execute(async () => 'arms the inner timer for 101'); // then leaves it armed
    let answer!: (value: string) => void;
    const nested: ReturnType<typeof track<never>>[] = [];
    const outerResult = track(
      outer.execute(() => {
        nested.push(track(inner.execute(() => hang())), track(inner.execute(() => hang())));
        return new Promise<string>((resolve) => (answer = resolve));
      }),
    );
    t.clock.jump(103);
    expect(nested.map((r) => r.status)).toEqual(['pending', 'pending']);
    answer('done');
    await flushMicrotasks();
    expect(outerResult.value).toBe('done');
    for (const result of nested) {
      expect(result.error).toBeInstanceOf(AttemptTimeoutError);
      expect((result.error as AttemptTimeoutError).timeout).toBe(101);
    }
    expect(inner.statistics).toMatchObject({ timeouts: 2, cancels: 0 });
  });
});
