/**
 * A timeout to hand to a server (PostgreSQL's `statement_timeout`, a gRPC deadline header, an
 * HTTP `timeout` parameter) from the current attempt's remaining time. `remaining` itself is a
 * float that reaches 0 and is `Infinity` when nothing bounds the attempt; servers read 0 as "no
 * limit" and refuse `Infinity`, so the raw value must not be passed on.
 */
import { currentAttempt } from './attempt.js';
import { checkCount, checkOptions, MAX_TIMER_MS } from './validate.js';

/**
 * The largest value {@link serverTimeout} returns: 2147483647 ms (2³¹ − 1, about 24.8 days), the
 * largest `statement_timeout` PostgreSQL accepts and the largest delay `setTimeout` honours.
 */
export const MAX_SERVER_TIMEOUT = MAX_TIMER_MS;

/** Options of {@link serverTimeout}. */
export interface ServerTimeoutOptions {
  /**
   * The largest value to return, an integer in [1, 2147483647]: what an unbounded attempt (or a
   * call outside any attempt) gets.
   * @defaultValue `2147483647` ({@link MAX_SERVER_TIMEOUT})
   */
  readonly max?: number | undefined;
}

const KEYS = ['max'];

/**
 * The current attempt's remaining time as a timeout a server can be given: an integer number of
 * milliseconds, at least 1 and at most `max`, never 0 (which PostgreSQL, MySQL and many others
 * read as "no limit") and never `Infinity`.
 *
 * - Rounded down, so the server gives up no later than the attempt does.
 * - Inside an attempt with less than 1 ms left whose signal has not aborted yet (its timer is due
 *   in this event-loop turn): 1.
 * - Inside an attempt whose signal has aborted: throws the signal's reason, so the call is not
 *   started at all.
 * - Outside any attempt, or in an attempt with no time limit: `max`.
 *
 * @throws the current attempt's abort reason (an `AttemptTimeoutError`, a
 * `DeadlineExceededError`, a cancelling signal's reason) when its signal has aborted.
 * @throws TypeError / RangeError when `max` is not an integer in [1, 2147483647].
 *
 * @example
 * ```ts
 * const rows = await backoff.execute(async () => {
 *   const ms = serverTimeout(); // e.g. 183 when 183.6 ms are left
 *   await client.query(`SET statement_timeout = ${ms}`);
 *   // ...
 * });
 * ```
 */
export function serverTimeout(options?: ServerTimeoutOptions): number {
  let max = MAX_SERVER_TIMEOUT;
  if (options !== undefined) {
    checkOptions('serverTimeout', options, KEYS);
    if (options.max !== undefined) {
      checkCount('serverTimeout', 'max', options.max, { min: 1, limit: false });
      max = options.max;
    }
  }
  const attempt = currentAttempt();
  if (attempt === undefined) return max;
  const { signal } = attempt;
  if (signal.aborted) throw signal.reason;
  const remaining = attempt.remaining;
  if (remaining >= max) return max;
  return Math.max(1, Math.floor(remaining));
}
