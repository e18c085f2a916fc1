/**
 * The attempt context: what `currentAttempt()` returns inside an attempt, carried across awaits by
 * AsyncLocalStorage. It also links nested executions to the attempt they run in, so an inner
 * execution inherits the outer attempt's cancellation and never outlives its remaining time.
 *
 * The store is shared by every copy of the package in the process (see process-state.ts), so an
 * execution may find an attempt another copy made. What one copy reads of another's attempt is
 * the {@link AttemptLike} shape only; changing it means a new store key.
 */
import { now } from './clock.js';
import { attemptStorage } from './process-state.js';
import type { TimerNode } from './timer-queue.js';

/** What {@link currentAttempt} returns. */
export interface AttemptContext {
  /**
   * Aborts when this attempt times out (reason: `AttemptTimeoutError`), when the deadline passes
   * (`DeadlineExceededError`), or when the execution is cancelled (the cancelling signal's reason).
   * Pass it to whatever the attempt starts: `fetch`, a database query, a child process.
   */
  readonly signal: AbortSignal;
  /** The 1-based number of this attempt within its execution. */
  readonly attempt: number;
  /**
   * Milliseconds left for this attempt (the nearest of attempt timeout, deadline and any enclosing
   * attempt); `Infinity` if unbounded, 0 once it has run out. For a timeout to hand to a server,
   * which must be a whole number of at least 1, use `serverTimeout()`.
   */
  readonly remaining: number;
}

/** Something that stops when the attempt it runs in is aborted (a nested execution). */
export interface AttemptChild {
  cancel(reason: unknown): void;
  /** The attempt this child left its verdict to ended without an abort: judge it now. */
  resumeHandoff(): void;
}

/** The execution an attempt belongs to, as the attempt and nested executions see it. */
export interface AttemptOwner {
  onAttemptTimer(attempt: Attempt, at: number): void;
  /** Whether the owner's own timers will end `attempt` by `at` (see handoff.ts). */
  enforcesBound(attempt: AttemptLike, at: number): boolean;
  /** The attempt the owner runs in, if any. */
  readonly parent: AttemptLike | undefined;
  /** The owner's nearest bound (its deadline or the enclosing attempt's): its attempts end by then. */
  readonly deadlineAt: number;
  /**
   * When an attempt that starts as the owner does times out (`Infinity` without an attempt
   * timeout): the owner's start plus its attempt timeout, the very sum the timer queue computes.
   */
  readonly startingExpiresAt: number;
}

/** What an execution reads of the attempt it starts in (possibly made by another copy). */
export interface AttemptLike {
  /** While the attempt-timeout queue holds it: when its own timeout comes due. */
  readonly tLive: boolean;
  readonly tExpiresAt: number;
  readonly expiresAt: number;
  readonly finished: boolean;
  readonly aborted: boolean;
  readonly reason: unknown;
  readonly owner: AttemptOwner;
  addChild(child: AttemptChild): void;
  removeChild(child: AttemptChild): void;
  handOff(child: AttemptChild): void;
}

/**
 * One attempt. It is also the attempt-timeout queue's entry, so a bounded attempt costs one object.
 * Its AbortController is created only when someone reads `signal`: most attempts succeed and
 * nobody ever needs one.
 */
export class Attempt implements AttemptContext, AttemptLike, TimerNode {
  tPrev: TimerNode | null = null;
  tNext: TimerNode | null = null;
  tLive = false;
  /** Set once the attempt ended (any outcome); a result arriving later is a late result. */
  finished = false;
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined = undefined;
  private children: Set<AttemptChild> | undefined = undefined;
  /**
   * Nested executions whose attempt expired together with this one: they left the verdict to this
   * attempt's timer. If this attempt ends without an abort (its answer was read first, on a late
   * event loop), they are handed the verdict back.
   */
  handoffs: AttemptChild[] | undefined = undefined;
  /** When its timeout comes due, unless it started as its owner did (see tExpiresAt). */
  private expiry: number | undefined = undefined;

