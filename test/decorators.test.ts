/**
 * asyncbackoff / asyncretry: the three ways to use what they return (function wrapper, TC39 method
 * decorator, legacy `experimentalDecorators` method decorator).
 *
 * About decorator syntax in this file: vitest 4 runs on Vite 8, whose TypeScript transform is Oxc,
 * and Oxc does not lower TC39 (2023-11) decorators: a `@decorator` in a test file reaches Node 20
 * untransformed and fails with "SyntaxError: Invalid or unexpected token". So real decorator syntax
 * is compiled here with the TypeScript compiler (`ts.transpileModule`, in both decorator modes) and
 * evaluated, and the decorator is also called by hand with the arguments each mode passes.
 */
import FakeTimers from '@sinonjs/fake-timers';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  asyncbackoff,
  asyncretry,
  Backoff,
  currentAttempt,
  DeadlineExceededError,
} from '../src/index.js';

let clock: InstalledClock;
beforeEach(() => {
  // process.nextTick stays real: vitest's worker reports results through it, and a report queued
  // on a fake nextTick is lost at uninstall, which deadlocks the run (seen with fake-timers 15,
  // whose install() fakes nextTick and queueMicrotask by default). Immediates stay real too: these
  // tests are about the decorators' wiring, and a pause of 0 retries a second time in the same
  // turn only in the check phase, which the awaits here reach on their own.
  clock = FakeTimers.install({
    toNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'],
  });
});
afterEach(() => {
  clock.uninstall();
});

/** Settles a promise into a value or `{ rejected }`, so no rejection is ever left unhandled. */
function settle<T>(promise: Promise<T>): Promise<{ value: T } | { rejected: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (rejected: unknown) => ({ rejected }),
  );
}

/** A function that never settles (it ignores its signal). */
const hang = (): Promise<never> => new Promise<never>(() => {});

/**
 * Compiles `source` (which must `export function make(deps: any)`) with TypeScript and returns
 * `make`. `experimentalDecorators: false` emits TC39 decorators (TypeScript 5's default),
 * `true` emits legacy ones.
 */
function compile(source: string, experimentalDecorators: boolean): (deps: any) => any {
  const { outputText, diagnostics } = ts.transpileModule(source, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      experimentalDecorators,
      emitDecoratorMetadata: false,
      importHelpers: false,
    },
    reportDiagnostics: true,
  });
  expect(diagnostics ?? []).toEqual([]);
  const module = { exports: {} as { make?: (deps: any) => any } };
  new Function('module', 'exports', outputText)(module, module.exports);
  if (typeof module.exports.make !== 'function') throw new Error('no make() exported');
  return module.exports.make;
}

/** A TC39 method decorator context as the runtime builds it, for calling a decorator by hand. */
function methodContext(
  name: string | symbol,
  extra: Partial<{ static: boolean; private: boolean }> = {},
): ClassMethodDecoratorContext<any, any> {
  return {
    kind: 'method',
    name,
    static: extra.static ?? false,
    private: extra.private ?? false,
    access: { has: () => true, get: () => undefined },
    addInitializer: () => {},
    metadata: {},
  } as unknown as ClassMethodDecoratorContext<any, any>;
}

