/**
 * What a function returns, followed as `await` would follow it (src/thenables.ts): a plain value or
 * an object without a callable `then` is the result itself, on the bounded path as on the fast one.
 */
import { Backoff } from 'asyncbackoff';
import { describe, expect, it } from 'vitest';

describe('a function that returns an object synchronously', () => {
  for (const [label, options] of [
    ['bounded (attemptTimeout)', { attemptTimeout: 100 }],
    ['unbounded', {}],
  ] as const) {
    it(`${label}: resolves with that very object`, async () => {
      const value = { ok: true };
      await expect(new Backoff(options).execute(() => value)).resolves.toBe(value);
    });

    it(`${label}: an object whose then is not a function is a value, as for await`, async () => {
      // biome-ignore lint/suspicious/noThenProperty: a `then` that is not callable is the point of the test
      const value = { then: 'not a function' };
      expect(await value).toBe(value);
      await expect(new Backoff(options).execute(() => value)).resolves.toBe(value);
    });
  }
});
