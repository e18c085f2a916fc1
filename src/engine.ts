/**
 * The entry point of every call: `run()` builds an {@link Execution}, except on the fast path for
 * policies that nothing can cut into (no attempt timeout, no deadline, no breaker, no signal, no
 * enclosing attempt). There the execution's promise is the attempt's own `.then`; if the first
 * attempt fails, the retries run on a plain async loop ({@link retryUnbounded}) when there is no
 * callback to await between them, and on an `Execution` otherwise.
 */
import { Attempt, type AttemptOwner } from './attempt.js';
import { immediateTurn, nextTurn, now, startTimer } from './clock.js';
import { isRetriable, planRetry } from './decide.js';
import { type Core, Execution, warnIfNothingRetries } from './execution.js';
import { attemptStorage } from './process-state.js';
import type { SignalLink } from './signals.js';
import { countAttemptEnd, countFailure, countSettlement } from './statistics.js';

export { type Core, createCore, Execution, type ManualDriver } from './execution.js';

/**
 * Runs `fn` under the policy of `core`; see `Backoff.execute`.
 *
 * The fast path is written out here rather than called, as is the call of `fn` (see `runAttempt`):
 * each frame between the caller and `fn` costs every error `fn` throws at once a little time and
 * the caller a line of its stack.
 */
export function run<R>(
  core: Core,
  link: SignalLink | undefined,
  fn: (...args: any[]) => unknown,
  thisArg: unknown,
  args: unknown[],
): Promise<R> {
  const parent = attemptStorage.getStore();
  if (link !== undefined || parent !== undefined || !core.unbounded) {
    // The execution keeps its arguments as long as it runs: most calls have none, and then share
    // one empty array (nothing writes to it: the arguments are only ever spread into `fn`).
    const execution = new Execution(core, link, fn, thisArg, args.length === 0 ? NO_ARGS : args);
    // Started outside the promise's executor: one frame fewer between the caller and `fn`.
    const promise = new Promise<R>(captureSettlers);
    execution.resolve = settleResolve!;
    execution.reject = settleReject!;
    settleResolve = settleReject = undefined;
    try {
      execution.start(parent);
    } catch (error) {
      // As a throwing executor would (start() catches what it calls; this is the engine's bug).
      execution.reject(error);
    }
    return promise;
  }

  // Unbounded: nothing can end the attempt but itself.
  const t = now();
  const attempt = new Attempt(UNOWNED, 1);
  core.stats.attempts++;
  let value: unknown;
  try {
    if (core.policy.context) {
      // Entered and left by hand rather than with `attemptStorage.run(attempt, fn)`: `run` is a
      // frame of its own between the caller and `fn`, and V8 captures every frame into each error
      // `fn` throws before its first await (~1 µs per error on Node 20). `parent` is undefined here.
      attemptStorage.enterWith(attempt);
      try {
        value = Reflect.apply(fn, thisArg, args);
      } finally {
        attemptStorage.enterWith(parent);
      }
    } else
      value =
        args.length === 0 && thisArg === undefined
          ? fn() // a direct call is a few ns cheaper than Reflect.apply, on the path where they show
          : Reflect.apply(fn, thisArg, args);
  } catch (error) {
    const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
    return execution.deferred(() => execution.report(attempt, 'error', error)) as Promise<R>;
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
            if (policy.budget !== undefined)
              try {
                policy.budget.recordSuccess(undefined);
              } catch (budgetError) {
                return giveUp(core, budgetError);
              }
            stats.successes++;
            return result;
          }
          const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
          return execution.deferred(() => execution.report(attempt, 'success', result));
        },
        (error) => {
          if (core.plainRetries) return retryUnbounded(core, fn, thisArg, args, attempt, t, error);
          const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
          return execution.deferred(() => execution.report(attempt, 'error', error));
        },
      ) as Promise<R>;
  } catch {
    // A proxy of a promise passes both checks, and the native `then` refuses it.
  }
  const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
  return execution.deferred(() => execution.follow(attempt, value)) as Promise<R>;
}

const NO_ARGS: unknown[] = [];
/** What {@link captureSettlers} was handed, read back at once: one executor for all executions. */
let settleResolve: ((value: any) => void) | undefined;
let settleReject: ((reason: unknown) => void) | undefined;

function captureSettlers(resolve: (value: any) => void, reject: (reason: unknown) => void): void {
  settleResolve = resolve;
  settleReject = reject;
}

/** An attempt's owner until an execution takes it over (nothing can end an unbounded attempt). */
const UNOWNED: AttemptOwner = {
  onAttemptTimer(): void {},
  enforcesBound: () => false,
  parent: undefined,
  deadlineAt: Number.POSITIVE_INFINITY,
  startingExpiresAt: Number.POSITIVE_INFINITY,
};

