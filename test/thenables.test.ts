/**
 * What a function returns, followed as `await` would follow it (src/thenables.ts): a plain value or
 * an object without a callable `then` is the result itself, on the bounded path as on the fast one.
 */
import { Backoff } from 'asyncbackoff';
import { describe, expect, it, vi } from 'vitest';
import { isThenable, settleWith } from '../src/thenables.js';

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

type Outcome = { fulfilled: boolean; value: unknown };

/** How `await value` ends. */
async function awaited(value: unknown): Promise<Outcome> {
  try {
    return { fulfilled: true, value: await value };
  } catch (error) {
    return { fulfilled: false, value: error };
  }
}

/** How settleWith ends for `value`, and whether it had ended by the time it returned. */
function settled(value: unknown): { outcome: Promise<Outcome>; atOnce: () => Outcome | undefined } {
  let result: Outcome | undefined;
  let calls = 0;
  const outcome = new Promise<Outcome>((resolve) => {
    settleWith(
      value,
      (fulfilled) => {
        calls++;
        result = { fulfilled: true, value: fulfilled };
        resolve(result);
      },
      (error) => {
        calls++;
        result = { fulfilled: false, value: error };
        resolve(result);
      },
    );
  });
  const atOnce = result;
  return {
    outcome: outcome.then((final) => {
      expect(calls).toBe(1);
      return final;
    }),
    atOnce: () => atOnce,
  };
}

describe('isThenable', () => {
  it('is true for a native promise, an object or a function with a callable then', () => {
    // biome-ignore lint/suspicious/noThenProperty: hand-made thenables are the point of the test
    const object = { then() {} };
    // biome-ignore lint/suspicious/noThenProperty: hand-made thenables are the point of the test
    const fn = Object.assign(() => {}, { then() {} });
    for (const value of [Promise.resolve(1), object, fn]) expect(isThenable(value)).toBe(true);
  });

  it('is false for null, primitives, and objects or functions without a callable then', () => {
    // biome-ignore lint/suspicious/noThenProperty: a `then` that is not callable is the point of the test
    const notCallable = { then: 42 };
    for (const value of [null, undefined, 0, 'then', {}, notCallable, () => {}])
      expect(isThenable(value)).toBe(false);
  });
});

describe('settleWith follows a value as await does', () => {
  it.each([null, undefined, 0, 42, '', 'text', false, 10n, Symbol.for('s')])(
    'fulfils with %s at once',
    async (value) => {
      const { outcome, atOnce } = settled(value);
      expect(atOnce()).toEqual({ fulfilled: true, value });
      await expect(outcome).resolves.toEqual(await awaited(value));
    },
  );

  it('fulfils with a function that has no then', async () => {
    const fn = () => 'not called';
    const { outcome } = settled(fn);
    expect(await outcome).toEqual({ fulfilled: true, value: fn });
    expect(await awaited(fn)).toEqual({ fulfilled: true, value: fn });
  });

  it('follows the then of a function value, as await does', async () => {
    const fn = Object.assign(() => 'not called', {
      // biome-ignore lint/suspicious/noThenProperty: a function with a `then` is the point of the test
      then(resolve: (value: unknown) => void) {
        resolve('from then');
      },
    });
    expect(await awaited(fn)).toEqual({ fulfilled: true, value: 'from then' });
    expect(await settled(fn).outcome).toEqual({ fulfilled: true, value: 'from then' });
  });

  it('never calls the own then of a native promise, as await does not', async () => {
    const promiseThen = Promise.prototype.then;
    const spied = <T>(promise: Promise<T>) => {
      const then = vi.fn(function (this: Promise<T>, ...args: Parameters<Promise<T>['then']>) {
        return promiseThen.apply(this, args);
      });
      Object.defineProperty(promise, 'then', { value: then });
      return { promise, then };
    };
    const fulfilled = spied(Promise.resolve('value'));
    const failure = new Error('failed');
    const rejected = spied(Promise.reject(failure));
    expect(await awaited(fulfilled.promise)).toEqual({ fulfilled: true, value: 'value' });
    expect(await awaited(rejected.promise)).toEqual({ fulfilled: false, value: failure });
    expect(await settled(fulfilled.promise).outcome).toEqual({ fulfilled: true, value: 'value' });
    expect(await settled(rejected.promise).outcome).toEqual({ fulfilled: false, value: failure });
    expect(fulfilled.then).not.toHaveBeenCalled();
    expect(rejected.then).not.toHaveBeenCalled();
  });

  it('follows a Promise subclass through its own then, as await does', async () => {
    class Doubling extends Promise<number> {
      // biome-ignore lint/suspicious/noThenProperty: a subclass's own `then` is the point of the test
      override then<A = number, B = never>(
        onFulfilled?: ((value: number) => A | PromiseLike<A>) | null,
        onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
      ): Promise<A | B> {
        return super.then(
          (value) => (onFulfilled ? onFulfilled(value * 2) : value),
          onRejected,
        ) as Promise<A | B>;
      }
    }
    expect(await awaited(new Doubling((resolve) => resolve(21)))).toEqual({
      fulfilled: true,
      value: 42,
    });
    expect(await settled(new Doubling((resolve) => resolve(21))).outcome).toEqual({
      fulfilled: true,
      value: 42,
    });
  });

  it('reads then once from an object whose then is not callable, as await does', async () => {
    let reads = 0;
    const value = {
      // biome-ignore lint/suspicious/noThenProperty: a `then` getter is the point of the test
      get then() {
        reads++;
        return 'not a function';
      },
    };
    expect(await awaited(value)).toEqual({ fulfilled: true, value });
    expect(reads).toBe(1);
    reads = 0;
    expect(await settled(value).outcome).toEqual({ fulfilled: true, value });
    expect(reads).toBe(1);
  });
});
