/**
 * The engine: one `Execution` per `execute()` call, driven by callbacks rather than async/await so
 * the happy path costs one promise, two small objects and no timer of its own.
 *
 * Life of an execution: start → attempt → (success → resolve) | (failure → decide → pause →
 * attempt ...) | (give up → reject). A deadline expiry or a cancellation can cut in at any point;
 * `settle()` is the single place that releases what the execution holds.
 */

import { Attempt, type AttemptChild, attemptStorage } from './attempt.js';
import {
  FifoTimerQueue,
  nextMicrotask,
  now,
  startTimer,
  stopTimer,
  type Timer,
  type TimerNode,
} from './clock.js';
import { AttemptTimeoutError, DeadlineExceededError, RetryConditionError } from './errors.js';
import { emptyStatistics, type Policy } from './options.js';
import { type Cancellable, NOT_ABORTED, type SignalLink } from './signals.js';
import type { FailureKind, GiveupEvent, HookResult, PolicyDecision } from './types.js';
import { describe, MAX_TIMER_MS } from './validate.js';

/** What the instances made by `withSignal` share with the instance they came from. */
export interface Core {
  readonly policy: Policy;
  readonly stats: ReturnType<typeof emptyStatistics>;
  readonly attemptQueue: FifoTimerQueue | undefined;
  readonly deadlineQueue: FifoTimerQueue | undefined;
  /** No attempt timeout and no deadline: only signals or an enclosing attempt can cut in. */
  readonly unbounded: boolean;
}

/** What the code-block form hooks into. */
export interface ManualDriver {
  /** A new attempt has started; yield it to the loop body. */
  started(attempt: Attempt): void;
  /** The attempt ran past `attemptTimeout` while the body was still running. */
  timedOut(attempt: Attempt, error: AttemptTimeoutError): void;
}

export function createCore(policy: Policy): Core {
  return {
    policy,
    stats: emptyStatistics(),
    attemptQueue:
      policy.attemptTimeout === Number.POSITIVE_INFINITY
        ? undefined
        : new FifoTimerQueue(policy.attemptTimeout),
    deadlineQueue:
      policy.deadline === Number.POSITIVE_INFINITY || policy.deadline === 0
        ? undefined
        : new FifoTimerQueue(policy.deadline),
    unbounded:
      policy.attemptTimeout === Number.POSITIVE_INFINITY &&
      policy.deadline === Number.POSITIVE_INFINITY,
  };
}

type GiveupReason = GiveupEvent['reason'];

enum Phase {
  Attempt = 0,
  Deciding = 1,
  Pausing = 2,
  Succeeding = 3,
  GivingUp = 4,
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/** Runs `fn` under the policy of `core`; see `Backoff.execute`. */
export function run<R>(
  core: Core,
  link: SignalLink | undefined,
  fn: (...args: any[]) => unknown,
  thisArg: unknown,
  args: unknown[],
): Promise<R> {
  const parent = attemptStorage.getStore();
  if (link === undefined && parent === undefined && core.unbounded) {
    // Nothing can cut into an attempt: the execution's promise can be the attempt's own
    // `.then`, which saves a promise and a closure per call.
    return runUnbounded(core, fn, thisArg, args) as Promise<R>;
  }
  return new Promise<R>((resolve, reject) => {
    const execution = new Execution(core, link, fn, thisArg, args);
    execution.resolve = resolve as (value: unknown) => void;
    execution.reject = reject;
    execution.start(parent);
  });
}

function noop(): void {}

/** Calls `fn` for `attempt`: inside its context, unless the policy says `context: false`. */
function callInAttempt(
  core: Core,
  attempt: Attempt,
  fn: (...args: any[]) => unknown,
  thisArg: unknown,
  args: unknown[],
): unknown {
  return core.policy.context
    ? attemptStorage.run(attempt, Reflect.apply, fn, thisArg, args)
    : Reflect.apply(fn, thisArg, args);
}

/** An attempt's owner until an execution takes it over (unbounded attempts have no timers). */
const UNOWNED = { onAttemptTimer(): void {} };

/**
 * The fast path for unbounded policies outside any attempt: nothing can cut into the attempt, so
 * the execution's promise is the attempt's own `.then`, and the `Execution` object is built only
 * if the first attempt does not simply succeed.
 */
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
    return execution.deferred(() => execution.report(attempt, 'error', error, true));
  }
  if (value instanceof Promise) {
    return value.then(
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
  }
  const execution = Execution.adopt(core, fn, thisArg, args, attempt, t);
  return execution.deferred(() => execution.follow(attempt, value));
}

