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

async function theCallerOfExecute(backoff: Backoff): Promise<unknown> {
  return await backoff.execute(fails);
}

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
    const backoff = new Backoff({ retryAll: true, maxTries: 3, ...extra });
    const error = (await theCallerOfExecute(backoff).catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('from a later attempt');
    expect(error.stack).toMatch(/at (async )?theCallerOfExecute/);
  });
});
