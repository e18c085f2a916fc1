/**
 * Many deadlines of one fixed duration behind a single timer, and how verdicts are judged when
 * that timer runs late.
 */
import {
  afterTurn,
  nextMicrotask,
  now,
  startSharedImmediate,
  startSharedTimer,
  stopTimer,
  type Timer,
} from './clock.js';

/** An entry of a {@link FifoTimerQueue}; the engine's attempt and execution objects are entries themselves. */
export interface TimerNode {
  /** When this entry expires (ms on {@link now}'s clock). */
  tExpiresAt: number;
  tPrev: TimerNode | null;
  tNext: TimerNode | null;
  /** True while the entry is in a queue. */
  tLive: boolean;
  onTimer(at: number): void;
}

/**
 * How late (ms) a queue's timer may run before its verdicts wait until after the poll phase (to the
 * check phase). Node fires timers up to about a millisecond late on an idle loop; more than that
 * means the loop is busy.
 */
const LATE_MS = 2;

/**
 * From the first late timer of a timers phase until the check phase, every queue that fires waits
 * as well, although its own timer may be less late: verdicts hand off to each other (an inner
 * attempt leaves its end to the enclosing attempt's timer, an attempt timer to the deadline's), so
 * they must all be judged together, in the order they came due.
 */
/** When the first queue was deferred; a list older than one timers phase is stale (its check phase never ran). */
let deferringSince = 0;
/**
 * The `setImmediate` the check-phase expiry was scheduled with. If another is installed now (a
 * fake clock was swapped), that expiry will never run: the deferral is abandoned and starts over.
 */
let deferredWith: unknown;
/** The queues whose timers ran late in this timers phase, waiting for the check phase. */
let deferredQueues: FifoTimerQueue[] = [];

/** Something left to do once the verdicts of an expiry are in (see {@link afterVerdicts}). */
export interface AfterVerdicts<T> {
  afterVerdicts(subject: T): void;
}

/** While an expiry runs: the pairs (owner, subject) waiting for its verdicts to be in. */
let verdictBatch: unknown[] | undefined;

/**
 * Calls `owner.afterVerdicts(subject)` once every verdict of the expiry that is running has been
 * given, and the reactions those verdicts queued (the callers' handlers) have had their turn: in
 * a microtask queued after the last of them. Outside an expiry, at once. A verdict is what the
 * callers wait for; aborting the attempts it ended (their signals' listeners) can wait until then.
 */
export function afterVerdicts<T>(owner: AfterVerdicts<T>, subject: T): void {
  if (verdictBatch === undefined) owner.afterVerdicts(subject);
  else verdictBatch.push(owner, subject);
}

function runAfterVerdicts(batch: unknown[]): void {
  for (let i = 0; i < batch.length; i += 2)
    (batch[i] as AfterVerdicts<unknown>).afterVerdicts(batch[i + 1]);
}

/**
 * Many deadlines of one fixed duration behind a single timer.
 *
 * All entries of one queue share the same duration and are added in time order, so they expire
 * in FIFO order: one armed `setTimeout` for the head serves them all. That turns a
 * `setTimeout`+`clearTimeout` pair per call (the dominant cost of a retried call) into a linked-list
 * append and unlink. Entries are unlinked in O(1) wherever they are, so a hung call at the head
 * does not keep every call that finished after it reachable. When the queue drains, the timer is
 * released after the current event-loop turn rather than at once, so a tight loop of calls does not
 * arm and clear it for every call.
 */
export class FifoTimerQueue {
  private head: TimerNode | null = null;
  private tail: TimerNode | null = null;
  private timer: Timer | undefined = undefined;
  /** When the armed timer is due: how late it ran is measured from here, not from the head. */
  private timerDueAt = 0;
  /** When the timer last ran: its expiry takes the entries due by then. */
  private firedAt = 0;
  private releasePending = false;
  /** From the timer until expiries have run, pushes must not arm: expiry re-arms for the head. */
  private firing = false;

  constructor(readonly duration: number) {}

  /** Appends `node`, expiring `duration` ms after `at` (the caller's current time). */
  push(node: TimerNode, at: number): void {
    node.tExpiresAt = at + this.duration;
    node.tNext = null;
    node.tPrev = this.tail;
    node.tLive = true;
    if (this.tail === null) this.head = node;
    else this.tail.tNext = node;
    this.tail = node;
    if (this.timer === undefined && !this.firing) this.arm(node.tExpiresAt, at);
  }

