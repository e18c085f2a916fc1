/**
 * Following what user code returns without trusting it. A function, a predicate or a hook may
 * return anything: a plain value, a native promise, a subclass of Promise with its own `then`, a
 * proxy, or an object whose `then` getter throws. The engine must neither throw synchronously,
 * nor hang on a value a native `await` would settle, nor hand a non-promise back to its caller.
 */

import { nextMicrotask } from './clock.js';

const promiseThen = Promise.prototype.then;

/** Whether `value` looks like a promise (reading `then` may throw; callers guard it). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/**
 * Calls `onFulfilled` or `onRejected` once with how `value` settles, as `await value` would: a
 * plain value at once, a native promise through the native `then` (nothing of the value's own
 * is called), anything else through the native resolution procedure, which deals with throwing
 * getters, `then`s that throw or call back twice, and proxies. The callbacks must not throw.
 */
export function settleWith(
  value: unknown,
  onFulfilled: (value: unknown) => void,
  onRejected: (error: unknown) => void,
): void {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
    onFulfilled(value);
    return;
  }
  try {
    // A plain native promise: its `constructor` is Promise, so the native `then` calls nothing
    // of the value's own (it would look up a species constructor on a subclass).
    if (value instanceof Promise && value.constructor === Promise) {
      promiseThen.call(value, onFulfilled, onRejected);
      return;
    }
  } catch {
    // A proxy or a hostile prototype: resolved below, as the language resolves it.
  }
  let then: unknown;
  try {
    then = (value as { then?: unknown }).then;
  } catch (error) {
    onRejected(error);
    return;
  }
  if (typeof then !== 'function') {
    onFulfilled(value);
    return;
  }
  // Adopted as the language adopts a thenable: `then`, read once above, called in a job of its
  // own with resolving functions that act once (reading it again could find another value).
  const adopted = new Promise((resolve, reject) => {
    nextMicrotask(() => {
      try {
        Reflect.apply(then as Function, value, [resolve, reject]);
      } catch (error) {
        reject(error);
      }
    });
  });
  promiseThen.call(adopted, onFulfilled, onRejected);
}
