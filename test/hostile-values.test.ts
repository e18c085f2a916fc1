/**
 * What fn returns is followed as `await` would follow it, whatever it is: nothing it does can make
 * the engine throw synchronously, crash the process from a timer, hang where `await` would not,
 * call fn after the execution settled, or hand the caller something that is not a promise.
 */
import { describe, expect, it } from 'vitest';
import { AttemptTimeoutError, Backoff } from '../src/index.js';
import { nextMacrotask } from './support/clock.js';
import { hang, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

const boom = new Error('then getter');
const throwingGetter = () => ({
  get then(): never {
    throw boom;
  },
});

class FortyTwo<T> extends Promise<T> {
  override then(): any {
    return 42;
  }
}

describe('hostile return values', () => {
  it('a then getter that throws is the attempt’s failure, from a pause timer too, and settles once', async () => {
    const backoff = new Backoff({ retryAll: true, pause: 10, maxTries: 3 });
    let calls = 0;
    const result = track(
      backoff.execute(() => {
        calls++;
        return throwingGetter();
      }),
    );
    await t.clock.tickAsync(100);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(boom);
    expect(calls).toBe(3);
  });

  it('a bad first bounded attempt rejects and fn is never called again by the timeout timer', async () => {
    const backoff = new Backoff({ attemptTimeout: 50 });
    let calls = 0;
    const result = track(
      backoff.execute(() => {
        calls++;
        return throwingGetter();
      }),
    );
    await t.clock.tickAsync(200);
    expect(result.error).toBe(boom);
    expect(calls).toBe(1);
    expect(t.clock.countTimers()).toBe(0);
  });

  it('a proxy of a promise on the unbounded path: no synchronous throw; it settles as await would', async () => {
    const backoff = new Backoff();
    const proxied = new Proxy(Promise.resolve(1), {});
    let returned: unknown;
    expect(() => {
      returned = backoff.execute(() => proxied);
    }).not.toThrow();
    expect(returned).toBeInstanceOf(Promise);
    const byAwait = await (async () => await proxied)().catch((e: unknown) => e);
    const byExecute = await (returned as Promise<unknown>).catch((e: unknown) => e);
    expect(byExecute).toBeInstanceOf(TypeError);
    expect(byAwait).toBeInstanceOf(TypeError);
  });

  it('a Promise subclass whose then returns 42: execute returns a real promise, bounded by its timeout', async () => {
    const unbounded = new Backoff().execute(() => new FortyTwo<number>(() => {}));
    expect(Object.getPrototypeOf(unbounded)).toBe(Promise.prototype);
    const bounded = new Backoff({ attemptTimeout: 20, maxTries: 1 });
    const result = track(bounded.execute(() => new FortyTwo<number>(() => {})));
    await t.clock.tickAsync(20);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
  });

  it('a then that throws after calling back, or calls back twice, counts once', async () => {
    const backoff = new Backoff({ attemptTimeout: 100 });
    const twice = {
      then(resolve: (v: string) => void, reject: (e: unknown) => void) {
        resolve('first');
        resolve('second');
        reject(new Error('late'));
        throw new Error('after');
      },
    };
    const result = track(backoff.execute(() => twice as unknown as PromiseLike<string>));
    await t.clock.tickAsync(0);
    expect(result.value).toBe('first');
    expect(backoff.statistics).toMatchObject({ attempts: 1, successes: 1, errors: 0 });
  });

  it('a thenable resolving to another thenable is followed to the end', async () => {
    const inner = { then: (resolve: (v: number) => void) => resolve(7) };
    const outer = { then: (resolve: (v: unknown) => void) => resolve(inner) };
    await expect(new Backoff({ deadline: 100 }).execute(() => outer)).resolves.toBe(7);
  });

  it('reads a thenable’s then once, as await does (a getter that answers once)', async () => {
    const once = () => {
      let reads = 0;
      return {
        get then() {
          reads++;
          if (reads > 1) throw new Error('then read twice');
          return (resolve: (value: unknown) => void) => resolve('once');
        },
      };
    };
    expect(await (async () => await once())()).toBe('once');
    for (const options of [{}, { attemptTimeout: 50 }, { deadline: 100 }] as const) {
      const result = track(new Backoff(options).execute(once));
      await t.clock.tickAsync(0);
      expect(result.status, JSON.stringify(options)).toBe('fulfilled');
      expect(result.value).toBe('once');
    }
  });

  it('a thrown proxy whose get throws, or an error whose name getter throws, is rejected with as is', async () => {
    const trap = new Proxy(new Error('proxied'), {
      get() {
        throw new Error('getter boom');
      },
    });
    const namely = new Error('named');
    Object.defineProperty(namely, 'name', {
      get() {
        throw new Error('getter boom');
      },
    });
    for (const [thrown, options] of [
      [trap, { maxTries: 1 }],
      [trap, { maxTries: 3, retryOn: () => false }],
      [trap, { maxTries: 3, attemptTimeout: 100 }],
      [namely, { maxTries: 5 }],
    ] as const) {
      const result = track(
        new Backoff(options).execute(() => {
          throw thrown;
        }),
      );
      await t.clock.tickAsync(0);
      expect(result.status).toBe('rejected');
      expect(result.error).toBe(thrown);
    }
  });

  it('none of it leaves an unhandled rejection or a timer behind', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const backoff = new Backoff({ attemptTimeout: 10, retryAll: true, maxTries: 2 });
      const values = [throwingGetter(), new Proxy(Promise.resolve('x'), {}), hang()];
      for (const value of values) track(backoff.execute(() => value));
      await t.clock.tickAsync(100);
      await nextMacrotask();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});