/**
 * Whether a timer still to run will end `attempt`, an enclosing attempt whose bound `at` has
 * reached, so that the nested execution `child` may leave its verdict to it. The bound may be the
 * attempt's own timeout, its execution's deadline, or inherited from further out: the walk goes
 * up to the attempt whose timer enforces it, and gives up if an attempt on the way has finished
 * (nothing will end it then). `child` is registered on every attempt on the way, so that whichever
 * of them ends without an abort (its answer read first, on a late event loop) hands the verdict
 * back.
 */
function leaveToEnclosing(attempt: Attempt, at: number, child: AttemptChild): boolean {
  const chain: Attempt[] = [];
  for (let current: Attempt | undefined = attempt; current !== undefined; ) {
    const owner: unknown = current.owner;
    if (current.finished || !(owner instanceof Execution)) return false;
    chain.push(current);
    if (owner.enforcesBound(current, at)) {
      for (const link of chain) link.handOff(child);
      return true;
    }
    current = owner.parent;
  }
  return false;
}

export class Execution implements TimerNode, AttemptChild, Cancellable {
  // Deadline-queue entry fields: the execution is its own entry.
  tExpiresAt = Number.POSITIVE_INFINITY;
  tPrev: TimerNode | null = null;
  tNext: TimerNode | null = null;
  tLive = false;
  // Signal-link list fields.
  linkPrev: Cancellable | null = null;
  linkNext: Cancellable | null = null;
  resolve: (value: unknown) => void = noop;
  reject: (reason: unknown) => void = noop;
  /** Set for the code-block form (`backoff.attempts()`): the loop body is the attempt. */
  driver: ManualDriver | undefined = undefined;

  private settled = false;
  private phase = Phase.Attempt;
  /** The enclosing attempt, if this execution started inside one. */
  parent: Attempt | undefined = undefined;
  private startedAt = 0;
  /** The nearest bound: this execution's own deadline or the enclosing attempt's expiry. */
  private deadlineAt = Number.POSITIVE_INFINITY;
  private ownDeadlineAt = Number.POSITIVE_INFINITY;
  private attempts = 0;
  private current: Attempt | undefined = undefined;
  private attemptStartedAt = 0;
  private pauseTimer: Timer | undefined = undefined;
  private hasFailure = false;
  private lastKind: FailureKind = 'error';
  private lastOutcome: unknown = undefined;
  private lastRetryKind: FailureKind | undefined = undefined;
  private previousDelay: number | undefined = undefined;
  private successValue: unknown = undefined;
  private conditionError: RetryConditionError | undefined = undefined;
  /** The attempt whose verdict was left to the enclosing attempt's timer (see `onAttemptTimer`). */
  private handedOff: Attempt | undefined = undefined;
  /** A pause ended past the enclosing attempt's bound; the next attempt waits for its verdict. */
  private pausedPastBound = false;

  constructor(
    private readonly core: Core,
    private readonly link: SignalLink | undefined,
    private readonly fn: (...args: any[]) => unknown,
    private readonly thisArg: unknown,
    private readonly args: unknown[],
  ) {}

  /** Takes over an attempt started by the unbounded fast path. */
  static adopt(
    core: Core,
    fn: (...args: any[]) => unknown,
    thisArg: unknown,
    args: unknown[],
    attempt: Attempt,
    startedAt: number,
  ): Execution {
    const execution = new Execution(core, undefined, fn, thisArg, args);
    execution.startedAt = startedAt;
    execution.attemptStartedAt = startedAt;
    execution.attempts = 1;
    execution.current = attempt;
    attempt.owner = execution;
    return execution;
  }

