/**
 * One execution: the state machine behind every `execute()` call. It is driven by callbacks
 * rather than async/await, so the happy path costs one promise, two small objects and no timer of
 * its own.
 *
 * ```text
 *            ┌─────────── breaker open ('wait') ──► Waiting ──┐
 *            │                                                ▼
 *  start ──► Attempting ──fulfilled──► (retryIf?) ──done──► Succeeding ──► resolve
 *            ▲   │ threw / timed out           │ not done
 *            │   ▼                             ▼
 *            │  Deciding ◄─────────────────────┘
 *            │   │ retry           │ give up (reason)
 *            │   ▼                 ▼
 *            └─ Pausing          GivingUp ──► reject (or resolve: returnLastResult)
 *
 *  From any state: the deadline, a signal or the enclosing attempt ──► Settled
 * ```
 *
 * Who does what: decide.ts makes the retry decision (pure); this file calls, classifies, waits
 * and counts. The nested-attempt hand-off is in handoff.ts, late timers in timer-queue.ts,
 * statistics in statistics.ts. `release()` is the single place that frees what an execution
 * holds, and `conclude()` the single place that settles its promise.
 */

import { AsyncResource } from 'node:async_hooks';
import { Attempt, type AttemptLike, type AttemptOwner } from './attempt.js';
import { nextMicrotask, now, retrySoon, startTimer, stopTimer, type Timer } from './clock.js';
import {
  crossesDeadline,
  type Failure,
  type GiveupReason,
  hasErrorFilter,
  isRetriable,
  planRetry,
  readPolicyDecision,
} from './decide.js';
import {
  attemptTimedOut,
  BrokenCircuitError,
  type DeadlineExceededError,
  deadlinePassed,
  RetryConditionError,
} from './errors.js';
import { leaveToEnclosing } from './handoff.js';
import { normalizeOptions, type Policy } from './options.js';
import { attemptStorage } from './process-state.js';
import type { Membership, SignalLink } from './signals.js';
import { NOT_ABORTED } from './signals.js';
import {
  type AttemptEnd,
  countAttemptEnd,
  countFailure,
  countSettlement,
  emptyStatistics,
  type Settlement,
  type Statistics,
} from './statistics.js';
import { isThenable, settleWith } from './thenables.js';
import {
  type AfterVerdicts,
  afterVerdicts,
  FifoTimerQueue,
  type TimerNode,
} from './timer-queue.js';
import type { BreakerPass, CircuitBreaker, FailureKind, GiveupEvent } from './types.js';
import { describe, messageOf } from './validate.js';

/** What the instances made by `withSignal` (and derived policies) share with their instance. */
export interface Core {
  readonly policy: Policy;
  readonly stats: Statistics;
  readonly attemptQueue: FifoTimerQueue | undefined;
  readonly deadlineQueue: FifoTimerQueue | undefined;
  /** No attempt timeout, no deadline, no breaker: only signals or an enclosing attempt can cut in. */
  readonly unbounded: boolean;
  /**
   * No callback to await between attempts (no hook, `giveup`, `policy` or `retryIf`): unbounded
   * executions retry on engine.ts's async loop instead of building an Execution.
   */
  readonly plainRetries: boolean;
  /** Notes kept once per instance (shared with derived policies). */
  readonly notes: { warnedNoFilter: boolean };
}

export function createCore(
  policy: Policy,
  stats: Statistics = emptyStatistics(),
  notes = { warnedNoFilter: false },
): Core {
  const timed = (ms: number) => ms !== Number.POSITIVE_INFINITY && ms !== 0;
  return {
    policy,
    stats,
    attemptQueue: timed(policy.attemptTimeout)
      ? new FifoTimerQueue(policy.attemptTimeout)
      : undefined,
    deadlineQueue: timed(policy.deadline) ? new FifoTimerQueue(policy.deadline) : undefined,
    unbounded:
      policy.attemptTimeout === Number.POSITIVE_INFINITY &&
      policy.deadline === Number.POSITIVE_INFINITY &&
      policy.breaker === undefined,
    plainRetries:
      policy.giveup === undefined &&
      policy.policy === undefined &&
      policy.retryIf === undefined &&
      policy.onRetry === undefined &&
      policy.afterFailure === undefined &&
      policy.onGiveup === undefined &&
      policy.onSuccess === undefined,
    notes,
  };
}

/** What the code-block form hooks into. */
export interface ManualDriver {
  /** The loop was left: no further attempt is to start (nobody would run it). */
  readonly leaving: boolean;
  /** A new attempt has started; yield it to the loop body. */
  started(attempt: Attempt): void;
  /** The running attempt ran past `attemptTimeout` while the body was still running. */
  timedOut(error: unknown): void;
}

/** What drive() is handed: an attempt to start at `run`, its promise to await, or how the execution ended. */
type RelayStep =
  | { readonly run: number }
  | { readonly attempt: Attempt; readonly value: unknown }
  | { readonly ok: boolean; readonly value: unknown };

/** What drive()'s race settles with when its attempt ended before its promise did. */
const ENDED: unique symbol = Symbol('attempt ended');

/** The scope is dropped with the execution: no destroy hook to emit. */
const SCOPE_OPTIONS = { requireManualDestroy: true } as const;

enum Phase {
  Attempting = 0,
  Deciding = 1,
  Pausing = 2,
  Waiting = 3,
  Succeeding = 4,
  GivingUp = 5,
  Settled = 6,
}

function noop(): void {}

/**
 * A callback that fails where nothing can take its error (a late result's release, a custom
 * breaker's bookkeeping) is reported as a process warning, never an unhandled rejection.
 */
function reportCallbackFailure(what: string, error: unknown, code: string): void {
  process.emitWarning(`asyncbackoff: ${what} threw or rejected: ${messageOf(error)}`, {
    type: 'AsyncBackoffWarning',
    code,
  });
}

