/**
 * The clock, timers and the event-loop turn. Every global is read at call time, not at import
 * time, so a fake clock (`@sinonjs/fake-timers`) installed after this module was loaded still
 * drives it.
 */
import { attemptStorage } from './process-state.js';

/** Milliseconds on the monotonic clock. */
export function now(): number {
  return globalThis.performance.now();
}

type TimerHandle = unknown;

/** A one-shot timer together with the `clearTimeout` that matches the `setTimeout` that made it. */
export interface Timer {
  handle: TimerHandle;
  clear: (handle: any) => void;
}

export function startTimer(callback: () => void, ms: number): Timer {
  const g = globalThis;
  return { handle: g.setTimeout(callback, ms), clear: g.clearTimeout };
}

/** {@link startTimer} outside any attempt's context, for timers that serve a whole instance. */
export function startSharedTimer(callback: () => void, ms: number): Timer {
  return attemptStorage.exit(startTimer, callback, ms);
}

function startImmediate(callback: () => void): Timer {
  const g = globalThis;
  return { handle: g.setImmediate(callback), clear: g.clearImmediate };
}

/** A `setImmediate` as a {@link Timer}, outside any attempt's context (it serves a whole instance). */
export function startSharedImmediate(callback: () => void): Timer {
  return attemptStorage.exit(startImmediate, callback);
}

export function stopTimer(timer: Timer): void {
  timer.clear(timer.handle as never);
}

/** Runs `callback` once the current event-loop turn's I/O is done (setImmediate, read at call time). */
export function afterTurn(callback: () => void): void {
  // Outside any attempt's context: the callback serves the whole process, not one attempt.
  attemptStorage.exit(() => globalThis.setImmediate(callback));
}

/** Runs `callback` in a microtask. Not `queueMicrotask`: fake-timer libraries fake that one. */
export function nextMicrotask(callback: () => void): void {
  void Promise.resolve().then(callback);
}

/**
 * Immediate retries (a pause of 0) and the event loop.
 *
 * A function that fails at once, retried at once, would keep the microtask queue busy forever:
 * no timer, no I/O and no abort listener would run until it stopped. So an execution may retry
 * in a microtask once per event-loop turn; a further immediate retry in the same turn waits for
 * the check phase (`setImmediate`, never a 1 ms timer). A turn ends at the check phase: the first
 * immediate retry of a turn schedules one `setImmediate` that marks the end of it and runs the
 * retries waiting for it, shared by every execution.
 */
let turn = 0;
/**
 * The `setImmediate` the end of this turn was scheduled with. If another is installed now (a fake
 * clock was installed or removed), that callback may never run: schedule again.
 */
let checkScheduledWith: unknown;
let waiting: (() => void)[] = [];

/**
 * Whether a caller whose previous immediate retry ran in turn `lastTurn` (or -1) may retry at once:
 * returns the current turn to save if so, or -1 if the retry must wait for {@link nextTurn}.
 */
export function immediateTurn(lastTurn: number): number {
  if (checkScheduledWith !== globalThis.setImmediate) {
    checkScheduledWith = globalThis.setImmediate;
    afterTurn(endOfTurn);
  }
  return lastTurn === turn ? -1 : turn;
}

/**
 * Runs `callback` in this turn's check phase, after timers and I/O had their chance. Call it right
 * after {@link immediateTurn} returned -1: that call scheduled the end of the turn.
 */
export function nextTurn(callback: () => void): void {
  waiting.push(callback);
}

/**
 * Runs `callback` soon: in a microtask when `lastTurn` (what this returned for the caller's
 * previous immediate retry, or -1) is not the current turn; else in this turn's check phase.
 * Returns the turn to save for the next call.
 */
export function retrySoon(lastTurn: number, callback: () => void): number {
  const now = immediateTurn(lastTurn);
  if (now === -1) nextTurn(callback);
  else nextMicrotask(callback);
  return turn;
}

function endOfTurn(): void {
  checkScheduledWith = undefined;
  turn++;
  const run = waiting;
  waiting = [];
  // The callbacks are the engine's own and catch what the user's code throws.
  for (const callback of run) callback();
}
