/**
 * Durations on the command line: `500ms`, `2s`, `1.5s`, `1m`, `1h30m`. A bare number is refused
 * (but `0`): the library counts milliseconds and `timeout(1)` seconds, so `5` would surprise one
 * reader or the other. Parsing and formatting only; no I/O.
 */

import { MAX_TIMER_MS } from '../validate.js';

/** The longest duration accepted: what `setTimeout` honours (about 24.8 days). */
export const MAX_DURATION_MS = MAX_TIMER_MS;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A number with an optional fraction (`1`, `1.5`, `.5`); no sign, no exponent. */
const NUMBER = String.raw`(?:\d+(?:\.\d+)?|\.\d+)`;
const BARE = new RegExp(`^${NUMBER}$`);
const COMPOUND = new RegExp(`^(?:${NUMBER}(?:ms|h|m|s))+$`);
const PART = new RegExp(`(${NUMBER})(ms|h|m|s)`, 'g');

/**
 * Parses a duration into whole milliseconds (rounded to the nearest).
 *
 * Accepted: one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h` (`500ms`, `1.5s`,
 * `1m30s`), and a bare `0`. Rejected: any other bare number (`5`: seconds or milliseconds?),
 * signs, exponents, spaces, upper-case units, a non-zero duration under 1 ms, and anything above
 * {@link MAX_DURATION_MS}.
 *
 * @throws RangeError with a message naming the text when it is not a duration; for a bare number
 *   the message suggests both readings (`5s (5000ms) or 5ms`).
 * @example
 * ```ts
 * parseDuration('1.5s'); // 1500
 * parseDuration('1m30s'); // 90000
 * parseDuration('0'); // 0
 * parseDuration('250'); // RangeError: '250' needs a unit: 250s (250000ms) or 250ms
 * ```
 */
export function parseDuration(text: string): number {
  let ms: number;
  if (BARE.test(text)) {
    if (Number(text) !== 0) {
      const asSeconds = Math.round(Number(text) * 1000);
      throw new RangeError(`'${text}' needs a unit: ${text}s (${asSeconds}ms) or ${text}ms`);
    }
    ms = 0;
  } else if (COMPOUND.test(text)) {
    ms = 0;
    for (const [, value, unit] of text.matchAll(PART)) ms += Number(value) * UNIT_MS[unit!]!;
  } else throw new RangeError(`'${text}' is not a duration (examples: 500ms, 2s, 1.5s, 1m, 1h30m)`);
  // Rounding would turn 0.4ms into 0 (for a deadline: no attempt at all); the library refuses
  // such times too.
  if (ms > 0 && ms < 1)
    throw new RangeError(`'${text}' is shorter than 1ms: give 0 or at least 1ms`);
  ms = Math.round(ms);
  if (ms > MAX_DURATION_MS)
    throw new RangeError(`'${text}' is too long (at most ${MAX_DURATION_MS} ms, about 24.8 days)`);
  return ms;
}

/**
 * Formats milliseconds for progress messages: `350ms`, `1.2s`, `59s`, `2m5s`, `1h2m`.
 *
 * @example
 * ```ts
 * formatDuration(1234); // '1.2s'
 * formatDuration(125_000); // '2m5s'
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) {
    const tenths = Math.round(ms / 100);
    // 59.96 s rounds to 60.0 s: show it as 1m0s rather than "60s".
    if (tenths < 600) return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)}s`;
  }
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}
