/**
 * `asyncbackoff` and `asyncretry`: aiomisc's decorator factories. What they return works three
 * ways: as a function wrapper, as a TC39 method decorator (TypeScript 5's default), and as a legacy
 * `experimentalDecorators` method decorator (NestJS and friends).
 */
import { type Backoff, backoffFor } from './backoff.js';
import { type BackoffOptions, KNOWN } from './options.js';
import type { ErrorClass } from './types.js';
import { checkCount, describe } from './validate.js';

/** The options that may trail the positional arguments of {@link asyncbackoff}. */
export type TrailingOptions<TResult = unknown> = Omit<
  BackoffOptions<TResult>,
  'attemptTimeout' | 'deadline' | 'pause' | 'exceptions'
>;

/**
 * What {@link asyncbackoff} and {@link asyncretry} return: call it on a function, or use it as a
 * method decorator in either decorator mode. Every function it wraps shares `backoff` (and its
 * statistics).
 */
export interface BackoffDecorator<TResult = unknown> {
  /** Wraps a function: same parameters and `this`, result promised. */
  <This, A extends unknown[], R extends TResult>(
    fn: (this: This, ...args: A) => R | PromiseLike<R>,
    // TypeScript accepts a one-parameter signature as a TC39 decorator; this keeps such uses on
    // the overload below, which insists on a method that returns a promise.
    context?: undefined,
  ): (this: This, ...args: A) => Promise<R>;
  /**
   * TC39 method decorator. The method must return a promise (decorating a getter is an error).
   * @typeParam M - the decorated method's type, returned unchanged.
   */
  <M extends (this: any, ...args: any[]) => Promise<TResult>>(
    method: M,
    context: ClassMethodDecoratorContext<any, M>,
  ): M;
  /**
   * Legacy (`experimentalDecorators`) method decorator.
   * @typeParam T - the decorated method's type, kept by the returned descriptor.
   */
  <T extends (...args: any[]) => PromiseLike<TResult>>(
    target: object,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ): TypedPropertyDescriptor<T>;
  /** The instance behind the decorator: its `statistics`, `withSignal`, `execute`. */
  readonly backoff: Backoff<TResult>;
}