function reportLateFailure(error: unknown): void {
  // withLock hands late leases to its own handler, which calls the user's onLateResult too.
  reportCallbackFailure(
    "a late result's handler (onLateResult, or withLock releasing a late lease)",
    error,
    'ASYNCBACKOFF_LATE_RESULT_FAILED',
  );
}

/**
 * The part of an execution that only retries, breakers, hooks, nesting and the code-block form
 * use. In an incident thousands of executions are pending at once, mostly on their first attempt:
 * what each holds is what the collector copies while their verdicts fall due, so these fields
 * live apart, made on first use.
 */
class Extras {
  /** Set for the code-block form (`backoff.attempts()`): the loop body is the attempt. */
  driver: ManualDriver | undefined = undefined;
  /** The enclosing attempt, if this execution started inside one that had not ended. */
  parent: AttemptLike | undefined = undefined;
  /** When the running attempt started, unless it is the first and started with the execution. */
  attemptStartedAt: number | undefined = undefined;
  pauseTimer: Timer | undefined = undefined;
  /** The turn of the last immediate retry (see `retrySoon`). */
  immediateTurn = -1;
  lastRetryKind: FailureKind | undefined = undefined;
  previousDelay: number | undefined = undefined;
  successValue: unknown = undefined;
  conditionError: RetryConditionError | undefined = undefined;
  /** The breaker's pass for the running attempt, until the attempt's outcome is recorded. */
  pass: BreakerPass | undefined = undefined;
  stopWaiting: (() => void) | undefined = undefined;
  /** From the first retry on, attempts are started and observed by drive() (see relay). */
  relaying = false;
  /** drive() is starting an attempt: runAttempt goes ahead instead of handing it over. */
  inDrive = false;
  relayQueue: RelayStep | undefined = undefined;
  relayNext: ((step: RelayStep) => void) | undefined = undefined;
  /** Ends drive()'s race for the running attempt. */
  endRunning: ((ended: typeof ENDED) => void) | undefined = undefined;
  /** The attempt whose verdict was left to the enclosing attempt's timer (see handoff.ts). */
  handedOff: Attempt | undefined = undefined;
  /** A pause ended past the enclosing attempt's bound; the next attempt waits for its verdict. */
  pausedPastBound = false;
  /** The enclosing attempt's expiry, when it comes before this execution's own deadline. */
  boundAt: number | undefined = undefined;
}

export class Execution implements TimerNode, AttemptOwner, AfterVerdicts<Attempt> {
  // Deadline-queue entry fields: the execution is its own entry (its expiry: see tExpiresAt).
  tPrev: TimerNode | null = null;
  tNext: TimerNode | null = null;
  tLive = false;
  resolve: (value: unknown) => void = noop;
  reject: (reason: unknown) => void = noop;
  /**
   * The async context `execute()` was called in. Timers and turns shared by many executions call
   * back in the context of whichever armed them; what the execution does from there (a retry, a
   * hook) is run in its own caller's context, so another AsyncLocalStorage's store (a request id,
   * a trace) never passes from one call to another.
   */
  private scope: AsyncResource | undefined = undefined;

  private phase = Phase.Attempting;
  private startedAt = 0;
  private current: Attempt | undefined = undefined;
  private joined: Membership | Membership[] | undefined = undefined;
  /** The last failure: what the execution rejects with if it ends now. */
  private last: Failure | undefined = undefined;
  /** What only some executions need (see {@link Extras}); made by `more` on first use. */
  private extras: Extras | undefined = undefined;

  constructor(
    private readonly core: Core,
    private readonly link: SignalLink | undefined,
    private readonly fn: (...args: any[]) => unknown,
    private readonly thisArg: unknown,
    private readonly args: unknown[],
  ) {}

  /** One instance of each class of the verdict path, kept alive: see the end of this file. */
  static specimens: readonly object[] = [];

  /** An execution shaped as a started one, for {@link Execution.specimens}: it is never run. */
  static specimen(core: Core): Execution {
    const execution = new Execution(core, undefined, noop, undefined, []);
    // A start time from now() is fractional: the field holds a double, not a small integer.
    execution.startedAt = 0.5;
    // Node's class, whose shape dies with its last instance as the engine's do.
    execution.scope = new AsyncResource('asyncbackoff', SCOPE_OPTIONS);
    return execution;
  }

  /** Set for the code-block form (`backoff.attempts()`): the loop body is the attempt. */
  get driver(): ManualDriver | undefined {
    return this.extras?.driver;
  }

  set driver(driver: ManualDriver) {
    this.more.driver = driver;
  }

  /** The enclosing attempt, if this execution started inside one that had not ended. */
  get parent(): AttemptLike | undefined {
    return this.extras?.parent;
  }

  /** How many attempts have started. */
  private get attempts(): number {
    return this.current === undefined ? 0 : this.current.attempt;
  }

  /**
   * When the deadline queue expires this execution: its own deadline. Derived, not stored: the
   * execution is pushed only by start(), at `startedAt`, so the queue's sum is this very one. A
   * pending execution then holds no boxed double for it: in an incident thousands are pending,
   * and the collector copies each.
   */
  get tExpiresAt(): number {
    return this.ownDeadlineAt;
  }

  set tExpiresAt(_at: number) {}

  /** The nearest bound: this execution's own deadline or the enclosing attempt's expiry. */
  get deadlineAt(): number {
    const bound = this.extras?.boundAt;
    return bound === undefined ? this.ownDeadlineAt : bound;
  }

  /** When an attempt that starts as this execution does times out (see Attempt.tExpiresAt). */
  get startingExpiresAt(): number {
    const queue = this.core.attemptQueue;
    return queue === undefined ? Number.POSITIVE_INFINITY : this.startedAt + queue.duration;
  }

  /** This execution's own deadline (without an enclosing attempt's bound). */
  private get ownDeadlineAt(): number {
    // The very sum start() computes: equal to it, not merely close.
    return this.startedAt + this.core.policy.deadline;
  }