describe('asyncbackoff positional (aiomisc style)', () => {
  it('asyncbackoff(100, 1000, 10, TypeError, RangeError): times, pause and exceptions land in place', async () => {
    const starts: number[] = [];
    const fn = asyncbackoff(
      100,
      1000,
      10,
      TypeError,
      RangeError,
    )(async () => {
      starts.push(Date.now() - start);
      await hang();
    });
    const start = Date.now();
    const outcome = settle(fn());
    await clock.tickAsync(1000);
    const result = await outcome;
    // attempt timeout 100 + pause 10 between attempts
    expect(starts).toEqual([0, 110, 220, 330, 440, 550, 660, 770, 880, 990]);
    // the deadline (1000) ends it, with the last failed attempt's error
    expect('rejected' in result && result.rejected).toBeInstanceOf(AttemptTimeoutError);
    expect((result as { rejected: AttemptTimeoutError }).rejected.attempt).toBe(9);
  });

  it('positional exception classes are retried, others reject at once with the same object', async () => {
    const errors = [new TypeError('a'), new RangeError('b'), new SyntaxError('c')];
    let calls = 0;
    const fn = asyncbackoff(
      100,
      1000,
      10,
      TypeError,
      RangeError,
    )(async () => {
      throw errors[calls++];
    });
    const outcome = settle(fn());
    await clock.tickAsync(100);
    expect(await outcome).toEqual({ rejected: errors[2] });
    expect(((await outcome) as { rejected: unknown }).rejected).toBe(errors[2]);
    expect(calls).toBe(3);
  });

  it('subclasses of a positional exception class are retried', async () => {
    class PoolBusy extends RangeError {}
    let calls = 0;
    const fn = asyncbackoff(null, null, 0, RangeError, { maxTries: 3 })(async () => {
      calls++;
      throw new PoolBusy('busy');
    });
    await expect(fn()).rejects.toBeInstanceOf(PoolBusy);
    expect(calls).toBe(3);
  });

  it('asyncbackoff(attemptTimeout, deadline): pause 0 and only attempt timeouts retried', async () => {
    let calls = 0;
    const fn = asyncbackoff(
      50,
      1000,
    )(async (fail: boolean) => {
      calls++;
      if (fail) throw new TypeError('not retried');
      if (calls < 3) await hang();
      return calls;
    });
    await expect(fn(true)).rejects.toThrow('not retried');
    expect(calls).toBe(1);
    calls = 0;
    const outcome = settle(fn(false));
    await clock.tickAsync(100);
    expect(await outcome).toEqual({ value: 3 });
    expect(Date.now()).toBe(100); // two 50 ms timeouts, no pause
  });

  it('asyncbackoff(null, null): no time limits', async () => {
    const fn = asyncbackoff(
      null,
      null,
    )(() => new Promise<string>((resolve) => setTimeout(resolve, 10 * 24 * 3600 * 1000, 'late')));
    const outcome = settle(fn());
    await clock.tickAsync(10 * 24 * 3600 * 1000);
    expect(await outcome).toEqual({ value: 'late' });
  });

  it('deadline passes before any attempt failed: DeadlineExceededError', async () => {
    const fn = asyncbackoff(null, 300)(hang);
    const outcome = settle(fn());
    await clock.tickAsync(300);
    const result = (await outcome) as { rejected: DeadlineExceededError };
    expect(result.rejected).toBeInstanceOf(DeadlineExceededError);
    expect(result.rejected.timeout).toBe(300);
  });
});

describe('asyncbackoff positional + trailing options', () => {
  it('{ maxTries } bounds the attempts', async () => {
    let calls = 0;
    const fn = asyncbackoff(100, 1000, 0, TypeError, { maxTries: 3 })(async () => {
      calls++;
      throw new TypeError(`try ${calls}`);
    });
    await expect(fn()).rejects.toThrow('try 3');
    expect(calls).toBe(3);
  });

  it('{ giveup } stops at the first error it accepts, rejecting with that error', async () => {
    let calls = 0;
    const seen: unknown[] = [];
    const fatal = new TypeError('fatal');
    const fn = asyncbackoff(100, 1000, 0, TypeError, {
      maxTries: 10,
      giveup: (error) => {
        seen.push(error);
        return error === fatal;
      },
    })(async () => {
      calls++;
      throw calls === 2 ? fatal : new TypeError('transient');
    });
    const outcome = await settle(fn());
    expect(outcome).toEqual({ rejected: fatal });
    expect((outcome as { rejected: unknown }).rejected).toBe(fatal);
    expect(calls).toBe(2);
    expect(seen).toHaveLength(2);
  });

  it('options right after the pause (no exception classes)', async () => {
    let calls = 0;
    const fn = asyncbackoff(100, 1000, 0, { maxTries: 2 })(async () => {
      calls++;
      await hang();
    });
    const outcome = settle(fn());
    await clock.tickAsync(200);
    expect((await outcome) as { rejected: unknown }).toHaveProperty('rejected');
    expect(((await outcome) as { rejected: AttemptTimeoutError }).rejected.attempt).toBe(2);
    expect(calls).toBe(2);
  });

  it('{ retryAll: true } in trailing options retries everything', async () => {
    let calls = 0;
    const fn = asyncbackoff(null, null, 0, { maxTries: 4, retryAll: true })(async () => {
      calls++;
      throw 'a string';
    });
    await expect(fn()).rejects.toBe('a string');
    expect(calls).toBe(4);
  });
});

