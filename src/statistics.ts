/**
 * The counters of one `Backoff` instance, shared by its views, the functions it wraps and the
 * policies derived from it (`createFetch`, `withLock`). The engine writes them in two places
 * only: when an attempt ends and when an execution settles (plus the pause and budget counters
 * where those happen).
 */
import type { BackoffStatistics } from './types.js';

export type Statistics = { -readonly [K in keyof BackoffStatistics]: number };

/** A fresh, zeroed statistics record. */
export function emptyStatistics(): Statistics {
  return {
    attempts: 0,
    done: 0,
    errors: 0,
    cancels: 0,
    sumTime: 0,
    timeouts: 0,
    retries: 0,
    giveUps: 0,
    sleptTime: 0,
    budgetRefusals: 0,
    successes: 0,
    lateResults: 0,
    breakerRefusals: 0,
  };
}

/**
 * How an attempt ended, for the counters: it fulfilled (whether `retryIf` marked the result is
 * counted by {@link countFailure}), it failed (threw, rejected, or its timer ran out), or the
 * deadline or a cancellation stopped it while it ran.
 */
export type AttemptEnd = 'fulfilled' | 'failed' | 'cancelled';

/** An attempt that ran `ms` milliseconds ended. */
export function countAttemptEnd(stats: Statistics, end: AttemptEnd, ms: number): void {
  stats.done++;
  stats.sumTime += ms;
  if (end === 'cancelled') stats.cancels++;
}

/** An attempt failed: threw (`'error'`), timed out, or returned a result `retryIf` marked. */
export function countFailure(stats: Statistics, timedOut: boolean): void {
  stats.errors++;
  if (timedOut) stats.timeouts++;
}

/**
 * How an execution settled, for the counters: it succeeded, it gave up (a final failure for any
 * reason but cancellation, the deadline included), or a signal or an enclosing attempt stopped it.
 */
export type Settlement = 'success' | 'giveup' | 'cancel';

/** An execution settled. */
export function countSettlement(stats: Statistics, how: Settlement): void {
  if (how === 'success') stats.successes++;
  else if (how === 'giveup') stats.giveUps++;
}