  private get more(): Extras {
    if (this.extras === undefined) this.extras = new Extras();
    return this.extras;
  }

  /** Takes over an attempt started by the unbounded fast path (engine.ts). */
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
    execution.current = attempt;
    attempt.owner = execution;
    // Adopted in a reaction to the first attempt: the caller's context.
    execution.scope = new AsyncResource('asyncbackoff', SCOPE_OPTIONS);
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

  // ── Starting ────────────────────────────────────────────────────────────────────────────

  start(parent: AttemptLike | undefined): void {
    this.scope = new AsyncResource('asyncbackoff', SCOPE_OPTIONS);
    const link = this.link;
    if (link !== undefined) {
      const reason = link.abortedReason();
      if (reason !== NOT_ABORTED) return this.conclude('cancel', false, reason);
    }
    if (parent !== undefined) {
      if (parent.aborted) return this.conclude('cancel', false, parent.reason);
      // An attempt that already ended normally no longer bounds work it left running.
      if (!parent.finished) {
        this.more.parent = parent;
        parent.addChild(this);
      }
    }
    const policy = this.core.policy;
    const t = now();
    this.startedAt = t;
    let deadlineAt = t + policy.deadline; // = ownDeadlineAt
    const enclosing = this.parent;
    if (enclosing !== undefined && enclosing.expiresAt < deadlineAt) {
      deadlineAt = enclosing.expiresAt;
      this.more.boundAt = deadlineAt;
    }
    if (deadlineAt <= t) {
      // The enclosing attempt's bound passed but its timer has not run yet (a late event loop, a
      // stall before this call): leave the verdict to that timer, which cancels this execution
      // with its reason, as startNext does; an attempt it lets live after all resumes this one.
      const parent = this.parent;
      if (
        t < this.ownDeadlineAt &&
        parent !== undefined &&
        leaveToEnclosing(parent, deadlineAt, this)
      ) {
        this.core.deadlineQueue?.push(this, t);
        if (link !== undefined) this.joined = link.join(this);
        this.phase = Phase.Pausing;
        this.more.pausedPastBound = true;
        return;
      }
      this.release();
      const timeout = policy.deadline === Number.POSITIVE_INFINITY ? 0 : policy.deadline;
      return this.conclude('giveup', false, deadlinePassed(timeout, 0));
    }
    this.core.deadlineQueue?.push(this, t);
    if (link !== undefined) this.joined = link.join(this);
    this.runAttempt(t);
  }

  /** Starts the next attempt at time `t`, if the breaker lets it. */
  private runAttempt(t: number): void {
    // A retry is started by drive(), so that what it throws, even at once, shows the caller (see
    // the relay). The code-block form's body is not called by the engine.
    if (this.current !== undefined && this.driver === undefined && !this.more.inDrive)
      return this.relay({ run: t });
    const core = this.core;
    const breaker = core.policy.breaker;
    if (breaker !== undefined) {
      let pass: BreakerPass | undefined;
      try {
        pass = breaker.tryPass();
      } catch (error) {
        return this.fail(error);
      }
      this.more.pass = pass;
      // The breaker's onStateChange (open → half-open) may have cancelled the execution: no attempt.
      if (this.settled) return this.breakerVerdict('release');
      if (pass === undefined) return this.heldByBreaker(breaker);
    }
    // Its bound is read from this.deadlineAt and its own timeout (see Attempt.expiresAt).
    const attempt = new Attempt(this, this.attempts + 1);
    core.stats.attempts++;
    this.current = attempt;
    this.phase = Phase.Attempting;
    // The first attempt mostly starts when the execution does: then its start is not stored.
    if (t !== this.startedAt || this.extras !== undefined) this.more.attemptStartedAt = t;
    const queue = core.attemptQueue;
    if (queue !== undefined) queue.push(attempt, t);
    if (this.driver !== undefined) return this.driver.started(attempt);
    let value: unknown;
    try {
      // Called here, not through a helper, and the context entered and left by hand rather than
      // with `attemptStorage.run`: each frame between the caller of `execute()` and `fn` is one
      // more for V8 to capture in each error `fn` throws before its first await (~0.4 µs) and one
      // fewer of the caller's in its stack. `Reflect.apply` adds no frame.
      if (core.policy.context) {
        const outer = attemptStorage.getStore();
        attemptStorage.enterWith(attempt);
        try {
          value = Reflect.apply(this.fn, this.thisArg, this.args);
        } finally {
          attemptStorage.enterWith(outer);
        }
      } else value = Reflect.apply(this.fn, this.thisArg, this.args);
    } catch (error) {
      return this.onRejected(attempt, error);
    }
    this.follow(attempt, value);
  }

  /** Waits for how `value`, what `fn` returned for `attempt`, settles. */
  follow(attempt: Attempt, value: unknown): void {
    // The function cancelled its own execution (aborted its signal) before returning: the relay
    // already holds the conclusion, and what it returned can only be a late result.
    if (attempt.finished) return settleWith(value, (late) => this.onFulfilled(attempt, late), noop);
    // A retry's promise is awaited by the relay (see drive), so that an error it throws keeps the
    // caller's async frames; the first attempt, the happy path, is observed directly.
    // (Any object goes: reading `then` here could throw; the race reads it as `await` would.)
    if (
      attempt.attempt > 1 &&
      ((typeof value === 'object' && value !== null) || typeof value === 'function')
    )
      return this.relay({ attempt, value });
    settleWith(
      value,
      (result) => this.onFulfilled(attempt, result),
      (error) => this.onRejected(attempt, error),
    );
  }

  // ── The relay: retries started and awaited on one async loop ──────────────────────────────
  //
  // V8 links the stack of an error to the async functions awaiting the one it is thrown in, one
  // promise at a time, as long as each promise already has a single reaction that is an await (or
  // a builtin resolving function). From the first retry on, the execution's own promise follows
  // drive(); drive() calls each attempt's function and, in the same synchronous run, awaits its
  // promise (raced against its end). So an error a retry throws, at once or after any await,
  // shows the caller of execute(), as p-retry's do. It costs an async loop, a race and a hop per
  // retry, and nothing on the happy path.

