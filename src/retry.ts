/**
 * `retry(fn, options)`: one call under a one-off policy, with the function first so that
 * TypeScript infers `retryIf`'s parameter and the hooks' result type from what `fn` returns.
 */
import { type Backoff, backoffFor } from './backoff.js';
import { type BackoffOptions, METHOD_NAME_OPTIONS } from './options.js';
import { describe } from './validate.js';

/**
 * Calls `fn` under a policy built for this one call. The options are those of `Backoff`;
 * `retryIf`, `onSuccess` and `returnLastResult` see `fn`'s result type without annotations.
 *
 * For calls made often, build one `Backoff` and share it: its options are validated once, and its
 * statistics, timers and signal links are shared by every call.
 *
 * @throws TypeError or RangeError (rejects) for invalid options, as `new Backoff` does, and a
 *   TypeError for a hook or policy given as a method name (`fn` is called without a `this`).
 * @example
 * ```ts
 * // The polling decorator from the seeds: poll until the task leaves 'run', at most 10 tries.
 * const task = await retry(() => api.task(id), {
 *   retryIf: (task) => task.status === 'run', // `task` is typed from api.task
 *   pause: 5_000,
 *   maxTries: 10,
 * });
 * ```
 */
export function retry<R>(
  fn: () => R | PromiseLike<R>,
  options: BackoffOptions<R> = {},
): Promise<R> {
  if (typeof fn !== 'function')
    return Promise.reject(new TypeError(`retry: 'fn' must be a function, got ${describe(fn)}`));
  let backoff: Backoff<R>;
  try {
    backoff = backoffFor<R>('retry', options);
  } catch (error) {
    return Promise.reject(error);
  }
  // A method name would fail only when the hook is due (after fn ran): refuse it now.
  const policy = backoff.core.policy;
  for (const name of METHOD_NAME_OPTIONS)
    if (typeof policy[name] === 'string')
      return Promise.reject(
        new TypeError(
          `retry: '${name}' names a method, got ${describe(policy[name])}; method names only work on decorated methods`,
        ),
      );
  return backoff.execute(fn);
}
