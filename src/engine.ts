/**
 * The entry point of every call: `run()` builds an {@link Execution}, except on the fast path for
 * policies that nothing can cut into (no attempt timeout, no deadline, no breaker, no signal, no
 * enclosing attempt). There the execution's promise is the attempt's own `.then`, and the
 * `Execution` is built only if the first attempt does not simply succeed.
 */
import { Attempt, type AttemptOwner } from './attempt.js';
import { now } from './clock.js';
import { type Core, callInAttempt, Execution } from './execution.js';
import { attemptStorage } from './process-state.js';
import type { SignalLink } from './signals.js';

export { type Core, createCore, Execution, type ManualDriver } from './execution.js';

/** Runs `fn` under the policy of `core`; see `Backoff.execute`. */
export function run<R>(
  core: Core,
  link: SignalLink | undefined,
  fn: (...args: any[]) => unknown,
  thisArg: unknown,
  args: unknown[],
): Promise<R> {
  const parent = attemptStorage.getStore();
  if (link === undefined && parent === undefined && core.unbounded)
    return runUnbounded(core, fn, thisArg, args) as Promise<R>;
  return new Promise<R>((resolve, reject) => {
    const execution = new Execution(core, link, fn, thisArg, args);
    execution.resolve = resolve as (value: unknown) => void;
    execution.reject = reject;
    execution.start(parent);
  });
}

/** An attempt's owner until an execution takes it over (nothing can end an unbounded attempt). */
const UNOWNED: AttemptOwner = {
  onAttemptTimer(): void {},
  enforcesBound: () => false,
  parent: undefined,
};

const promiseThen = Promise.prototype.then;

function runUnbounded(
  core: Core,
  fn: (...args: any[]) => unknown,
  thisArg: unknown,
  args: unknown[],
): Promise<unknown> {
  const t = now();
  const attempt = new Attempt(UNOWNED, 1, Number.POSITIVE_INFINITY);
  core.stats.attempts++;
  let value: unknown;
  try {
    value = callInAttempt(core, attempt, fn, thisArg, args);
  } catch (error) {
    const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
    return execution.deferred(() => execution.report(attempt, 'error', error));
  }
  // Only a plain native promise is chained directly: its native `then` runs no code of the
  // value's own and returns a native promise. Anything else (a proxy, a subclass, a thenable)
  // takes the general path, which adopts it as `await` would.
  try {
    if (value instanceof Promise && value.constructor === Promise)
      return promiseThen.call(
        value,
        (result) => {
          const policy = core.policy;
          if (policy.retryIf === undefined && policy.onSuccess === undefined) {
            attempt.finished = true;
            const stats = core.stats;
            stats.done++;
            stats.sumTime += now() - t;
            policy.budget?.recordSuccess(undefined);
            stats.successes++;
            return result;
          }
          const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
          return execution.deferred(() => execution.report(attempt, 'success', result));
        },
        (error) => {
          const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
          return execution.deferred(() => execution.report(attempt, 'error', error));
        },
      );
  } catch {
    // A proxy of a promise passes both checks, and the native `then` refuses it.
  }
  const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
  return execution.deferred(() => execution.follow(attempt, value));
}