describe('asyncbackoff(options)', () => {
  it('a single options object', async () => {
    const starts: number[] = [];
    const start = Date.now();
    const fn = asyncbackoff({
      attemptTimeout: 100,
      deadline: 1000,
      pause: 10,
      exceptions: [TypeError],
      maxTries: 3,
    })(async (n: number) => {
      starts.push(Date.now() - start);
      if (starts.length === 1) throw new TypeError('first');
      if (starts.length === 2) await hang();
      return n * 2;
    });
    const outcome = settle(fn(21));
    await clock.tickAsync(1000);
    expect(await outcome).toEqual({ value: 42 });
    expect(starts).toEqual([0, 10, 120]);
  });

  it('exceptions given in the options object filter as positional ones do', async () => {
    const other = new Error('other');
    let calls = 0;
    const fn = asyncbackoff({ exceptions: [TypeError], maxTries: 5 })(async () => {
      calls++;
      throw calls < 3 ? new TypeError('retry me') : other;
    });
    const outcome = await settle(fn());
    expect((outcome as { rejected: unknown }).rejected).toBe(other);
    expect(calls).toBe(3);
  });
});

describe('asyncretry(maxTries)', () => {
  it.each([
    ['an Error', new Error('e')],
    ['a string', 'boom'],
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
    ['a plain object', { code: 'ECONNRESET' }],
    ['a custom error class', new (class NotInAnyList extends Error {})('x')],
  ])('retries every thrown value: %s, and rejects with that very value', async (_, thrown) => {
    let calls = 0;
    const fn = asyncretry(3)(async () => {
      calls++;
      throw thrown;
    });
    const outcome = await settle(fn());
    expect(outcome).toHaveProperty('rejected');
    expect((outcome as { rejected: unknown }).rejected).toBe(thrown);
    expect(calls).toBe(3);
  });

  it('synchronous throws (non-async function) are retried too and never thrown synchronously', async () => {
    let calls = 0;
    const fn = asyncretry(3)(() => {
      calls++;
      if (calls < 3) throw new Error('sync');
      return 'ok';
    });
    let promise: Promise<string> | undefined;
    expect(() => {
      promise = fn();
    }).not.toThrow();
    await expect(promise).resolves.toBe('ok');
    expect(calls).toBe(3);
  });

  it('a synchronous value is returned as a promise', async () => {
    const fn = asyncretry(1)((a: number, b: number) => a + b);
    const promise = fn(2, 3);
    expect(promise).toBeInstanceOf(Promise);
    await expect(promise).resolves.toBe(5);
  });

  it('stops at the first success', async () => {
    let calls = 0;
    const fn = asyncretry(5)(async () => {
      if (++calls < 2) throw new Error('once');
      return 'second';
    });
    await expect(fn()).resolves.toBe('second');
    expect(calls).toBe(2);
  });

  it('asyncretry(1): one call, no retry', async () => {
    let calls = 0;
    const fn = asyncretry(1)(async () => {
      calls++;
      throw new Error('x');
    });
    await expect(fn()).rejects.toThrow('x');
    expect(calls).toBe(1);
  });

  it('with exceptions: only those are retried', async () => {
    class Busy extends Error {}
    const fatal = new Error('fatal');
    let calls = 0;
    const fn = asyncretry(5, { exceptions: [Busy] })(async () => {
      calls++;
      throw calls < 3 ? new Busy('busy') : fatal;
    });
    const outcome = await settle(fn());
    expect((outcome as { rejected: unknown }).rejected).toBe(fatal);
    expect(calls).toBe(3);
  });

  it('with exceptions: a thrown string is not retried', async () => {
    let calls = 0;
    const fn = asyncretry(5, { exceptions: [Error] })(async () => {
      calls++;
      throw 'not an Error';
    });
    await expect(fn()).rejects.toBe('not an Error');
    expect(calls).toBe(1);
  });

  it('with exceptions: [] nothing but attempt timeouts is retried', async () => {
    let calls = 0;
    const fn = asyncretry(5, { exceptions: [] })(async () => {
      calls++;
      throw new Error('no');
    });
    await expect(fn()).rejects.toThrow('no');
    expect(calls).toBe(1);
  });

  it('no time limit by default', async () => {
    const fn = asyncretry(2)(
      () => new Promise<string>((resolve) => setTimeout(resolve, 2 ** 31 - 1, 'slow')),
    );
    const outcome = settle(fn());
    await clock.tickAsync(2 ** 31 - 1);
    expect(await outcome).toEqual({ value: 'slow' });
  });

  it('options: pause and attemptTimeout', async () => {
    const starts: number[] = [];
    const fn = asyncretry(3, { pause: 25, attemptTimeout: 50 })(async () => {
      starts.push(Date.now());
      await hang();
    });
    const outcome = settle(fn());
    await clock.tickAsync(1000);
    const result = (await outcome) as { rejected: AttemptTimeoutError };
    expect(result.rejected).toBeInstanceOf(AttemptTimeoutError);
    expect(result.rejected.attempt).toBe(3);
    expect(starts).toEqual([0, 75, 150]);
  });

  it('giveup sees non-Error values too', async () => {
    const seen: unknown[] = [];
    const fn = asyncretry(5, {
      giveup: (error) => {
        seen.push(error);
        return error === 'stop';
      },
    })(async () => {
      throw seen.length === 0 ? 'go on' : 'stop';
    });
    await expect(fn()).rejects.toBe('stop');
    expect(seen).toEqual(['go on', 'stop']);
  });
});