  /** Unlinks `node`; O(1). */
  remove(node: TimerNode): void {
    if (!node.tLive) return;
    node.tLive = false;
    const { tPrev: prev, tNext: next } = node;
    if (prev === null) this.head = next;
    else prev.tNext = next;
    if (next === null) this.tail = prev;
    else next.tPrev = prev;
    node.tPrev = null;
    node.tNext = null;
    if (this.head === null && this.timer !== undefined && !this.releasePending) {
      this.releasePending = true;
      afterTurn(this.release);
    }
  }

  private arm(at: number, current: number): void {
    if (at <= current) {
      // Already due (it came due while the expiry ran): a 1 ms timer would leave the loop idle
      // for a millisecond or more while entries wait. The check phase comes as soon as this
      // turn's microtasks (the callers' handlers) and I/O have run.
      this.timerDueAt = current;
      this.timer = startSharedImmediate(this.fire);
      return;
    }
    // Timers may fire a fraction of a millisecond early relative to performance.now(); never arm
    // for less than 1 ms, and re-arm after expiry if the head is not due yet.
    const delay = Math.max(1, Math.ceil(at - current));
    this.timerDueAt = current + delay;
    this.timer = startSharedTimer(this.fire, delay);
  }

  private readonly release = (): void => {
    this.releasePending = false;
    if (this.head === null && this.timer !== undefined) {
      stopTimer(this.timer);
      this.timer = undefined;
    }
  };

  private readonly fire = (): void => {
    this.timer = undefined;
    const at = now();
    this.firing = true;
    this.firedAt = at;
    const phaseDeferring =
      deferredQueues.length > 0 &&
      Math.abs(at - deferringSince) <= LATE_MS &&
      deferredWith === globalThis.setImmediate;
    if (!phaseDeferring && at - this.timerDueAt <= LATE_MS) {
      FifoTimerQueue.expire([this]);
      return;
    }
    // The timer ran late: the event loop is saturated. Node runs overdue timers before it reads
    // I/O that has already arrived, so judging now would time out attempts whose responses are
    // waiting in a socket. Judge in the check phase instead, once this turn's I/O is read.
    if (!phaseDeferring) {
      // A stale list (its check phase never came) is judged with this one.
      deferringSince = at;
      deferredWith = globalThis.setImmediate;
      afterTurn(FifoTimerQueue.expireDeferred);
    }
    deferredQueues.push(this);
  };

  /** The check phase after late timers: the queues deferred in the timers phase. */
  private static readonly expireDeferred = (): void => {
    const queues = deferredQueues;
    deferredQueues = [];
    FifoTimerQueue.expire(queues);
  };

  /**
   * Every overdue entry of `queues` (due by when each queue's timer ran), across queues in the
   * order they came due, so that the first bound to come due decides; then re-arms each queue.
   */
  private static expire(queues: readonly FifoTimerQueue[]): void {
    // (An expiry callback may run another expiry, on a fake clock: the outer one holds the batch.)
    const outermost = verdictBatch === undefined;
    if (outermost) verdictBatch = [];
    // Indexed loops, each expiry read once: this runs once per entry, thousands in a row, mostly
    // before the optimizer takes the function over; an iterator or a time read through a getter
    // is then an allocation per verdict, and verdicts that allocate less are judged sooner.
    try {
      for (;;) {
        let next: FifoTimerQueue | undefined;
        let nextDue = Number.POSITIVE_INFINITY;
        for (let i = 0; i < queues.length; i++) {
          const queue = queues[i]!;
          const head = queue.head;
          if (head === null) continue;
          const due = head.tExpiresAt;
          if (due <= queue.firedAt && due < nextDue) {
            next = queue;
            nextDue = due;
          }
        }
        if (next === undefined) break;
        const head = next.head!;
        // Unlink before the callback: an expiry may start a new attempt that pushes.
        next.remove(head);
        head.onTimer(next.firedAt);
      }
    } finally {
      if (outermost) {
        const batch = verdictBatch!;
        verdictBatch = undefined;
        if (batch.length > 0) nextMicrotask(() => runAfterVerdicts(batch));
      }
      // Also after a throwing callback: the entries behind it still need a timer.
      for (let i = 0; i < queues.length; i++) {
        const queue = queues[i]!;
        queue.firing = false;
        if (queue.head !== null && queue.timer === undefined)
          queue.arm(queue.head.tExpiresAt, now());
      }
    }
  }
}