/** An options object: a plain object, not an AbortSignal, an array or a class instance. */
function isPlainOptions(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Throws when `value`, an object that is not plain options, inherits one of the option names, or
 * inherits any key from plain objects only: an `Object.create(defaults)` meant as options, whose
 * key a copy would drop. The message names it, as `new Backoff` would; any other object (a class
 * instance, an AbortSignal) is left to the caller's own message.
 */
function checkInherited(where: string, value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  const fromPlain = inheritsFromPlainObjects(value);
  for (const key in value)
    if (!Object.hasOwn(value, key) && (fromPlain || KNOWN.includes(key)))
      throw new TypeError(
        `${where}: option '${key}' is inherited from a prototype; pass options as own properties`,
      );
}

/** Whether every prototype of `value` up to `Object.prototype` is a plain object (no class's). */
function inheritsFromPlainObjects(value: object): boolean {
  for (let proto = Object.getPrototypeOf(value); proto !== Object.prototype; ) {
    if (proto === null || Object.hasOwn(proto, 'constructor')) return proto === null;
    proto = Object.getPrototypeOf(proto);
  }
  return true;
}

function makeDecorator<TResult>(
  backoff: Backoff<TResult>,
  where: string,
): BackoffDecorator<TResult> {
  const decorator = (target: unknown, context?: unknown, descriptor?: unknown): unknown => {
    if (descriptor !== undefined) {
      // Legacy decorator: (prototype, key, descriptor).
      const desc = descriptor as PropertyDescriptor;
      if (typeof desc.value !== 'function')
        throw new TypeError(
          `${where}: can only decorate methods; '${String(context)}' is ${describe(desc.value)}`,
        );
      desc.value = backoff.wrap(desc.value);
      return desc;
    }
    if (context !== undefined) {
      const ctx = context as { kind?: unknown; name?: unknown };
      if (typeof ctx !== 'object' || ctx === null || ctx.kind !== 'method')
        throw new TypeError(
          `${where}: can only decorate methods and functions, got a ${String((ctx as { kind?: unknown })?.kind ?? describe(context))} decorator context`,
        );
    }
    if (typeof target !== 'function')
      throw new TypeError(`${where}: can only decorate functions, got ${describe(target)}`);
    return backoff.wrap(target as (...args: unknown[]) => Promise<TResult>);
  };
  Object.defineProperty(decorator, 'backoff', { value: backoff, enumerable: true });
  return decorator as BackoffDecorator<TResult>;
}

/**
 * aiomisc's `asyncbackoff`: a decorator factory bounding each attempt (`attemptTimeout`) and all of
 * them (`deadline`), pausing between attempts and retrying the given error classes.
 *
 * Positional, as in aiomisc: `asyncbackoff(attemptTimeout, deadline, pause?, ...exceptions, options?)`,
 * or with one options object. Times are milliseconds; `null` means no limit.
 *
 * @throws TypeError for arguments of the wrong type, RangeError for numbers out of range — at once,
 * when the factory is called.
 *
 * @example
 * ```ts
 * class Users {
 *   @asyncbackoff(100, 1000, 50, ConnectionError, { maxTries: 5 })
 *   async find(id: string) { return this.pool.query('SELECT * FROM users WHERE id = $1', [id]); }
 * }
 * const ping = asyncbackoff({ attemptTimeout: 100, deadline: 500 })(async () => redis.ping());
 * ```
 */
export function asyncbackoff<TResult = unknown>(
  options: BackoffOptions<TResult>,
): BackoffDecorator<TResult>;
export function asyncbackoff<TResult = unknown>(
  attemptTimeout: number | null | undefined,
  deadline: number | null | undefined,
  pause?: BackoffOptions['pause'],
  ...rest: [...exceptions: ErrorClass[], options: TrailingOptions<TResult>] | ErrorClass[]
): BackoffDecorator<TResult>;
export function asyncbackoff(...args: unknown[]): BackoffDecorator<unknown> {
  if (args.length === 1 && isPlainOptions(args[0]))
    return makeDecorator(backoffFor('asyncbackoff', args[0] as BackoffOptions), 'asyncbackoff');
  if (args.length === 1) checkInherited('asyncbackoff', args[0]);
  if (args.length < 2)
    throw new TypeError(
      `asyncbackoff: expected (attemptTimeout, deadline, pause?, ...exceptions, options?) or one options object, got ${args.length} argument(s)`,
    );
  const [attemptTimeout, deadline, pause, ...rest] = args;
  let trailing: Record<string, unknown> = {};
  const last = rest[rest.length - 1];
  if (isPlainOptions(last)) {
    trailing = last;
    rest.pop();
    for (const key of ['attemptTimeout', 'deadline', 'pause', 'exceptions'])
      if (key in trailing)
        throw new TypeError(
          `asyncbackoff: '${key}' is given positionally; it cannot also be in the trailing options`,
        );
  } else checkInherited('asyncbackoff', last);
  rest.forEach((klass, index) => {
    if (typeof klass !== 'function')
      throw new TypeError(
        `asyncbackoff: argument ${index + 4} must be an error class, or a plain options object as the last argument, got ${describe(klass)}`,
      );
  });
  const options: Record<string, unknown> = {};
  // Own properties, non-enumerable ones included, so that none is dropped unchecked.
  for (const key of Object.getOwnPropertyNames(trailing)) options[key] = trailing[key];
  Object.assign(options, { attemptTimeout, deadline, exceptions: rest });
  if (pause !== undefined) options.pause = pause;
  return makeDecorator(backoffFor('asyncbackoff', options as BackoffOptions), 'asyncbackoff');
}

/** Options of {@link asyncretry}. */
export type RetryOptions<TResult = unknown> = Omit<BackoffOptions<TResult>, 'maxTries'>;

/**
 * aiomisc's `asyncretry`: at most `maxTries` attempts, no time limits by default. Retries every
 * thrown value unless `exceptions` is given — narrow it for functions called hundreds of times a
 * second, or a failing dependency gets `maxTries` times the load.
 *
 * @throws RangeError when `maxTries` is not a finite integer >= 1 (`Infinity` too: with no time
 *   limit it would retry forever; use `new Backoff({ maxTries: Infinity, deadline })`); TypeError
 *   for wrong option types.
 * @example
 * ```ts
 * const getClusterLock = asyncretry(3, { exceptions: [LockBusyError], pause: 100 })(acquireLock);
 * ```
 */
export function asyncretry<TResult = unknown>(
  maxTries: number,
  options: RetryOptions<TResult> = {},
): BackoffDecorator<TResult> {
  checkCount('asyncretry', 'maxTries', maxTries, { min: 1, limit: false });
  checkInherited('asyncretry', options);
  if (!isPlainOptions(options))
    throw new TypeError(`asyncretry: options must be a plain object, got ${describe(options)}`);
  if ('maxTries' in options)
    throw new TypeError(
      `asyncretry: 'maxTries' is the first argument; it cannot also be an option`,
    );
  const copy: Record<string, unknown> = {};
  for (const key of Object.getOwnPropertyNames(options))
    copy[key] = (options as Record<string, unknown>)[key];
  // Without exceptions or retryOn, asyncretry retries every thrown value (aiomisc's default).
  // Only an absent retryAll takes the default: a null one is refused by the Backoff's check.
  if (options.retryAll === undefined)
    copy.retryAll = options.exceptions === undefined && options.retryOn == null;
  copy.maxTries = maxTries;
  return makeDecorator(
    backoffFor<TResult>('asyncretry', copy as BackoffOptions<TResult>),
    'asyncretry',
  );
}
