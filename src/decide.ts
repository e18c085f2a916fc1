/**
 * The retry decision, apart from the machinery that waits and calls: given the policy, how the
 * attempt failed and where the execution stands in time, either give up (with the reason) or retry
 * after a delay. Nothing here touches a timer, a statistic or an execution, so each rule can be
 * tested on its own.
 *
 * The engine asks in this order: {@link isRetriable}, then the user's `giveup` and `policy`
 * callbacks (which may be async, so the engine awaits them), then {@link planRetry} for the rest:
 * `maxTries`, the pause, server pushback and the deadline. The retry budget is asked last, since
 * asking it spends from it.
 */
import { AttemptTimeoutError } from './errors.js';
import type { Policy } from './options.js';
import { pushbackDelay, REFUSE_RETRY } from './pushback.js';
import type { FailureKind, GiveupEvent } from './types.js';
import { describe, MAX_TIMER_MS } from './validate.js';

/** Why an execution stops retrying. */
export type GiveupReason = GiveupEvent['reason'];

/** A failed attempt: how it failed, and the error thrown or the result `retryIf` marked. */
export interface Failure {
  readonly kind: FailureKind;
  readonly outcome: unknown;
}

/** Where an execution stands when it decides (times in ms on the engine's clock). */
export interface Moment {
  /** Attempts made so far (the one that just failed included). */
  readonly attempts: number;
  /** When the execution started. */
  readonly startedAt: number;
  /** Now. */
  readonly at: number;
  /** The nearest bound: the deadline, or an enclosing attempt's expiry; `Infinity` for none. */
  readonly deadlineAt: number;
  /** The pause before the previous retry, if there was one. */
  readonly previousDelay: number | undefined;
}

/** Give up with a reason, or retry after `delay` ms. */
export type Plan =
  | { readonly giveUp: GiveupReason; readonly delay?: undefined }
  | { readonly giveUp?: undefined; readonly delay: number };

/**
 * Whether a thrown error is worth another attempt: always for an attempt timeout; else when
 * `retryAll` is set, when it is an instance of one of `exceptions`, or when `retryOn` says so.
 * @throws TypeError when `retryOn` returns something other than a boolean.
 */
export function isRetriable(policy: Policy, error: unknown): boolean {
  if (policy.retryAll) return true;
  const exceptions = policy.exceptions;
  for (let i = 0; i < exceptions.length; i++) if (error instanceof exceptions[i]!) return true;
  // After the listed classes: the brand check is a call, and most errors match a listed class.
  if (error instanceof AttemptTimeoutError) return true;
  if (policy.retryOn === undefined) return false;
  const verdict: unknown = policy.retryOn(error);
  if (typeof verdict !== 'boolean')
    // A promise would read as `true`: an async classifier is a mistake, not a slow yes.
    throw new TypeError(
      `Backoff: 'retryOn' must return a boolean (synchronously), got ${describe(verdict)}`,
    );
  return verdict;
}

/** Whether the policy names any way to make a thrown error retriable. */
export function hasErrorFilter(policy: Policy): boolean {
  return (
    policy.retryAll ||
    policy.exceptions.length > 0 ||
    policy.retryOn !== undefined ||
    policy.policy !== undefined
  );
}

/** What a `policy` callback decided, checked: abandon, and the delay that replaces the pause. */
export function readPolicyDecision(decision: unknown): {
  abandon: boolean;
  delay: number | undefined;
} {
  let abandon: unknown;
  let delay: unknown;
  if (Array.isArray(decision)) [abandon, delay] = decision;
  else if (typeof decision === 'object' && decision !== null)
    ({ abandon, delay } = decision as { abandon: unknown; delay?: unknown });
  else
    throw new TypeError(
      `Backoff: 'policy' must return { abandon, delay } or [abandon, delay], got ${describe(decision)}`,
    );
  if (abandon) return { abandon: true, delay: undefined };
  if (delay !== undefined) checkDelay(delay, "the delay returned by 'policy'");
  return { abandon: false, delay: delay as number | undefined };
}

/**
 * The rest of the decision after a retriable failure: `maxTries`, the pause (the policy
 * callback's delay, else the strategy's, else the constant `pause`), at least the server's
 * pushback, and no pause that would end at or after the deadline.
 *
 * @throws TypeError or RangeError when a strategy or a pushback extractor returns something
 *   unusable.
 */
export function planRetry(
  policy: Policy,
  failure: Failure,
  moment: Moment,
  policyDelay: number | undefined,
): Plan {
  if (moment.attempts >= policy.maxTries) return { giveUp: 'max-tries' };
  const { kind, outcome } = failure;
  let delay = policyDelay;
  if (delay === undefined) {
    if (policy.strategy === undefined) delay = policy.pause;
    else {
      const { at, startedAt, deadlineAt } = moment;
      delay = policy.strategy.delay({
        attempt: moment.attempts,
        fails: moment.attempts,
        kind,
        error: kind === 'result' ? undefined : outcome,
        result: kind === 'result' ? outcome : undefined,
        previousDelay: moment.previousDelay,
        elapsed: at - startedAt,
        remaining: deadlineAt - at,
        random: policy.random,
      });
      checkDelay(delay, "the delay returned by 'pause'");
    }
  }
  if (policy.retryAfter !== undefined) {
    const pushback = pushbackDelay(policy.retryAfter(outcome, kind), policy.maxRetryAfter);
    if (pushback === REFUSE_RETRY) return { giveUp: 'pushback' };
    if (pushback !== undefined && pushback > delay) delay = pushback;
  }
  if (crossesDeadline(delay, moment.at, moment.deadlineAt)) return { giveUp: 'deadline' };
  return { delay };
}

/** A pause of `delay` from `at` that would end at or after `deadlineAt` is not slept. */
export function crossesDeadline(delay: number, at: number, deadlineAt: number): boolean {
  return delay > 0 ? at + delay >= deadlineAt : at >= deadlineAt;
}

function checkDelay(delay: unknown, what: string): asserts delay is number {
  if (typeof delay !== 'number')
    throw new TypeError(
      `Backoff: ${what} must be a number of milliseconds, got ${describe(delay)}`,
    );
  if (!(delay >= 0) || delay > MAX_TIMER_MS)
    throw new RangeError(
      `Backoff: ${what} must be >= 0 and <= ${MAX_TIMER_MS} ms, got ${describe(delay)}`,
    );
}