  /** Hands a step to drive(), starting drive() the first time. */
  private relay(step: RelayStep): void {
    const extras = this.more;
    if (!extras.relaying) {
      extras.relaying = true;
      // From now on the execution's promise settles as drive() does (see conclude). drive()
      // starts by waiting: its first step runs once its promise follows the execution's.
      this.resolve(this.drive(extras));
    }
    const wake = extras.relayNext;
    extras.relayNext = undefined;
    if (wake !== undefined) wake(step);
    else extras.relayQueue = step;
  }

  private async drive(extras: Extras): Promise<unknown> {
    for (;;) {
      let step = extras.relayQueue;
      extras.relayQueue = undefined;
      if (step === undefined)
        step = await new Promise<RelayStep>((resolve) => {
          extras.relayNext = resolve;
        });
      if ('run' in step) {
        // Settled meanwhile (cancelled, the deadline): its conclusion is the next step.
        if (this.settled) continue;
        extras.inDrive = true;
        try {
          this.runAttempt(step.run);
        } finally {
          extras.inDrive = false;
        }
        continue;
      }
      if (!('attempt' in step)) {
        if (step.ok) return step.value;
        throw step.value;
      }
      const { attempt, value } = step;
      const end = new Promise<typeof ENDED>((resolve) => {
        extras.endRunning = resolve;
      });
      let result: unknown;
      try {
        result = await Promise.race([value, end]);
      } catch (error) {
        this.onRejected(attempt, error);
        continue;
      }
      if (result !== ENDED) this.onFulfilled(attempt, result);
      // Abandoned (timed out, cut, cancelled): a value that comes later is a late result.
      else settleWith(value, (late) => this.onFulfilled(attempt, late), noop);
    }
  }

  /** An open breaker refused the attempt: reject (`'fail'`) or wait until it may pass (`'wait'`). */
  private heldByBreaker(breaker: CircuitBreaker): void {
    const stats = this.core.stats;
    if (this.phase !== Phase.Waiting) stats.breakerRefusals++;
    if (breaker.whenOpen === 'fail') {
      const error = new BrokenCircuitError(
        breaker.retryAfter(),
        this.last === undefined ? undefined : { cause: this.finalError() },
      );
      this.remember('error', error);
      return this.giveUp('breaker');
    }
    this.phase = Phase.Waiting;
    const extras = this.more;
    // The callback acts once. A retry does not start in it but on the relay, a moment later, so the
    // execution is still waiting when a breaker calls it again: that call must not start another.
    let woken = false;
    try {
      extras.stopWaiting = breaker.onReady(() => {
        if (woken) return;
        woken = true;
        extras.stopWaiting = undefined;
        if (this.phase === Phase.Waiting) this.inScope(this.startNext, now());
      });
    } catch (error) {
      this.fail(error);
    }
  }

  // ── How an attempt ends ─────────────────────────────────────────────────────────────────

  private onFulfilled(attempt: Attempt, value: unknown): void {
    if (attempt.finished) return this.lateResult(attempt, value);
    this.endAttempt(attempt, 'fulfilled', now());
    this.breakerVerdict('success');
    if (this.settled) return; // the breaker's hook cancelled it
    const retryIf = this.core.policy.retryIf;
    if (retryIf === undefined) return this.succeed(value);
    this.phase = Phase.Deciding;
    try {
      this.when(retryIf(value), (again) =>
        again ? this.failed('result', value) : this.succeed(value),
      );
    } catch (error) {
      this.fail(error);
    }
  }

  private onRejected(attempt: Attempt, error: unknown): void {
    if (attempt.finished) return; // a late rejection of an abandoned attempt: nothing to do
    // (Settling ends the running attempt, so the execution is not settled: endAttempt runs no user code.)
    this.endAttempt(attempt, 'failed', now());
    this.failed('error', error);
  }

  /** Called by the attempt-timeout queue (a timer shared by the instance). */
  onAttemptTimer(attempt: Attempt, at: number): void {
    // Never for an ended attempt: endAttempt takes it off the queue (settling ends the running one).
    if (this.attempts >= this.core.policy.maxTries && this.judgesQuietly(attempt))
      this.judgeAttempt(attempt, at);
    else this.inScope(this.judgeAttempt, attempt, at);
  }

  private judgeAttempt(attempt: Attempt, at: number): void {
    // Judge as of when this attempt's timeout came due, not when its timer ran (late, on a busy
    // event loop, or when a verdict is handed back): whichever bound came first decides.
    const due = Math.min(at, attempt.tExpiresAt);
    if (due >= this.ownDeadlineAt) return this.deadlineReached(at);
    const parent = this.parent;
    if (parent !== undefined && due >= this.deadlineAt && leaveToEnclosing(parent, due, this)) {
      // The enclosing attempt's bound is reached at the same instant: the timer that enforces it
      // cancels this execution with its reason, exactly as if it had fired first.
      this.more.handedOff = attempt;
      return;
    }
    const error = attemptTimedOut(this.core.policy.attemptTimeout, attempt.attempt);
    this.endAttempt(attempt, 'failed', at);
    if (this.attempts >= this.core.policy.maxTries && this.endsQuietly()) {
      // The last try: the verdict gives up and calls nothing back. The caller gets it first; the
      // signal's listeners (they may take a while) run once the verdicts due with it are in.
      // Nested executions are cancelled at once, with the verdict's reason (markAborted).
      attempt.markAborted(error);
      // Nothing to consult (see endsQuietly), and no try left: the decision is to give up, with
      // this error (as giveUp would conclude; nothing reads a record of it once settled).
      countFailure(this.core.stats, true);
      if (this.release()) this.conclude('giveup', false, error);
      return this.abortSignalAfterVerdicts(attempt);
    }
    attempt.abort(error);
    // An abort listener may have cancelled the execution synchronously.
    if (this.settled) return;
    if (this.driver === undefined) return this.failed('timeout', error);
    // A loop body cannot be abandoned: the decision waits until the body reports back. The
    // attempt has failed already, though: a deadline passing meanwhile rejects with this error.
    this.recordFailure('timeout', error);
    this.breakerVerdict('failure');
    this.driver.timedOut(error);
  }