describe('as a function wrapper', () => {
  it('keeps the function name', () => {
    async function fetchUser(id: string) {
      return { id };
    }
    expect(asyncretry(3)(fetchUser).name).toBe('fetchUser');
    expect(asyncbackoff(100, 1000)(fetchUser).name).toBe('fetchUser');
    expect(asyncbackoff({})(fetchUser).name).toBe('fetchUser');
    const arrow = async () => 1;
    expect(asyncretry(3)(arrow).name).toBe('arrow');
  });

  it('passes the same arguments to every attempt', async () => {
    const seen: unknown[][] = [];
    const fn = asyncretry(3)(async (...args: unknown[]) => {
      seen.push(args);
      if (seen.length < 3) throw new Error('again');
      return 'done';
    });
    const obj = { k: 1 };
    await expect(fn(1, 'two', obj)).resolves.toBe('done');
    expect(seen).toEqual([
      [1, 'two', obj],
      [1, 'two', obj],
      [1, 'two', obj],
    ]);
    expect(seen[2]![2]).toBe(obj);
  });

  it('preserves `this` on every attempt', async () => {
    const thisValues: unknown[] = [];
    const counter = {
      base: 40,
      add: asyncretry(2)(async function (this: { base: number }, n: number) {
        thisValues.push(this);
        if (thisValues.length === 1) throw new Error('first');
        return this.base + n;
      }),
    };
    await expect(counter.add(2)).resolves.toBe(42);
    expect(thisValues).toEqual([counter, counter]);
    expect(thisValues[0]).toBe(counter);
    expect(thisValues[1]).toBe(counter);
  });

  it('call/apply/bind pass `this` through', async () => {
    const fn = asyncretry(1)(async function (this: { v: number }) {
      return this.v;
    });
    await expect(fn.call({ v: 1 })).resolves.toBe(1);
    await expect(fn.apply({ v: 2 }, [])).resolves.toBe(2);
    await expect(fn.bind({ v: 3 })()).resolves.toBe(3);
  });

  it('currentAttempt() inside the wrapped function', async () => {
    const attempts: number[] = [];
    const fn = asyncretry(3)(async () => {
      const context = currentAttempt();
      attempts.push(context!.attempt);
      expect(context!.signal).toBeInstanceOf(AbortSignal);
      if (context!.attempt < 3) throw new Error('again');
    });
    await fn();
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('concurrent calls are independent executions', async () => {
    const calls = new Map<string, number>();
    const fn = asyncretry(2, { pause: 10 })(async (key: string) => {
      calls.set(key, (calls.get(key) ?? 0) + 1);
      if (key === 'bad' || calls.get(key) === 1) throw new Error(key);
      return key;
    });
    const good = settle(fn('good'));
    const bad = settle(fn('bad'));
    await clock.tickAsync(10);
    expect(await good).toEqual({ value: 'good' });
    expect(((await bad) as { rejected: Error }).rejected.message).toBe('bad');
    expect(calls).toEqual(
      new Map([
        ['good', 2],
        ['bad', 2],
      ]),
    );
  });

  it('wrapping a non-function throws a TypeError at once', () => {
    const decorator = asyncretry(3);
    expect(() => (decorator as any)(42)).toThrow(TypeError);
    expect(() => (decorator as any)('fn')).toThrow(/function/);
    expect(() => (decorator as any)(undefined)).toThrow(TypeError);
  });
});

describe('decorator.backoff and shared statistics', () => {
  it('exposes the Backoff instance', () => {
    const decorator = asyncretry(3);
    expect(decorator.backoff).toBeInstanceOf(Backoff);
    expect(asyncbackoff(1, 2).backoff).toBeInstanceOf(Backoff);
    expect(asyncbackoff({}).backoff).toBeInstanceOf(Backoff);
  });

  it('every function wrapped by the same factory result shares one Backoff and its statistics', async () => {
    const retry = asyncretry(2);
    const a = retry(async () => {
      throw new Error('a');
    });
    const b = retry(async () => 'b');
    await settle(a());
    await b();
    await b();
    const stats = retry.backoff.statistics;
    expect(stats.attempts).toBe(4); // 2 for a, 1 + 1 for b
    expect(stats.errors).toBe(2);
    expect(stats.retries).toBe(1);
    expect(stats.giveUps).toBe(1);
    expect(stats.successes).toBe(2);
  });

  it('two factory calls have separate statistics', async () => {
    const first = asyncretry(2);
    const second = asyncretry(2);
    expect(first.backoff).not.toBe(second.backoff);
    await first(async () => 1)();
    expect(first.backoff.statistics.attempts).toBe(1);
    expect(second.backoff.statistics.attempts).toBe(0);
  });

  it('methods decorated (legacy, by hand) with the same decorator share statistics', async () => {
    const retry = asyncretry(3);
    class Repo {
      async a() {
        return 'a';
      }
      async b() {
        return 'b';
      }
    }
    for (const key of ['a', 'b'] as const) {
      const descriptor = Object.getOwnPropertyDescriptor(Repo.prototype, key)!;
      Object.defineProperty(Repo.prototype, key, retry(Repo.prototype, key, descriptor));
    }
    const repo = new Repo();
    await repo.a();
    await repo.b();
    await repo.b();
    expect(retry.backoff.statistics.attempts).toBe(3);
    expect(retry.backoff.statistics.successes).toBe(3);
  });

  it('the backoff property is read-only', () => {
    const decorator = asyncretry(3);
    const original = decorator.backoff;
    expect(() => {
      (decorator as { backoff: unknown }).backoff = null;
    }).toThrow(TypeError);
    expect(decorator.backoff).toBe(original);
  });
});

describe('TC39 method decorator, called by hand', () => {
  it('returns a replacement method that retries and keeps `this` and the name', async () => {
    const decorator = asyncretry(3);
    const thisValues: unknown[] = [];
    async function load(this: { id: string }, suffix: string) {
      thisValues.push(this);
      if (thisValues.length < 2) throw new Error('again');
      return this.id + suffix;
    }
    const replacement = decorator(load, methodContext('load'));
    expect(typeof replacement).toBe('function');
    expect(replacement).not.toBe(load);
    expect(replacement.name).toBe('load');
    const obj = { id: 'u1', load: replacement };
    await expect(obj.load('!')).resolves.toBe('u1!');
    expect(thisValues).toEqual([obj, obj]);
  });

  it('static and private methods are fine too', async () => {
    const decorator = asyncretry(2);
    const method = async () => 'x';
    await expect(decorator(method, methodContext('s', { static: true }))()).resolves.toBe('x');
    await expect(decorator(method, methodContext('#p', { private: true }))()).resolves.toBe('x');
    await expect(decorator(method, methodContext(Symbol('sym')))()).resolves.toBe('x');
  });

  it.each(['field', 'getter', 'setter', 'accessor', 'class'])(
    'a %s decorator context is a TypeError',
    (kind) => {
      const decorator = asyncretry(3);
      const context = { ...methodContext('x'), kind } as unknown as ClassMethodDecoratorContext;
      const value = kind === 'field' ? undefined : async () => {};
      expect(() => (decorator as any)(value, context)).toThrow(TypeError);
      expect(() => (decorator as any)(value, context)).toThrow(new RegExp(kind));
    },
  );

  it('a context that is not an object is a TypeError', () => {
    const decorator = asyncretry(3);
    expect(() => (decorator as any)(async () => {}, 'name')).toThrow(TypeError);
    expect(() => (decorator as any)(async () => {}, null)).toThrow(TypeError);
  });
});

describe('TC39 decorators, real syntax (compiled by TypeScript)', () => {
  const source = `
    export function make(deps: any) {
      const { retry, log } = deps;
      class Service {
        base = 1;
        #secret = 41;
        @retry
        async add(n: number) {
          log.push(this);
          if (log.length < 2) throw new Error('flaky');
          return this.base + n;
        }
        @retry
        static async ping() {
          return this.name;
        }
        @retry
        async #hidden() {
          log.push(this);
          return this.#secret + 1;
        }
        callHidden() {
          return this.#hidden();
        }
      }
      return Service;
    }`;

  it('decorates instance, static and private methods; `this` and the name are kept', async () => {
    const retry = asyncretry(3);
    const log: unknown[] = [];
    const Service = compile(source, false)({ retry, log });
    const service = new Service();
    await expect(service.add(1)).resolves.toBe(2);
    expect(log).toEqual([service, service]);
    expect(Service.prototype.add.name).toBe('add');
    await expect(Service.ping()).resolves.toBe('Service');
    await expect(service.callHidden()).resolves.toBe(42);
    expect(log[2]).toBe(service);
    // three decorated methods, one Backoff: 2 + 1 + 1 attempts
    expect(retry.backoff.statistics.attempts).toBe(4);
  });

  it('deadline applies to a decorated method (fake timers)', async () => {
    const make = compile(
      `export function make(deps: any) {
        class Slow { @deps.retry async run() { await new Promise(() => {}); } }
        return Slow;
      }`,
      false,
    );
    const Slow = make({ retry: asyncbackoff(100, 250, 0) });
    const outcome = settle(new Slow().run());
    await clock.tickAsync(250);
    const result = (await outcome) as { rejected: AttemptTimeoutError };
    expect(result.rejected).toBeInstanceOf(AttemptTimeoutError);
    expect(result.rejected.attempt).toBe(2);
  });

  it('decorating a field, a getter or a class throws a TypeError at class definition', () => {
    for (const member of [
      '@deps.retry value = 1;',
      '@deps.retry get value() { return 1; }',
      '@deps.retry accessor value = 1;',
    ]) {
      const make = compile(
        `export function make(deps: any) { class X { ${member} } return X; }`,
        false,
      );
      expect(() => make({ retry: asyncretry(3) }), member).toThrow(TypeError);
    }
    const makeClass = compile(
      `export function make(deps: any) { @deps.retry class X {} return X; }`,
      false,
    );
    expect(() => makeClass({ retry: asyncretry(3) })).toThrow(TypeError);
  });

  it('hooks given as method names resolve on `this`', async () => {
    const make = compile(
      `export function make(deps: any) {
        class Svc {
          retries: number[] = [];
          calls = 0;
          onRetryHook(event: any) { this.retries.push(event.attempt); }
          @deps.retry
          async work() { if (++this.calls < 3) throw new Error('x'); return this.calls; }
        }
        return Svc;
      }`,
      false,
    );
    const Svc = make({ retry: asyncretry(3, { onRetry: 'onRetryHook' }) });
    const svc = new Svc();
    await expect(svc.work()).resolves.toBe(3);
    expect(svc.retries).toEqual([1, 2]);
  });

  it('a hook method name missing on `this` rejects with a TypeError naming it', async () => {
    const retry = asyncretry(3, { onRetry: 'missingHook' });
    const fn = retry(async () => {
      throw new Error('x');
    });
    const outcome = (await settle(fn.call({}))) as { rejected: Error };
    expect(outcome.rejected).toBeInstanceOf(TypeError);
    expect(outcome.rejected.message).toMatch(/missingHook/);
  });
});

describe('legacy (experimentalDecorators) method decorator', () => {
  it('by hand: (prototype, key, descriptor) returns the descriptor with the method wrapped', async () => {
    const decorator = asyncretry(3);
    const calls: unknown[] = [];
    class Repo {
      id = 'r';
      async find(n: number) {
        calls.push(this);
        if (calls.length < 3) throw new Error('again');
        return `${this.id}${n}`;
      }
    }
    const original = Repo.prototype.find;
    const descriptor = Object.getOwnPropertyDescriptor(Repo.prototype, 'find')!;
    const result = decorator(Repo.prototype, 'find', descriptor);
    expect(result).toBe(descriptor);
    expect(result.value).not.toBe(original);
    expect(result.value!.name).toBe('find');
    // the other descriptor fields are untouched
    expect(result.writable).toBe(true);
    expect(result.enumerable).toBe(false);
    expect(result.configurable).toBe(true);
    Object.defineProperty(Repo.prototype, 'find', result);
    const repo = new Repo();
    await expect(repo.find(7)).resolves.toBe('r7');
    expect(calls).toEqual([repo, repo, repo]);
  });

  it('by hand: a symbol key', async () => {
    const key = Symbol('load');
    const descriptor: PropertyDescriptor = { value: async () => 'v', writable: true };
    const result = asyncretry(1)({}, key, descriptor);
    await expect(result.value!()).resolves.toBe('v');
  });

  it.each([
    ['a getter', { get: (): number => 1, configurable: true }],
    ['an accessor pair', { get: (): number => 1, set: () => {}, configurable: true }],
    ['a number value', { value: 5, writable: true }],
    ['an object value', { value: {}, writable: true }],
  ])('decorating %s throws a TypeError naming the key', (_, descriptor) => {
    const decorator = asyncretry(3);
    expect(() => decorator({}, 'prop', descriptor as PropertyDescriptor)).toThrow(TypeError);
    expect(() => decorator({}, 'prop', descriptor as PropertyDescriptor)).toThrow(/prop/);
  });

  it('real syntax compiled by TypeScript with experimentalDecorators', async () => {
    const make = compile(
      `export function make(deps: any) {
        const { retry, log } = deps;
        class Service {
          base = 1;
          @retry
          async add(n: number) {
            log.push(this);
            if (log.length < 2) throw new Error('flaky');
            return this.base + n;
          }
          @retry
          static async ping() { return this.name; }
        }
        return Service;
      }`,
      true,
    );
    const retry = asyncretry(3);
    const log: unknown[] = [];
    const Service = make({ retry, log });
    const service = new Service();
    await expect(service.add(1)).resolves.toBe(2);
    expect(log).toEqual([service, service]);
    expect(Service.prototype.add.name).toBe('add');
    await expect(Service.ping()).resolves.toBe('Service');
    expect(retry.backoff.statistics.attempts).toBe(3);
  });

  it('real syntax: a legacy property or getter decorator throws a TypeError', () => {
    for (const member of ['@deps.retry value = 1;', '@deps.retry get value() { return 1; }']) {
      const make = compile(
        `export function make(deps: any) { class X { ${member} } return X; }`,
        true,
      );
      expect(() => make({ retry: asyncretry(3) }), member).toThrow(TypeError);
    }
  });

  it('real syntax: timing under fake timers (asyncbackoff positional)', async () => {
    const make = compile(
      `export function make(deps: any) {
        class Db {
          calls: number[] = [];
          @deps.retry
          async query() { this.calls.push(Date.now()); await new Promise(() => {}); }
        }
        return Db;
      }`,
      true,
    );
    const Db = make({ retry: asyncbackoff(100, 1000, 50, { maxTries: 3 }) });
    const db = new Db();
    const outcome = settle(db.query());
    await clock.tickAsync(1000);
    expect(((await outcome) as { rejected: AttemptTimeoutError }).rejected.attempt).toBe(3);
    expect(db.calls).toEqual([0, 150, 300]);
  });
});

describe('decorators: argument shapes and message prefixes', () => {
  /** Lets a deliberately wrong value through the type checker. */
  const bad = (value: unknown): any => value;

  /** Calls `build` and returns the error it threw. */
  function thrownBy(build: () => unknown): Error {
    try {
      build();
    } catch (error) {
      return error as Error;
    }
    throw new Error('expected a throw, nothing was thrown');
  }

  it('asyncbackoff(options) accepts a null-prototype options object', async () => {
    const options = Object.assign(Object.create(null) as Record<string, unknown>, {
      maxTries: 2,
      retryAll: true,
    });
    const decorator = asyncbackoff(options);
    let calls = 0;
    const fn = decorator(async () => {
      calls++;
      throw new Error('down');
    });
    const outcome = settle(fn());
    await clock.tickAsync(0);
    expect(await outcome).toEqual({ rejected: new Error('down') });
    expect(calls).toBe(2);
  });

  it('asyncretry(n, options) accepts a null-prototype options object', () => {
    const options = Object.assign(Object.create(null) as Record<string, unknown>, { pause: 5 });
    expect(() => asyncretry(3, options)).not.toThrow();
  });

  it('an error class whose parent has a static field named like an option is still an error class', () => {
    class ServiceError extends Error {
      static context = 'billing';
      static pause = 'never';
    }
    class ServiceTimeout extends ServiceError {}
    expect(() => asyncbackoff(100, 1000, 10, ServiceTimeout)).not.toThrow();
  });

  it('asyncbackoff(fn) alone reports the argument count, not an inherited option', () => {
    class Base extends Error {
      static deadline = 5;
    }
    class Derived extends Base {}
    const error = thrownBy(() => asyncbackoff(bad(Derived)));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^asyncbackoff: expected .* got 1 argument\(s\)$/);
  });

  it('a null decorator context is refused with the decorator’s own message', () => {
    const decorator = asyncretry(3);
    const error = thrownBy(() => (decorator as any)(async () => 1, null));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(
      'asyncretry: can only decorate methods and functions, got a null decorator context',
    );
  });

  it('a function as the decorator context is refused even with kind "method"', () => {
    const decorator = asyncretry(3);
    const context = Object.assign(() => {}, { kind: 'method' });
    const error = thrownBy(() => (decorator as any)(async () => 1, context));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(
      /^asyncretry: can only decorate methods and functions, got a method/,
    );
  });

  it('decorating a non-function names the decorator', () => {
    const error = thrownBy(() => (asyncbackoff(100, 1000) as any)(42));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe('asyncbackoff: can only decorate functions, got 42');
  });

  it('the decorator’s backoff property is enumerable', () => {
    const decorator = asyncretry(3);
    expect(Object.keys(decorator)).toEqual(['backoff']);
    expect({ ...decorator }.backoff).toBe(decorator.backoff);
  });

  it('asyncbackoff(optionsObject, more) is not the options form', () => {
    const error = thrownBy(() => asyncbackoff(bad({ maxTries: 2 }), 1000));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^asyncbackoff: 'attemptTimeout' must be/);
  });

  it('a first positional argument inheriting an option name is reported as a bad attemptTimeout', () => {
    const error = thrownBy(() => asyncbackoff(bad(Object.create({ deadline: 5 })), 1000));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^asyncbackoff: 'attemptTimeout' must be/);
  });

  it('option errors of asyncbackoff(options) start with "asyncbackoff:"', () => {
    const error = thrownBy(() => asyncbackoff({ maxTries: 0 }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(/^asyncbackoff: 'maxTries'/);
  });

  it('option errors of the positional asyncbackoff start with "asyncbackoff:"', () => {
    const error = thrownBy(() => asyncbackoff(-1, 1000));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(/^asyncbackoff: 'attemptTimeout'/);
  });

  it('option errors of asyncretry start with "asyncretry:"', () => {
    const error = thrownBy(() => asyncretry(3, { pause: -1 }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(/^asyncretry: 'pause'/);
  });

  it('asyncretry with retryOn and no exceptions retries only what retryOn accepts', async () => {
    let calls = 0;
    const fn = asyncretry(3, { retryOn: (error) => (error as Error).message === 'busy' })(
      async () => {
        calls++;
        throw new Error('fatal');
      },
    );
    const outcome = settle(fn());
    await clock.tickAsync(0);
    expect(await outcome).toEqual({ rejected: new Error('fatal') });
    expect(calls).toBe(1);
  });
});