  constructor(
    /** The execution the attempt belongs to (set late by the unbounded fast path). */
    public owner: AttemptOwner,
    readonly attempt: number,
  ) {}

  /**
   * When this attempt's own timeout comes due (`Infinity` without one); set by the timer queue.
   * An attempt that starts as its execution does, as most do, times out at a time its owner
   * derives: then nothing is stored (each stored time is a boxed double, and in an incident the
   * collector copies thousands). The sum is the same one, so the two are equal, not merely close.
   */
  get tExpiresAt(): number {
    const at = this.expiry;
    return at === undefined ? this.owner.startingExpiresAt : at;
  }

  set tExpiresAt(at: number) {
    if (at !== this.owner.startingExpiresAt || this.expiry !== undefined) this.expiry = at;
  }

  /**
   * The nearest bound: attempt timeout, the execution's deadline, an enclosing attempt. Derived,
   * not stored: thousands of attempts may be pending at once, and each stored time is a boxed
   * double the collector copies (the queue keeps `tExpiresAt` after it lets the attempt go).
   */
  get expiresAt(): number {
    return Math.min(this.tExpiresAt, this.owner.deadlineAt);
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  get remaining(): number {
    const left = this.expiresAt - now();
    return Math.max(left, 0);
  }

  onTimer(at: number): void {
    this.owner.onAttemptTimer(this, at);
  }

  /**
   * Aborts the signal (if anyone holds it) and every nested execution. Called once: the execution
   * aborts an attempt only as it ends it, and ends it only once.
   */
  abort(reason: unknown): void {
    this.markAborted(reason);
    this.abortSignal();
  }

  /**
   * The first half of {@link abort}: from now on the attempt reads as aborted (`aborted`,
   * `reason`, a signal created from here on), and its nested executions are cancelled. The
   * signal someone already holds is told by {@link abortSignal}.
   */
  markAborted(reason: unknown): void {
    this.aborted = true;
    this.reason = reason;
    this.handoffs = undefined; // the children are cancelled below, with this reason
    const children = this.children;
    this.children = undefined;
    if (children !== undefined) for (const child of children) child.cancel(reason);
  }

  /** The second half of {@link abort}: aborts the signal, if anyone holds it (its listeners run). */
  abortSignal(): void {
    this.controller?.abort(this.reason);
  }

  /** Whether anyone has read `signal` (so that aborting it runs listeners). */
  get signalled(): boolean {
    return this.controller !== undefined;
  }

  /** Whether nested executions run in this attempt (ending it cancels them: their listeners run). */
  get hasChildren(): boolean {
    return this.children !== undefined && this.children.size > 0;
  }

  /** `child` leaves its attempt's verdict to this attempt's timer (see `handoffs`). */
  handOff(child: AttemptChild): void {
    if (this.handoffs === undefined) this.handoffs = [];
    this.handoffs.push(child);
  }

  /** Hands their verdicts back to the children that left them to this attempt (see `handoffs`). */
  resumeHandoffs(): void {
    const handoffs = this.handoffs;
    this.handoffs = undefined;
    if (handoffs !== undefined) for (const child of handoffs) child.resumeHandoff();
  }

  addChild(child: AttemptChild): void {
    if (this.children === undefined) this.children = new Set();
    this.children.add(child);
  }

  removeChild(child: AttemptChild): void {
    this.children?.delete(child);
  }
}

/**
 * The attempt the calling code runs in, or `undefined` outside any attempt. Works after awaits
 * too, since it is carried by AsyncLocalStorage. Attempts of an instance built with
 * `context: false` are not carried: code inside them sees the enclosing attempt, if any.
 *
 * @example
 * ```ts
 * const fetchUser = asyncbackoff(500, 2000)(async (id: string) => {
 *   const { signal, attempt } = currentAttempt()!;
 *   log.debug({ attempt }, 'fetching user');
 *   return (await fetch(`${base}/users/${id}`, { signal })).json();
 * });
 * ```
 */
export function currentAttempt(): AttemptContext | undefined {
  return attemptStorage.getStore();
}