  /** An attempt this execution abandoned fulfilled after all: hand the value to `onLateResult`. */
  private lateResult(attempt: Attempt, value: unknown): void {
    // Every attempt the engine ends before it answers is aborted (timeout, deadline, cancel).
    this.core.stats.lateResults++;
    const handler = this.core.policy.onLateResult;
    if (handler === undefined) return;
    try {
      const info = Object.freeze({ attempt: attempt.attempt, reason: attempt.reason });
      const result = handler.call(this.thisArg, value, info);
      if (isThenable(result)) settleWith(result, noop, reportLateFailure);
    } catch (error) {
      reportLateFailure(error);
    }
  }

  /** The code-block form reports how the attempt it yielded ended. */
  report(attempt: Attempt, kind: FailureKind | 'success', value: unknown): void {
    // Only while the execution runs (block.ts asks before it reports), for the running attempt:
    // the timer records a timeout as the body's outcome, and the body's own report then adds
    // nothing. A timed-out attempt was already ended and recorded; only the decision waited.
    if (kind === 'timeout') this.decide('timeout', value);
    else if (kind === 'success') this.onFulfilled(attempt, value);
    else this.onRejected(attempt, value);
  }

  /** The code-block form's loop was left without a report (an uncaught throw or a bare `break`). */
  abandon(): void {
    // Once, while the execution runs, during an attempt: block.ts then remembers how the loop ended.
    const attempt = this.current!;
    if (!attempt.finished) this.endAttempt(attempt, 'failed', now());
    this.release();
    countSettlement(this.core.stats, 'giveup');
  }

  // ── Deciding ────────────────────────────────────────────────────────────────────────────

  private failed(kind: FailureKind, outcome: unknown): void {
    this.recordFailure(kind, outcome);
    this.decide(kind, outcome);
  }

  /** Counts the failure and remembers it as what the execution rejects with if it ends now. */
  private recordFailure(kind: FailureKind, outcome: unknown): void {
    this.remember(kind, outcome);
    countFailure(this.core.stats, kind === 'timeout');
  }

  /** Makes `outcome` what the execution rejects with if it ends now. */
  private remember(kind: FailureKind, outcome: unknown): void {
    this.last = { kind, outcome };
    // (No Extras made for this: a verdict falling due with thousands of others allocates little.)
    if (this.extras !== undefined) this.extras.conditionError = undefined;
  }

  /** After a recorded failure: give up, or retry after a pause. */
  private decide(kind: FailureKind, outcome: unknown): void {
    const policy = this.core.policy;
    this.phase = Phase.Deciding;
    try {
      const retriable = kind !== 'error' || isRetriable(policy, outcome);
      // A non-retriable error is an answer: the dependency is up.
      if (kind !== 'result') this.breakerVerdict(retriable ? 'failure' : 'success');
      policy.budget?.recordFailure(kind);
      // Any of the callbacks above may have cancelled the execution.
      if (this.settled) return;
      if (!retriable) return this.giveUp('not-retriable');
      // The code-block form's loop was left: nobody would run another attempt.
      if (this.driver?.leaving === true) return this.giveUp('max-tries');
      if (kind === 'result' || policy.giveup === undefined)
        return this.consultPolicy(kind, outcome);
      this.when(policy.giveup(outcome), (stop) =>
        stop ? this.giveUp('giveup') : this.consultPolicy(kind, outcome),
      );
    } catch (error) {
      // A filter, policy, strategy or budget threw (or returned something unusable).
      this.fail(error);
    }
  }

  private consultPolicy(kind: FailureKind, outcome: unknown): void {
    const callback = this.core.policy.policy;
    if (callback === undefined) return this.plan(kind, outcome, undefined);
    const t = now();
    const info = Object.freeze({
      attempt: this.attempts,
      kind,
      result: kind === 'result' ? outcome : undefined,
      elapsed: t - this.startedAt,
      remaining: this.deadlineAt - t,
    });
    const error = kind === 'result' ? undefined : outcome;
    const decision = this.callable(callback, 'policy').call(
      this.thisArg,
      this.attempts,
      error,
      info,
    );
    this.when(decision, (answer) => {
      const { abandon, delay } = readPolicyDecision(answer);
      if (abandon) this.giveUp('policy');
      else this.plan(kind, outcome, delay);
    });
  }

  private plan(kind: FailureKind, outcome: unknown, policyDelay: number | undefined): void {
    const policy = this.core.policy;
    const t = now();
    const plan = planRetry(
      policy,
      { kind, outcome },
      {
        attempts: this.attempts,
        startedAt: this.startedAt,
        at: t,
        deadlineAt: this.deadlineAt,
        previousDelay: this.extras?.previousDelay,
      },
      policyDelay,
    );
    if (this.settled) return; // a strategy or an extractor cancelled it
    if (plan.giveUp !== undefined) return this.giveUp(plan.giveUp);
    const refused = policy.budget !== undefined && !policy.budget.tryAcquire(kind);
    if (this.settled) return;
    if (refused) {
      this.core.stats.budgetRefusals++;
      return this.giveUp('budget');
    }
    const extras = this.more;
    extras.lastRetryKind = kind;
    extras.previousDelay = plan.delay;
    this.retryHooks(kind, outcome, plan.delay, t);
  }

