/**
 * The hand-off (src/handoff.ts): an inner attempt whose timeout comes due with an enclosing bound
 * leaves its verdict to the timer that enforces that bound, and gets it back, or settles on its
 * own, if the enclosing attempt answers first.
 */
import { AttemptTimeoutError, Backoff, DeadlineExceededError } from 'asyncbackoff';
import { describe, expect, it } from 'vitest';
import { hang, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

/** Lets pending promise reactions run without moving the clock. */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('an inner attempt that ends with its enclosing bound', () => {
  it("ending with the outer execution's deadline: it is cancelled with the outer DeadlineExceededError, not timed out", async () => {
    const outer = new Backoff({ deadline: 100 });
    const inner = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    // Armed first, the inner queue's timer runs before the outer deadline's, at the same instant.
    const stray = track(inner.execute(() => hang()));
    let nested!: ReturnType<typeof track<never>>;
    const outerResult = track(
      outer.execute(() => {
        nested = track(inner.execute(() => hang()));
        return hang();
      }),
    );
    await t.clock.tickAsync(100);
    expect(stray.error).toBeInstanceOf(AttemptTimeoutError);
    expect(outerResult.error).toBeInstanceOf(DeadlineExceededError);
    expect(nested.error).toBe(outerResult.error);
    expect(inner.statistics).toMatchObject({ timeouts: 1, cancels: 1 });
  });

  /**
   * On a late event loop (clock.jump): the inner queue's timer, armed first, runs 2 ms late and
   * leaves the verdict to the outer's, which runs 3 ms late and waits for the check phase. Both
   * answers arrived meanwhile and are read first: the inner's, then the outer's.
   */
  async function bothAnswerFirst(inner: Backoff) {
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    await inner.execute(async () => 'arms the inner timer for 101'); // then leaves it armed
    let answerInner!: (value: string) => void;
    let answerOuter!: (value: string) => void;
    let nested!: ReturnType<typeof track<string>>;
    const outerResult = track(
      outer.execute(() => {
        nested = track(inner.execute(() => new Promise<string>((r) => (answerInner = r))));
        return new Promise<string>((resolve) => (answerOuter = resolve));
      }),
    );
    t.clock.jump(103);
    expect(nested.status).toBe('pending');
    answerInner('inner done');
    answerOuter('outer done');
    await flushMicrotasks();
    expect(outerResult.value).toBe('outer done');
    return nested;
  }

  it('answering before the verdict came back: its answer stands', async () => {
    const inner = new Backoff({ attemptTimeout: 101, maxTries: 1 });
    const nested = await bothAnswerFirst(inner);
    expect(nested.value).toBe('inner done');
    expect(inner.statistics).toMatchObject({ timeouts: 0, successes: 2 });
  });

  it('answering before the verdict came back, with an onSuccess hook still running: its answer stands', async () => {
    let release!: () => void;
    const inner = new Backoff({
      attemptTimeout: 101,
      maxTries: 1,
      onSuccess: ({ result }) =>
        result === 'inner done' ? new Promise<void>((r) => (release = r)) : undefined,
    });
    const nested = await bothAnswerFirst(inner);
    expect(nested.status).toBe('pending'); // the hook runs; the verdict handed back changes nothing
    release();
    await flushMicrotasks();
    expect(nested.value).toBe('inner done');
    expect(inner.statistics).toMatchObject({ timeouts: 0, successes: 2 });
  });
});