  /** Continues on the general path behind a promise of its own. */
  deferred(next: () => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      next();
    });
  }

  follow(attempt: Attempt, value: unknown): void {
    if (!isThenable(value)) {
      this.onFulfilled(attempt, value);
      return;
    }
    try {
      value.then(
        (result) => this.onFulfilled(attempt, result),
        (error) => this.onRejected(attempt, error),
      );
    } catch (error) {
      this.onRejected(attempt, error);
    }
  }

  start(parent: Attempt | undefined): void {
    const link = this.link;
    if (link !== undefined) {
      const reason = link.abortedReason();
      if (reason !== NOT_ABORTED) {
        this.settled = true;
        this.reject(reason);
        return;
      }
    }
    if (parent !== undefined) {
      if (parent.aborted) {
        this.settled = true;
        this.reject(parent.reason);
        return;
      }
      // An attempt that already ended normally no longer bounds work it left running.
      if (!parent.finished) {
        this.parent = parent;
        parent.addChild(this);
      }
    }
    const policy = this.core.policy;
    const t = now();
    this.startedAt = t;
    let deadlineAt = t + policy.deadline;
    this.ownDeadlineAt = deadlineAt;
    if (this.parent !== undefined && this.parent.expiresAt < deadlineAt)
      deadlineAt = this.parent.expiresAt;
    this.deadlineAt = deadlineAt;
    if (deadlineAt <= t) {
      this.settle();
      this.core.stats.giveUps++;
      this.reject(
        new DeadlineExceededError(
          policy.deadline === Number.POSITIVE_INFINITY ? 0 : policy.deadline,
          0,
        ),
      );
      return;
    }
    this.core.deadlineQueue?.push(this, t);
    link?.add(this);
    this.runAttempt(t);
  }

  /** Starts the next attempt at time `t`. */
  private runAttempt(t: number): void {
    const core = this.core;
    const attempt = new Attempt(this, ++this.attempts, this.deadlineAt);
    core.stats.attempts++;
    this.current = attempt;
    this.phase = Phase.Attempt;
    this.attemptStartedAt = t;
    const queue = core.attemptQueue;
    if (queue !== undefined) {
      queue.push(attempt, t);
      if (attempt.tExpiresAt < attempt.expiresAt) attempt.expiresAt = attempt.tExpiresAt;
    }
    if (this.driver !== undefined) {
      this.driver.started(attempt);
      return;
    }
    let value: unknown;
    try {
      value = callInAttempt(core, attempt, this.fn, this.thisArg, this.args);
    } catch (error) {
      // A synchronous throw: go through a microtask before any retry so that a function that
      // always throws cannot recurse this stack.
      this.onRejected(attempt, error, true);
      return;
    }
    this.follow(attempt, value);
  }

  private onFulfilled(attempt: Attempt, value: unknown): void {
    if (attempt.finished || this.settled) return; // late result of an abandoned attempt
    this.endAttempt(attempt);
    const policy = this.core.policy;
    if (policy.retryIf !== undefined) {
      let again: boolean;
      try {
        again = policy.retryIf(value);
      } catch (error) {
        this.fail(error);
        return;
      }
      if (again) {
        this.core.stats.errors++;
        this.afterFailure('result', value, false);
        return;
      }
    }
    this.succeed(value);
  }

  private onRejected(attempt: Attempt, error: unknown, wasSync = false): void {
    if (attempt.finished || this.settled) return; // late rejection of an abandoned attempt
    this.endAttempt(attempt);
    this.core.stats.errors++;
    this.afterFailure('error', error, wasSync);
  }

  /** Called by the attempt-timeout queue. */
  onAttemptTimer(attempt: Attempt, at: number): void {
    if (attempt.finished || this.settled) return;
    // Judge as of when this attempt's timeout came due, not when its timer ran (late, on a busy
    // event loop, or when a verdict is handed back): whichever bound came first decides.
    const due = Math.min(at, attempt.tExpiresAt);
    if (due >= this.ownDeadlineAt) {
      this.onTimer(at);
      return;
    }
    const parent = this.parent;
    if (due >= this.deadlineAt && parent !== undefined && leaveToEnclosing(parent, due, this)) {
      // The enclosing attempt's bound is reached at the same instant: the timer that enforces it
      // cancels this execution with its reason, exactly as if it had fired first.
      this.handedOff = attempt;
      return;
    }
    const stats = this.core.stats;
    const error = new AttemptTimeoutError(this.core.policy.attemptTimeout, attempt.attempt);
    this.endAttempt(attempt);
    stats.errors++;
    stats.timeouts++;
    attempt.abort(error);
    // An abort listener may have cancelled the execution synchronously.
    if (this.settled) return;
    // A loop body cannot be abandoned: the decision waits until the body reports back. The
    // attempt has failed already, though: a deadline passing meanwhile rejects with this error.
    if (this.driver !== undefined) {
      this.recordFailure('timeout', error);
      this.driver.timedOut(attempt, error);
    } else this.afterFailure('timeout', error, false);
  }

  /** The code-block form reports how the attempt it yielded ended. */
  report(attempt: Attempt, kind: FailureKind | 'success', value: unknown, wasSync = false): void {
    if (this.settled) return;
    // A timed-out attempt was already ended by its timer; only the decision was waiting.
    if (kind === 'timeout') this.afterFailure(kind, value, false);
    else if (attempt.finished) return;
    else if (kind === 'success') this.onFulfilled(attempt, value);
    else this.onRejected(attempt, value, wasSync);
  }

  /** The code-block form's loop was left without a report (an uncaught throw or a bare `break`). */
  abandon(): void {
    const attempt = this.current;
    if (!this.settle()) return;
    if (attempt !== undefined && !attempt.finished) this.endAttempt(attempt);
    this.core.stats.giveUps++;
  }

  /** Called by the deadline queue (and when an attempt timer finds the deadline passed). */
  onTimer(_at: number): void {
    if (this.settled) return;
    const policy = this.core.policy;
    const error = new DeadlineExceededError(policy.deadline, this.attempts);
    const attempt = this.current;
    const phase = this.phase;
    this.settle();
    if (attempt !== undefined && !attempt.finished) {
      this.endAttempt(attempt);
      this.core.stats.cancels++;
      attempt.abort(error);
    }
    if (phase === Phase.Succeeding) {
      // The result was ready; only the onSuccess hook was still running.
      this.core.stats.successes++;
      this.resolve(this.successValue);
      return;
    }
    if (phase === Phase.GivingUp) {
      // onGiveup was already told; only its promise was still pending.
      this.rejectFinally(error);
      return;
    }
    this.core.stats.giveUps++;
    const onGiveup = policy.onGiveup;
    if (onGiveup !== undefined) {
      // The deadline has passed, so the hook is not awaited; a synchronous throw still replaces
      // the rejection, as for every hook.
      const kind = this.hasFailure ? this.lastKind : 'timeout';
      try {
        const result = this.resolveCallable(onGiveup, 'onGiveup').call(
          this.thisArg,
          this.giveupEvent('deadline', this.hasFailure ? this.finalError() : error, kind),
        ) as HookResult;
        if (isThenable(result)) result.then(undefined, noop);
      } catch (hookError) {
        this.reject(hookError);
        return;
      }
    }
    this.rejectFinally(error);
  }

  /** Settles a finished execution after a final failure: the last failure, or `error` if none. */
  private rejectFinally(error: unknown): void {
    if (!this.hasFailure) this.reject(error);
    else if (this.lastKind === 'result' && this.core.policy.returnLastResult)
      this.resolve(this.lastOutcome);
    else this.reject(this.finalError());
  }

  private giveupEvent(reason: GiveupReason, error: unknown, kind: FailureKind): GiveupEvent {
    return {
      attempt: this.attempts,
      kind,
      error,
      result: kind === 'result' ? this.lastOutcome : undefined,
      reason,
      elapsed: now() - this.startedAt,
    };
  }

  /** Stops the execution at once with `reason`: an instance signal or an enclosing attempt aborted. */
  cancel(reason: unknown): void {
    if (this.settled) return;
    const attempt = this.current;
    this.settle();
    if (attempt !== undefined && !attempt.finished) {
      this.endAttempt(attempt);
      this.core.stats.cancels++;
      attempt.abort(reason);
    }
    this.reject(reason);
  }

  /** Whether this execution's own timers will end `attempt` (one of its attempts) by `at`. */
  enforcesBound(attempt: Attempt, at: number): boolean {
    return (attempt.tLive && attempt.tExpiresAt <= at) || (this.tLive && this.tExpiresAt <= at);
  }

  /** A parent attempt this execution left its verdict to ended without an abort. */
  resumeHandoff(): void {
    if (this.settled) return;
    if (this.pausedPastBound) {
      this.pausedPastBound = false;
      this.runAttempt(now());
      return;
    }
    const attempt = this.handedOff;
    this.handedOff = undefined;
    if (attempt !== undefined && !attempt.finished) this.onAttemptTimer(attempt, now());
  }

  private endAttempt(attempt: Attempt): void {
    attempt.finished = true;
    // Children that left their verdict to this attempt get it back, unless an abort follows at
    // once (in the same call stack) and cancels them.
    if (attempt.handoffs !== undefined) nextMicrotask(() => attempt.resumeHandoffs());
    this.core.attemptQueue?.remove(attempt);
    const stats = this.core.stats;
    stats.done++;
    stats.sumTime += now() - this.attemptStartedAt;
  }

  /** Releases everything the execution holds; returns false if it was already settled. */
  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.core.deadlineQueue?.remove(this);
    this.link?.delete(this);
    this.parent?.removeChild(this);
    if (this.pauseTimer !== undefined) {
      stopTimer(this.pauseTimer);
      this.pauseTimer = undefined;
    }
    return true;
  }

  private succeed(value: unknown): void {
    const policy = this.core.policy;
    policy.budget?.recordSuccess(this.lastRetryKind);
    if (policy.onSuccess !== undefined) {
      this.phase = Phase.Succeeding;
      this.successValue = value;
      const elapsed = now() - this.startedAt;
      this.hook(
        'onSuccess',
        policy.onSuccess,
        [{ attempt: this.attempts, result: value, elapsed }],
        () => {
          if (!this.settle()) return;
          this.core.stats.successes++;
          this.resolve(value);
        },
      );
      return;
    }
    this.settle();
    this.core.stats.successes++;
    this.resolve(value);
  }

  /** Rejects with an error raised by the library's own callbacks (a hook, a predicate, a policy). */
  private fail(error: unknown): void {
    const attempt = this.current;
    if (!this.settle()) return;
    if (attempt !== undefined && !attempt.finished) this.endAttempt(attempt);
    // A throwing onGiveup ends an execution that was already counted as given up.
    if (this.phase !== Phase.GivingUp) this.core.stats.giveUps++;
    this.reject(error);
  }

  private finalError(): unknown {
    if (this.lastKind !== 'result') return this.lastOutcome;
    // One object per execution, so onGiveup sees the very error the execution rejects with.
    this.conditionError ??= new RetryConditionError(this.lastOutcome, this.attempts);
    return this.conditionError;
  }

  private isRetriable(error: unknown): boolean {
    const policy = this.core.policy;
    if (policy.retryAll || error instanceof AttemptTimeoutError) return true;
    const exceptions = policy.exceptions;
    for (let i = 0; i < exceptions.length; i++) if (error instanceof exceptions[i]!) return true;
    return false;
  }

  /** A hook or policy given as a method name is looked up on `this` of the decorated method. */
  private resolveCallable(value: Function | string, option: string): Function {
    if (typeof value === 'function') return value;
    const target = this.thisArg as Record<string, unknown> | null | undefined;
    const method = target?.[value];
    if (typeof method !== 'function')
      throw new TypeError(
        `Backoff: '${option}' names the method '${value}', but this.${value} is ${describe(method)}`,
      );
    return method;
  }

  /**
   * Calls a hook; continues with `next` when it returns (or its promise fulfils). A hook that throws
   * or rejects ends the execution with that error. A pending hook never holds the execution past
   * its deadline: the deadline timer still fires.
   */
  private hook(option: string, fn: Function | string, args: unknown[], next: () => void): void {
    let result: HookResult;
    try {
      result = this.resolveCallable(fn, option).apply(this.thisArg, args) as HookResult;
    } catch (error) {
      this.fail(error);
      return;
    }
    if (isThenable(result)) {
      result.then(
        () => {
          if (!this.settled) next();
        },
        (error) => this.fail(error),
      );
      return;
    }
    next();
  }

  /** After a failed attempt: retry (now or after a pause) or give up. */
  /** The outcome the execution rejects with if it ends now (see `finalError`). */
  private recordFailure(kind: FailureKind, outcome: unknown): void {
    this.hasFailure = true;
    this.lastKind = kind;
    this.lastOutcome = outcome;
  }

  private afterFailure(kind: FailureKind, outcome: unknown, wasSync: boolean): void {
    const policy = this.core.policy;
    this.phase = Phase.Deciding;
    this.recordFailure(kind, outcome);

    try {
      policy.budget?.recordFailure(kind);
      this.decide(kind, outcome, wasSync);
    } catch (error) {
      // A policy, strategy or extractor threw (or returned something invalid).
      this.fail(error);
    }
  }

  private decide(kind: FailureKind, outcome: unknown, wasSync: boolean): void {
    const policy = this.core.policy;
    const error = kind === 'result' ? undefined : outcome;
    const result = kind === 'result' ? outcome : undefined;
    if (kind === 'error' && !this.isRetriable(outcome)) return this.giveUp('not-retriable');
    if (kind !== 'result' && policy.giveup !== undefined && policy.giveup(outcome))
      return this.giveUp('giveup');

    const t = now();
    let delay: number | undefined;
    if (policy.policy !== undefined) {
      const elapsed = t - this.startedAt;
      const decision = this.resolveCallable(policy.policy, 'policy').call(
        this.thisArg,
        this.attempts,
        error,
        {
          attempt: this.attempts,
          kind,
          result,
          elapsed,
          remaining: this.deadlineAt - t,
        },
      ) as PolicyDecision;
      let abandon: unknown;
      if (Array.isArray(decision)) [abandon, delay] = decision;
      else if (typeof decision === 'object' && decision !== null)
        ({ abandon, delay } = decision as { abandon: unknown; delay?: number });
      else
        throw new TypeError(
          `Backoff: 'policy' must return { abandon, delay } or [abandon, delay], got ${describe(decision)}`,
        );
      if (abandon) return this.giveUp('policy');
      if (delay !== undefined) checkDelay(delay, "the delay returned by 'policy'");
    }
    if (this.attempts >= policy.maxTries) return this.giveUp('max-tries');

    if (delay === undefined) {
      if (policy.strategy !== undefined) {
        delay = policy.strategy.delay({
          attempt: this.attempts,
          fails: this.attempts,
          kind,
          error,
          result,
          previousDelay: this.previousDelay,
          elapsed: t - this.startedAt,
          remaining: this.deadlineAt - t,
          random: policy.random,
        });
        checkDelay(delay, "the delay returned by 'pause'");
      } else delay = policy.pause;
    }

    if (policy.retryAfter !== undefined) {
      const hint = policy.retryAfter(outcome, kind);
      if (hint !== null && hint !== undefined) {
        let ms: number;
        if (hint instanceof Date) ms = Math.max(0, hint.getTime() - Date.now());
        else if (typeof hint === 'number' && !Number.isNaN(hint)) ms = hint;
        else
          throw new TypeError(
            `Backoff: 'retryAfter' must return milliseconds, a Date, null or undefined, got ${describe(hint)}`,
          );
        // Longer than setTimeout can wait (about 24.8 days) is as unusable as a refusal.
        if (ms < 0 || ms > policy.maxRetryAfter || ms > MAX_TIMER_MS)
          return this.giveUp('pushback');
        if (ms > delay) delay = ms;
      }
    }

    if (this.crossesDeadline(delay, t)) return this.giveUp('deadline');
    if (policy.budget !== undefined && !policy.budget.tryAcquire(kind)) {
      this.core.stats.budgetRefusals++;
      return this.giveUp('budget');
    }
    this.lastRetryKind = kind;
    this.previousDelay = delay;
    const runsAfterFailure = policy.afterFailure !== undefined && kind !== 'result';
    if (!runsAfterFailure && policy.onRetry === undefined) return this.pause(delay, wasSync);
    this.retryHooks(kind, error, result, delay, t, runsAfterFailure, wasSync);
  }

  /** A pause of `delay` from `t` that would end at or after the deadline is not slept. */
  private crossesDeadline(delay: number, t: number): boolean {
    return delay > 0 ? t + delay >= this.deadlineAt : t >= this.deadlineAt;
  }

  /** Runs afterFailure, then onRetry, then the pause; hooks take time, so the deadline is checked again. */
  private retryHooks(
    kind: FailureKind,
    error: unknown,
    result: unknown,
    delay: number,
    t: number,
    runsAfterFailure: boolean,
    wasSync: boolean,
  ): void {
    const policy = this.core.policy;
    const afterHooks = () => {
      if (this.crossesDeadline(delay, now())) return this.giveUp('deadline');
      this.pause(delay, wasSync);
    };
    const onRetry = policy.onRetry;
    const runOnRetry =
      onRetry === undefined
        ? afterHooks
        : () =>
            this.hook(
              'onRetry',
              onRetry,
              [
                {
                  attempt: this.attempts,
                  kind,
                  error,
                  result,
                  delay,
                  elapsed: t - this.startedAt,
                  remaining: this.deadlineAt - t,
                },
              ],
              afterHooks,
            );
    if (runsAfterFailure)
      this.hook('afterFailure', policy.afterFailure!, [error, this.attempts], runOnRetry);
    else runOnRetry();
  }

  private pause(delay: number, wasSync: boolean): void {
    if (this.settled) return;
    // Counted here, once every hook agreed: a hook that throws or runs out the clock means no retry.
    this.core.stats.retries++;
    this.phase = Phase.Pausing;
    if (delay === 0) {
      if (wasSync)
        nextMicrotask(() => {
          if (!this.settled) this.runAttempt(now());
        });
      else this.runAttempt(now());
      return;
    }
    this.pauseTimer = startTimer(() => {
      this.pauseTimer = undefined;
      this.core.stats.sleptTime += delay;
      if (this.settled) return;
      const t = now();
      // A late pause timer (a busy event loop) may run after the deadline, whose own verdict
      // waits for the check phase: start no attempt past it. Past an enclosing attempt's bound,
      // wait for the timer that ends that attempt; should it answer instead, go on then.
      if (t >= this.ownDeadlineAt) this.onTimer(t);
      else if (
        t >= this.deadlineAt &&
        this.parent !== undefined &&
        leaveToEnclosing(this.parent, this.deadlineAt, this)
      )
        this.pausedPastBound = true;
      else this.runAttempt(t);
    }, delay);
  }

  private giveUp(reason: GiveupReason): void {
    const policy = this.core.policy;
    this.core.stats.giveUps++;
    this.phase = Phase.GivingUp;
    const finish = () => {
      if (this.settle()) this.rejectFinally(undefined);
    };
    if (policy.onGiveup === undefined) return finish();
    this.hook(
      'onGiveup',
      policy.onGiveup,
      [this.giveupEvent(reason, this.finalError(), this.lastKind)],
      finish,
    );
  }
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