  /** Runs afterFailure, then onRetry, then the pause; hooks take time, so the deadline is checked again. */
  private retryHooks(kind: FailureKind, outcome: unknown, delay: number, t: number): void {
    const policy = this.core.policy;
    const runsAfterFailure = policy.afterFailure !== undefined && kind !== 'result';
    if (!runsAfterFailure && policy.onRetry === undefined) return this.pause(delay);
    const afterHooks = () => {
      if (crossesDeadline(delay, now(), this.deadlineAt)) this.giveUp('deadline');
      else this.pause(delay);
    };
    const onRetry = policy.onRetry;
    const error = kind === 'result' ? undefined : outcome;
    const runOnRetry =
      onRetry === undefined
        ? afterHooks
        : () => {
            const event = Object.freeze({
              attempt: this.attempts,
              kind,
              error,
              result: kind === 'result' ? outcome : undefined,
              delay,
              elapsed: t - this.startedAt,
              remaining: this.deadlineAt - t,
            });
            this.hook('onRetry', onRetry, [event], afterHooks);
          };
    if (runsAfterFailure)
      this.hook('afterFailure', policy.afterFailure!, [error, this.attempts], runOnRetry);
    else runOnRetry();
  }

  // ── Waiting ─────────────────────────────────────────────────────────────────────────────

  private pause(delay: number): void {
    // Counted here, once every hook agreed: a hook that throws or runs out the clock means no retry.
    this.core.stats.retries++;
    this.phase = Phase.Pausing;
    const extras = this.more;
    if (delay === 0) {
      extras.immediateTurn = retrySoon(extras.immediateTurn, () => {
        if (this.phase === Phase.Pausing) this.inScope(this.startNext, now());
      });
      return;
    }
    extras.pauseTimer = startTimer(() => {
      extras.pauseTimer = undefined;
      this.core.stats.sleptTime += delay;
      // Still pausing: release() stops this timer.
      this.startNext(now());
    }, delay);
  }

  /**
   * After a pause or a wait: start the next attempt, unless a bound passed meanwhile. A late timer
   * (a busy event loop) may run after the deadline, whose own verdict waits for the check phase:
   * no attempt starts past it. Past an enclosing attempt's bound, wait for the timer that ends
   * that attempt; should it answer instead, go on then (`resumeHandoff`).
   */
  private startNext(t: number): void {
    if (t >= this.ownDeadlineAt) return this.deadlineReached(t);
    const parent = this.parent;
    if (
      t >= this.deadlineAt &&
      parent !== undefined &&
      leaveToEnclosing(parent, this.deadlineAt, this)
    )
      this.more.pausedPastBound = true;
    else this.runAttempt(t);
  }

  // ── Ending ──────────────────────────────────────────────────────────────────────────────

  private succeed(value: unknown): void {
    const policy = this.core.policy;
    try {
      policy.budget?.recordSuccess(this.extras?.lastRetryKind);
    } catch (error) {
      return this.fail(error);
    }
    if (policy.onSuccess === undefined) {
      if (this.release()) this.conclude('success', true, value);
      return;
    }
    this.phase = Phase.Succeeding;
    this.more.successValue = value;
    const event = Object.freeze({
      attempt: this.attempts,
      result: value,
      elapsed: now() - this.startedAt,
    });
    // A hook's continuation runs only while the execution does (see when()).
    this.hook('onSuccess', policy.onSuccess, [event], () => {
      this.release();
      this.conclude('success', true, value);
    });
  }

  private giveUp(reason: GiveupReason): void {
    const policy = this.core.policy;
    if (this.settled) return;
    this.phase = Phase.GivingUp;
    if (reason === 'not-retriable') warnIfNothingRetries(this.core, this.last?.outcome);
    if (policy.onGiveup === undefined) {
      this.release();
      return this.concludeFinally(undefined);
    }
    // A hook's continuation runs only while the execution does (see when()).
    this.hook('onGiveup', policy.onGiveup, [this.giveupEvent(reason, this.finalError())], () => {
      this.release();
      this.concludeFinally(undefined);
    });
  }

  /** Called by the deadline queue (a timer shared by the instance). */
  onTimer(at: number): void {
    // Never once settled: release() takes the execution off the deadline queue.
    if (this.judgesQuietly(this.current)) this.deadlineReached(at);
    else this.inScope(this.deadlineReached, at);
  }

  /**
   * Whether a verdict that ends the execution with `attempt` running runs no code but the
   * engine's own, synchronously: then it need not enter the caller's async context (an expiry of
   * thousands pays for each entry). The signal's listeners wait for afterVerdicts, which enters
   * it; nested executions would be cancelled at once, so their listeners would run here.
   */
  private judgesQuietly(attempt: Attempt | undefined): boolean {
    return this.endsQuietly() && (attempt === undefined || !attempt.hasChildren);
  }

  /** The deadline passed (its timer ran, or another timer found it passed). */
  private deadlineReached(at: number): void {
    const policy = this.core.policy;
    const error = deadlinePassed(policy.deadline, this.attempts);
    const phase = this.phase;
    const attempt = this.current?.finished === false ? this.current : undefined;
    if (attempt !== undefined) this.endAttempt(attempt, 'cancelled', at);
    this.release();
    // Only the running attempt is cut: one that already answered (its value may be a stream
    // still being read, a pending onSuccess) keeps its signal.
    if (attempt === undefined) return this.concludeAtDeadline(phase, error);
    if (this.endsQuietly()) {
      // No hook is told: the caller gets the verdict first (see judgeAttempt).
      attempt.markAborted(error);
      this.concludeAtDeadline(phase, error);
      return this.abortSignalAfterVerdicts(attempt);
    }
    attempt.abort(error);
    this.concludeAtDeadline(phase, error);
  }