const promiseThen = Promise.prototype.then;
/** Settled once: `then` of it settles a microtask later (see {@link retryUnbounded}). */
const SETTLED = Promise.resolve();

/**
 * The rest of an unbounded execution whose first attempt failed with `error`, when nothing is to
 * be awaited between attempts. The decision is decide.ts's, as for an Execution; the loop itself
 * is `await`, which is cheaper than a state machine and keeps the caller's async frames in the
 * stack of an error thrown by a later attempt (V8 follows awaits from the attempt's promise to the
 * caller's).
 */
async function retryUnbounded(
  core: Core,
  fn: (...args: any[]) => unknown,
  thisArg: unknown,
  args: unknown[],
  first: Attempt,
  startedAt: number,
  error: unknown,
): Promise<unknown> {
  const { policy, stats } = core;
  let attempt = first;
  let attemptStartedAt = startedAt;
  let previousDelay: number | undefined;
  let lastTurn = -1;
  /** Whether this loop's promise already follows the execution's (see below). */
  let linked = false;
  for (;;) {
    const t = now();
    attempt.finished = true;
    countAttemptEnd(stats, 'failed', t - attemptStartedAt);
    countFailure(stats, false);
    // The delay of the retry, or the reason to stop (what the execution then rejects with).
    let delay: number | undefined;
    let stop: unknown = error;
    try {
      // In the order an Execution asks: is it retriable, then the budget.
      const retriable = isRetriable(policy, error);
      policy.budget?.recordFailure('error');
      if (!retriable) warnIfNothingRetries(core, error);
      else {
        const plan = planRetry(
          policy,
          { kind: 'error', outcome: error },
          {
            attempts: attempt.attempt,
            startedAt,
            at: t,
            deadlineAt: Number.POSITIVE_INFINITY,
            previousDelay,
          },
          undefined,
        );
        if (plan.giveUp !== undefined) delay = undefined;
        else if (policy.budget !== undefined && !policy.budget.tryAcquire('error'))
          stats.budgetRefusals++;
        else delay = plan.delay;
      }
    } catch (callbackError) {
      // A filter, strategy or budget threw: the execution ends with what it threw.
      delay = undefined;
      stop = callbackError;
    }
    if (delay === undefined) return giveUp(core, stop);
    previousDelay = delay;
    stats.retries++;
    // A retry at once starts in the synchronous run that judged the failure: at `t`, with no
    // clock read of its own (reading `globalThis.performance` goes through a getter).
    attemptStartedAt = t;
    if (delay > 0) {
      await new Promise<void>((resolve) => startTimer(resolve, delay));
      stats.sleptTime += delay;
      attemptStartedAt = now();
    } else {
      // At once, unless this execution already retried at once in this turn (see clock.ts).
      lastTurn = immediateTurn(lastTurn);
      if (lastTurn === -1) {
        await new Promise<void>(nextTurn);
        attemptStartedAt = now();
      } else if (!linked) {
        // The first retry, at once: this loop's promise was returned to the first attempt's
        // handler a moment ago, and the execution's promise takes it on in the next microtask.
        // The retry starts two microtasks on, after that, so that what it throws, at once or one
        // `await` in, shows the caller (V8 follows only reactions already attached). A derived
        // promise of a settled one is awaited rather than `undefined` twice: one resume of this
        // function instead of two, and half the promises (each runs the promise hooks on Node 20).
        await promiseThen.call(SETTLED);
      }
    }
    linked = true;
    attempt = new Attempt(UNOWNED, attempt.attempt + 1);
    stats.attempts++;
    let result: unknown;
    try {
      let value: unknown;
      if (core.policy.context) {
        // As in run(); the loop runs in the caller's context, where there is no attempt.
        attemptStorage.enterWith(attempt);
        try {
          value = Reflect.apply(fn, thisArg, args);
        } finally {
          attemptStorage.enterWith(undefined);
        }
      } else value = Reflect.apply(fn, thisArg, args);
      result = await value;
    } catch (failure) {
      error = failure;
      continue;
    }
    attempt.finished = true;
    countAttemptEnd(stats, 'fulfilled', now() - attemptStartedAt);
    try {
      policy.budget?.recordSuccess('error');
    } catch (budgetError) {
      return giveUp(core, budgetError);
    }
    countSettlement(stats, 'success');
    return result;
  }
}

function giveUp(core: Core, error: unknown): never {
  countSettlement(core.stats, 'giveup');
  throw error;
}
