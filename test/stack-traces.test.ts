/**
 * Errors keep their identity (never wrapped) and, for retries that run on the plain async loop
 * (an unbounded policy with no callbacks between attempts), the caller's async frames: an error
 * thrown by the third attempt still shows who called execute().
 */
import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/index.js';

async function fails(): Promise<never> {
  await new Promise((resolve) => setImmediate(resolve));
  throw new Error('from a later attempt');
}

async function theCallerOfExecute(backoff: Backoff, fn: () => unknown = fails): Promise<unknown> {
  return await backoff.execute(fn);
}

/** Throws before any await: the attempt's error is made in the engine's own call stack. */
function throwsAtOnce(): never {
  throw new Error('from a later attempt');
}

/** Throws one microtask in, before the engine could attach anything to the attempt's promise. */
async function throwsAfterAwaitNull(): Promise<never> {
  await null;
  throw new Error('from a later attempt');
}

/** Rejects at once: a rejected promise made in the engine's own call stack. */
const rejectsAtOnce = (): Promise<never> => Promise.reject(new Error('from a later attempt'));

/** An async function that throws before any await. */
async function asyncThrowsAtOnce(): Promise<never> {
  throw new Error('from a later attempt');
}

/** Throws from a `then` callback one microtask in. */
const thenThrows = (): Promise<never> =>
  Promise.resolve().then(() => {
    throw new Error('from a later attempt');
  });

/**
 * Every shape an attempt fails in: at once, in the first microtask and later. Which of them shows
 * the caller depends on the microtask the retry starts in (one too early and some lose it).
 */
const SHAPES = [
  fails,
  throwsAtOnce,
  throwsAfterAwaitNull,
  rejectsAtOnce,
  asyncThrowsAtOnce,
  thenThrows,
] as const;

describe('stack traces after a retry', () => {
  it('an error from attempt 3 shows the caller’s async frame, and is the very object thrown', async () => {
    const backoff = new Backoff({ retryAll: true, maxTries: 3 });
    const thrown: unknown[] = [];
    const error = (await theCallerOfExecute(
      new Backoff({
        maxTries: 3,
        retryOn: (e) => {
          thrown.push(e);
          return true;
        },
      }),
    ).catch((e: unknown) => e)) as Error;
    expect(error.stack).toMatch(/at (async )?theCallerOfExecute/);
    expect(thrown).toHaveLength(3);
    expect(thrown.at(-1)).toBe(error);
    const again = (await theCallerOfExecute(backoff).catch((e: unknown) => e)) as Error;
    expect(again.message).toBe('from a later attempt');
    expect(again.stack).toMatch(/at (async )?theCallerOfExecute/);
  });

  it.each([
    ['an attempt timeout', { attemptTimeout: 1000 }],
    ['a deadline', { deadline: 5000 }],
    ['a hook between attempts', { onRetry: () => {} }],
    ['a signal', { signal: new AbortController().signal }],
  ] as const)('with %s, an error from a later attempt shows the caller too', async (_, extra) => {
    for (const fn of SHAPES)
      for (const pause of [0, 1])
        for (const maxTries of [2, 3]) {
          const backoff = new Backoff({ retryAll: true, maxTries, pause, ...extra });
          const error = (await theCallerOfExecute(backoff, fn).catch((e: unknown) => e)) as Error;
          expect(error.message).toBe('from a later attempt');
          expect(error.stack, `${fn.name}, pause ${pause}, maxTries ${maxTries}`).toMatch(
            /at (async )?theCallerOfExecute/,
          );
        }
  });

  it('without limits, a function that fails at once, one microtask in or later keeps the caller too', async () => {
    for (const fn of SHAPES)
      for (const pause of [0, 1])
        for (const maxTries of [2, 3]) {
          const backoff = new Backoff({ retryAll: true, maxTries, pause });
          const error = (await theCallerOfExecute(backoff, fn).catch((e: unknown) => e)) as Error;
          expect(error.stack, `${fn.name}, pause ${pause}, maxTries ${maxTries}`).toMatch(
            /at (async )?theCallerOfExecute/,
          );
        }
  });

  it.each([
    ['an attempt timeout', { attemptTimeout: 1000 }],
    ['a deadline', { deadline: 5000 }],
    ['a signal', { signal: new AbortController().signal }],
    ['no limits', {}],
  ] as const)(
    'with %s, an error thrown at once by the first attempt shows the caller within the default 10 frames',
    async (_, extra) => {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 10; // the default Node runs with; the test runner may raise it
      try {
        for (const backoff of [
          new Backoff({ maxTries: 1, ...extra }),
          new Backoff({ maxTries: 1, context: false, ...extra }),
        ]) {
          const error = (await theCallerOfExecute(backoff, throwsAtOnce).catch(
            (e: unknown) => e,
          )) as Error;
          expect(error.stack).toMatch(/at theCallerOfExecute/);
        }
      } finally {
        Error.stackTraceLimit = limit;
      }
    },
  );

  it.each([
    ['an attempt timeout', { attemptTimeout: 1000 }],
    ['no limits', {}],
  ] as const)(
    'with %s, carrying the attempt context puts no frame of its own between the caller and fn',
    async (_, extra) => {
      // Every frame between the two is captured into each error fn throws before its first await.
      const framesBetween = async (context: boolean) => {
        const error = (await theCallerOfExecute(
          new Backoff({ maxTries: 1, context, ...extra }),
          throwsAtOnce,
        ).catch((e: unknown) => e)) as Error;
        const lines = error.stack!.split('\n');
        const from = lines.findIndex((line) => line.includes('at throwsAtOnce'));
        const to = lines.findIndex((line) => line.includes('at theCallerOfExecute'));
        expect(from).toBeGreaterThan(0);
        expect(to).toBeGreaterThan(from);
        return lines.slice(from + 1, to);
      };
      const withContext = await framesBetween(true);
      expect(withContext.join('\n')).not.toMatch(/AsyncLocalStorage/);
      expect(withContext).toHaveLength((await framesBetween(false)).length);
    },
  );
});