  /** Settles the execution whose deadline passed in `phase`, telling onGiveup if it is due. */
  private concludeAtDeadline(phase: Phase, error: DeadlineExceededError): void {
    const policy = this.core.policy;
    // The result was ready; only the onSuccess hook was still running.
    if (phase === Phase.Succeeding)
      return this.conclude('success', true, this.extras!.successValue);
    // onGiveup was already told; only its promise was still pending.
    if (phase === Phase.GivingUp) return this.concludeFinally(error);
    const onGiveup = policy.onGiveup;
    if (onGiveup !== undefined) {
      // The deadline has passed, so the hook is not awaited; a synchronous throw still replaces
      // the rejection, as for every hook.
      try {
        const event = this.giveupEvent(
          'deadline',
          this.last === undefined ? error : this.finalError(),
        );
        const result = this.callable(onGiveup, 'onGiveup').call(this.thisArg, event);
        if (isThenable(result)) settleWith(result, noop, noop);
      } catch (hookError) {
        return this.conclude('giveup', false, hookError);
      }
    }
    this.concludeFinally(error);
  }

  /**
   * Whether a verdict that ends the execution calls back no code but the engine's own (no hook,
   * predicate, policy, breaker, budget or loop body): then the signal of the attempt it ends may
   * wait until the verdicts are in. (Nested executions are cancelled with the verdict all the
   * same: `markAborted` does that.)
   */
  private endsQuietly(): boolean {
    const { policy, plainRetries } = this.core;
    return (
      plainRetries &&
      this.driver === undefined &&
      policy.breaker === undefined &&
      policy.budget === undefined
    );
  }

  /** Aborts the signal of `attempt`, marked aborted by a verdict, once the verdicts are in. */
  private abortSignalAfterVerdicts(attempt: Attempt): void {
    // Nobody read its signal: there is nothing left to abort.
    if (attempt.signalled) afterVerdicts(this, attempt);
  }

  /** The verdicts of the expiry that ended `attempt` are in: abort its signal (see afterVerdicts). */
  afterVerdicts(attempt: Attempt): void {
    this.inScope(this.abortSignalOf, attempt);
  }

  private abortSignalOf(attempt: Attempt): void {
    attempt.abortSignal();
  }

  /** Stops the execution at once with `reason`: a signal or an enclosing attempt aborted. */
  cancel(reason: unknown): void {
    if (this.settled) return;
    const attempt = this.current?.finished === false ? this.current : undefined;
    if (attempt !== undefined) this.endAttempt(attempt, 'cancelled', now());
    this.release();
    attempt?.abort(reason);
    this.conclude('cancel', false, reason);
  }

  /** Rejects with an error raised by the library's own callbacks (a hook, a predicate, a policy). */
  private fail(error: unknown): void {
    // Never while an attempt runs: the callbacks it serves run between attempts (or, for the
    // breaker's tryPass and onReady, before one), so there is no attempt to end here.
    if (this.release()) this.conclude('giveup', false, error);
  }

  /** Settles a finished execution after a final failure: the last failure, or `error` if none. */
  private concludeFinally(error: unknown): void {
    const last = this.last;
    if (last === undefined) this.conclude('giveup', false, error);
    else if (last.kind === 'result' && this.core.policy.returnLastResult)
      this.conclude('giveup', true, last.outcome);
    else this.conclude('giveup', false, this.finalError());
  }

  /** The one place the execution's promise settles. */
  private conclude(how: Settlement, ok: boolean, value: unknown): void {
    this.phase = Phase.Settled;
    countSettlement(this.core.stats, how);
    if (this.extras?.relaying === true) this.relay({ ok, value });
    else if (ok) this.resolve(value);
    else this.reject(value);
  }

  /** Frees everything the execution holds; returns false if it was already released. */
  private release(): boolean {
    if (this.settled) return false;
    this.phase = Phase.Settled;
    // An attempt admitted by the breaker that said nothing (cut, abandoned) frees its pass.
    this.breakerVerdict('release');
    this.core.deadlineQueue?.remove(this);
    if (this.joined !== undefined) {
      this.link!.leave(this.joined);
      this.joined = undefined;
    }
    const extras = this.extras;
    if (extras === undefined) return true;
    extras.parent?.removeChild(this);
    if (extras.pauseTimer !== undefined) {
      stopTimer(extras.pauseTimer);
      extras.pauseTimer = undefined;
    }
    if (extras.stopWaiting !== undefined) {
      const stop = extras.stopWaiting;
      extras.stopWaiting = undefined;
      try {
        stop();
      } catch (error) {
        reportCallbackFailure('the breaker', error, 'ASYNCBACKOFF_BREAKER_FAILED');
      }
    }
    return true;
  }

  // ── Nesting ─────────────────────────────────────────────────────────────────────────────

  /** Whether this execution's own timers will end `attempt` (one of its attempts) by `at`. */
  enforcesBound(attempt: AttemptLike, at: number): boolean {
    return (attempt.tLive && attempt.tExpiresAt <= at) || (this.tLive && this.tExpiresAt <= at);
  }

  /** A parent attempt this execution left its verdict to ended without an abort. */
  resumeHandoff(): void {
    if (this.settled) return;
    this.inScope(this.resumeAfterHandoff);
  }

  private resumeAfterHandoff(): void {
    // (A hand-off made the Extras: pausedPastBound or handedOff is set.)
    const extras = this.more;
    if (extras.pausedPastBound) {
      extras.pausedPastBound = false;
      this.runAttempt(now());
      return;
    }
    const attempt = extras.handedOff;
    extras.handedOff = undefined;
    if (attempt !== undefined && !attempt.finished) this.judgeAttempt(attempt, now());
  }

  // ── Helpers ─────────────────────────────────────────────────────────────────────────────

  /** Settled: its promise is settled and it holds nothing; every late callback stops here. */
  private get settled(): boolean {
    return this.phase === Phase.Settled;
  }

  /** Runs `step` in the async context `execute()` was called in (see `scope`). */
  private inScope<A extends unknown[]>(step: (this: Execution, ...args: A) => void, ...args: A) {
    // Set by start() or adopt(), before anything can call back.
    this.scope!.runInAsyncScope(step, this, ...args);
  }

  private endAttempt(attempt: Attempt, end: AttemptEnd, at: number): void {
    attempt.finished = true;
    // The relay's race for this attempt ends too, however it ended.
    const extras = this.extras;
    if (extras?.endRunning !== undefined) {
      const endRunning = extras.endRunning;
      extras.endRunning = undefined;
      endRunning(ENDED);
    }
    // Children that left their verdict to this attempt get it back, unless an abort follows at
    // once (in the same call stack) and cancels them.
    if (attempt.handoffs !== undefined) nextMicrotask(() => attempt.resumeHandoffs());
    this.core.attemptQueue?.remove(attempt);
    countAttemptEnd(this.core.stats, end, at - (extras?.attemptStartedAt ?? this.startedAt));
    if (end === 'cancelled') this.breakerVerdict('release');
  }

  /** Tells the breaker what the attempt it admitted said about the dependency. */
  private breakerVerdict(verdict: 'success' | 'failure' | 'release'): void {
    const extras = this.extras;
    const pass = extras?.pass;
    if (pass === undefined) return;
    extras!.pass = undefined;
    const breaker = this.core.policy.breaker!;
    try {
      if (verdict === 'success') breaker.recordSuccess(pass);
      else if (verdict === 'failure') breaker.recordFailure(pass);
      else breaker.release(pass);
    } catch (error) {
      // A custom breaker's bug must not strand the execution or the others it would wake.
      reportCallbackFailure('the breaker', error, 'ASYNCBACKOFF_BREAKER_FAILED');
    }
  }

  /**
   * Goes on with `next(value)` once `value` (what a predicate, policy or hook returned) settles:
   * at once when it is not a promise. A promise is awaited within the deadline and the signals:
   * if the execution moved on meanwhile its answer is dropped; a rejection ends the execution.
   */
  private when<T>(value: T | PromiseLike<T>, next: (value: T) => void): void {
    if (!isThenable(value)) {
      // The callback that produced `value` may have cancelled the execution (aborted its signal).
      if (!this.settled) next(value as T);
      return;
    }
    const phase = this.phase;
    settleWith(
      value,
      (answer) => {
        if (this.phase !== phase) return;
        try {
          next(answer as T);
        } catch (error) {
          this.fail(error);
        }
      },
      (error) => {
        if (this.phase === phase) this.fail(error);
      },
    );
  }

  /** Calls a hook and goes on with `next` when it returns (or its promise fulfils). */
  private hook(option: string, fn: Function | string, args: unknown[], next: () => void): void {
    try {
      this.when(this.callable(fn, option).apply(this.thisArg, args), next);
    } catch (error) {
      this.fail(error);
    }
  }

  /** A hook or policy given as a method name is looked up on `this` of the decorated method. */
  private callable(value: Function | string, option: string): Function {
    if (typeof value === 'function') return value;
    const target = this.thisArg as Record<string, unknown> | null | undefined;
    const method = target?.[value];
    if (typeof method !== 'function')
      throw new TypeError(
        `Backoff: '${option}' names the method '${value}', but this.${value} is ${describe(method)}`,
      );
    return method;
  }

  private finalError(): unknown {
    const last = this.last!;
    if (last.kind !== 'result') return last.outcome;
    // One object per execution, so onGiveup sees the very error the execution rejects with.
    const extras = this.more;
    extras.conditionError ??= new RetryConditionError(last.outcome, this.attempts);
    return extras.conditionError;
  }

  private giveupEvent(reason: GiveupReason, error: unknown): GiveupEvent {
    const kind = this.last?.kind ?? 'timeout';
    return Object.freeze({
      attempt: this.attempts,
      kind,
      error,
      result: kind === 'result' ? this.last!.outcome : undefined,
      reason,
      elapsed: now() - this.startedAt,
    });
  }
}

/**
 * An instance with retries but no way to make a thrown error retriable gives up at the first one.
 * That is aiomisc's rule (only attempt timeouts are retried), and a trap for newcomers: say so
 * once per instance.
 */
export function warnIfNothingRetries(core: Core, error: unknown): void {
  const { policy, notes } = core;
  if (notes.warnedNoFilter || hasErrorFilter(policy) || policy.maxTries <= 1) return;
  notes.warnedNoFilter = true;
  let name: string;
  try {
    name = error instanceof Error ? String(error.name) : describe(error);
  } catch {
    // A getter or proxy trap that throws: the execution still rejects with the very value.
    name = 'a value that cannot be shown';
  }
  const tries = policy.maxTries === Number.POSITIVE_INFINITY ? 'more' : policy.maxTries;
  process.emitWarning(
    `asyncbackoff: an execution rejected with ${name}, which is not retriable, although its policy allows ${tries} tries: no thrown error is retriable without 'exceptions', 'retryOn', 'retryAll' or 'policy' (only attempt timeouts are). Add one of them, or set maxTries: 1.`,
    { type: 'AsyncBackoffWarning', code: 'ASYNCBACKOFF_NO_RETRY_FILTER' },
  );
}

/*
 * One instance of each class that pending executions and their verdicts are made of, kept for the
 * life of the process. V8's optimized code holds the shapes ("maps") of the objects it handles
 * only weakly, and a shape lives only while some object has it. After a quiet spell a full
 * collection finds no execution alive, drops their shapes and with them the optimized code of
 * the verdict path; the next incident's first thousand verdicts then run unoptimized while it
 * recompiles (p99 lateness of 1,000 simultaneous timeouts after a full GC, Node 20: 2–11 ms
 * without these, 0.8–3 ms with; see benchmarks/README.md). Made as the engine makes its own:
 * what a field holds decides the shape (a double is not a small integer). Held by the class,
 * which the engine holds: a module constant that nothing reads is dropped by tree shaking.
 */
Execution.specimens = ((): readonly object[] => {
  const execution = Execution.specimen(createCore(normalizeOptions({ attemptTimeout: 1 })));
  return [
    execution,
    new Attempt(execution, 1),
    new Extras(),
    attemptTimedOut(1, 1),
    deadlinePassed(1, 1),
  ];
})();
