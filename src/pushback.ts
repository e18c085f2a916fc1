/**
 * Server pushback: reading a server's "retry after" hint (HTTP `Retry-After`, gRPC
 * `grpc-retry-pushback-ms`) so that the `retryAfter` option can honour it.
 *
 * The engine does the rest: the next pause is at least the hint, a hint past the deadline or above
 * `maxRetryAfter` gives up at once, and a negative hint means "do not retry".
 */
import type { RetryAfterHint } from './types.js';
import { describe, MAX_TIMER_MS } from './validate.js';

const DELTA_SECONDS = /^\d+$/;

const MONTHS: Record<string, number> = {
  jan: 0,
  feb: 1,
  mar: 2,
  apr: 3,
  may: 4,
  jun: 5,
  jul: 6,
  aug: 7,
  sep: 8,
  oct: 9,
  nov: 10,
  dec: 11,
};
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
/** `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate, the preferred form). */
const IMF_FIXDATE = new RegExp(
  `^(?:mon|tue|wed|thu|fri|sat|sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`,
  'i',
);
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete RFC 850 form). */
const RFC850_DATE = new RegExp(
  `^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
  'i',
);
/** `Sun Nov  6 08:49:37 1994` (obsolete ANSI C asctime() form; always GMT). */
const ASCTIME_DATE = new RegExp(
  `^(?:mon|tue|wed|thu|fri|sat|sun) ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`,
  'i',
);

/**
 * Milliseconds since the epoch of an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, or the obsolete
 * RFC 850 and asctime forms, all in GMT), or `undefined` if `value` is not one.
 */
function parseHttpDate(value: string, now: number): number | undefined {
  let day: string;
  let month: string;
  let year: number;
  let hms: string[];
  const imf = IMF_FIXDATE.exec(value);
  const rfc850 = imf === null ? RFC850_DATE.exec(value) : null;
  const asctime = imf === null && rfc850 === null ? ASCTIME_DATE.exec(value) : null;
  if (imf !== null) {
    const [, d, m, y, ...time] = imf as unknown as string[];
    day = d!;
    month = m!;
    year = Number(y);
    hms = time;
  } else if (rfc850 !== null) {
    const [, d, m, yy, ...time] = rfc850 as unknown as string[];
    day = d!;
    month = m!;
    // RFC 9110: a two-digit year that would be more than 50 years in the future is taken as the
    // most recent past year with the same last two digits.
    const currentYear = new Date(now).getUTCFullYear();
    year = Math.floor(currentYear / 100) * 100 + Number(yy);
    if (year > currentYear + 50) year -= 100;
    hms = time;
  } else if (asctime !== null) {
    const [, m, d, hh, mm, ss, y] = asctime as unknown as string[];
    day = d!.trim();
    month = m!;
    year = Number(y);
    hms = [hh!, mm!, ss!];
  } else return undefined;
  const monthIndex = MONTHS[month.toLowerCase()]!;
  const dayOfMonth = Number(day);
  const [hours, minutes, seconds] = hms.map(Number) as [number, number, number];
  // 60 is allowed for a leap second (RFC 9110 §5.6.7).
  if (hours > 23 || minutes > 59 || seconds > 60 || dayOfMonth < 1) return undefined;
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(year, monthIndex, dayOfMonth);
  // A day the month does not have (31 Feb) rolls over into the next month: reject it.
  if (date.getUTCMonth() !== monthIndex) return undefined;
  date.setUTCHours(hours, minutes, seconds);
  const time = date.getTime();
  return time;
}

/**
 * Parses an HTTP `Retry-After` header value (RFC 9110 §10.2.3) into milliseconds from `now`.
 *
 * - delta-seconds (a non-negative integer): that many seconds, in milliseconds;
 * - an HTTP-date (IMF-fixdate such as `Wed, 21 Oct 2015 07:28:00 GMT`, or the obsolete RFC 850 and
 *   asctime forms): the time from `now` until then, `0` if it is already past;
 * - anything else (absent, empty, negative, fractional, not a date): `undefined`.
 *
 * Leading and trailing whitespace is ignored. The result can be returned from a `retryAfter`
 * extractor as is.
 *
 * @param value - the header value, e.g. `response.headers.get('retry-after')`.
 * @param now - the current time in ms since the epoch, for HTTP-dates.
 * @defaultValue `now`: `Date.now()`
 * @example
 * ```ts
 * parseRetryAfter('120');                           // 120000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'); // ms until then, or 0
 * parseRetryAfter('soon');                          // undefined
 * const backoff = new Backoff({
 *   exceptions: [HttpError],
 *   retryAfter: (error) => parseRetryAfter((error as HttpError).headers['retry-after']),
 * });
 * ```
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (DELTA_SECONDS.test(text)) {
    const ms = Number(text) * 1000;
    return Number.isFinite(ms) ? ms : undefined;
  }
  const time = parseHttpDate(text, now);
  if (time === undefined || Number.isNaN(time)) return undefined;
  return Math.max(0, time - now);
}

/**
 * Parses a gRPC `grpc-retry-pushback-ms` trailer value (gRPC proposal A6). A non-negative integer
 * is a delay in milliseconds. A negative or malformed value means the server asks the client not
 * to retry at all: the result is then `-1`, which the `retryAfter` option treats as "give up".
 * An absent value (`null`/`undefined`) gives `undefined` (no hint).
 *
 * @example
 * ```ts
 * parseGrpcPushback('250'); // 250
 * parseGrpcPushback('-1');  // -1: do not retry
 * parseGrpcPushback('abc'); // -1: do not retry
 * const backoff = new Backoff({
 *   exceptions: [GrpcError],
 *   retryAfter: (error) => parseGrpcPushback((error as GrpcError).metadata.get('grpc-retry-pushback-ms')[0]),
 * });
 * ```
 */
export function parseGrpcPushback(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string') return -1;
  const text = value.trim();
  if (!DELTA_SECONDS.test(text)) return -1;
  const ms = Number(text);
  return Number.isFinite(ms) ? ms : -1;
}

function isObject(value: unknown): value is Record<PropertyKey, unknown> {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/** The `Retry-After` value of a `Headers`-like object or a plain header record, if any. */
function headerOf(headers: unknown, name: string): string | undefined {
  if (!isObject(headers)) return undefined;
  let value: unknown;
  if (typeof headers.get === 'function') value = (headers.get as (key: string) => unknown)(name);
  else {
    // A plain record may spell the name in any case (`Retry-After`, `retry-after`): HTTP header
    // names are case-insensitive.
    value = headers[name];
    if (value === undefined)
      for (const key of Object.keys(headers))
        if (key.toLowerCase() === name) {
          value = headers[key];
          break;
        }
  }
  if (Array.isArray(value)) value = value[0];
  return typeof value === 'string' ? value : undefined;
}

/** A hint from a `retryAfter` property: ms, a Date, or a raw header string. */
function fromProperty(value: unknown): RetryAfterHint {
  if (typeof value === 'number') return Number.isNaN(value) ? undefined : value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value;
  if (typeof value === 'string') return parseRetryAfter(value);
  return undefined;
}

/** The hint carried by the headers (or gRPC metadata) of `source`, if any. */
function fromHeaders(source: Record<PropertyKey, unknown>): RetryAfterHint {
  const header = headerOf(source.headers, 'retry-after');
  if (header !== undefined) return parseRetryAfter(header);
  const metadata = source.metadata;
  if (isObject(metadata) && typeof metadata.get === 'function') {
    // @grpc/grpc-js: Metadata#get returns an array of values.
    const values = (metadata.get as (key: string) => unknown)('grpc-retry-pushback-ms');
    const first = Array.isArray(values) ? values[0] : values;
    if (typeof first === 'string') return parseGrpcPushback(first);
    if (first !== undefined && first !== null) return -1;
  }
  return undefined;
}

/**
 * A ready-made `retryAfter` extractor: finds a server's retry-after hint on a thrown error or a
 * returned value. It looks, in order, at:
 *
 * 1. a `retryAfter` property: milliseconds (number), a `Date`, or a raw `Retry-After` header string;
 * 2. a `retryAfterMs` property (milliseconds);
 * 3. the object's own `headers` (a `Response`, a `Headers`-like object with `get`, or a plain
 *    record such as Node's `IncomingHttpHeaders`): the `Retry-After` header;
 * 4. the object's gRPC `metadata` (`@grpc/grpc-js`): `grpc-retry-pushback-ms`, where a negative
 *    or malformed value means "do not retry";
 * 5. the same headers and metadata on its `response` property (the error of axios, got, ...).
 *
 * Returns `undefined` (no hint) when none is found.
 *
 * @example
 * ```ts
 * const api = new Backoff({
 *   attemptTimeout: 2_000,
 *   deadline: 30_000,
 *   pause: exponential({ initial: 100, max: 5_000, jitter: 'full' }),
 *   exceptions: [HttpError],
 *   retryAfter: retryAfterFrom,    // HttpError carries the response: honour its Retry-After
 *   maxRetryAfter: 20_000,         // a longer hint gives up at once
 * });
 * ```
 */
export function retryAfterFrom(outcome: unknown): RetryAfterHint {
  if (!isObject(outcome)) return undefined;
  if (typeof Response === 'function' && outcome instanceof Response)
    return parseRetryAfter(outcome.headers.get('retry-after'));
  const direct = fromProperty(outcome.retryAfter);
  if (direct !== undefined) return direct;
  const ms = outcome.retryAfterMs;
  if (typeof ms === 'number' && !Number.isNaN(ms)) return ms;
  const own = fromHeaders(outcome);
  if (own !== undefined) return own;
  const response = outcome.response;
  if (typeof Response === 'function' && response instanceof Response)
    return parseRetryAfter(response.headers.get('retry-after'));
  if (isObject(response)) return fromHeaders(response);
  return undefined;
}

/** @internal What a pushback hint asks of the next pause. */
export const REFUSE_RETRY = -1;

/**
 * @internal The pause (ms) a `retryAfter` hint asks for: `undefined` for no hint, or
 * {@link REFUSE_RETRY} when the server asked not to retry (a negative hint) or asked for longer
 * than `maxRetryAfter` (or than `setTimeout` can wait, which is as unusable).
 * @throws TypeError when the extractor returned something that is not a hint.
 */
export function pushbackDelay(hint: unknown, maxRetryAfter: number): number | undefined {
  if (hint === null || hint === undefined) return undefined;
  let ms: number;
  if (hint instanceof Date) ms = Math.max(0, hint.getTime() - Date.now());
  else if (typeof hint === 'number' && !Number.isNaN(hint)) ms = hint;
  else
    throw new TypeError(
      `Backoff: 'retryAfter' must return milliseconds, a Date, null or undefined, got ${describe(hint)}`,
    );
  if (Number.isNaN(ms)) return undefined; // an invalid Date: no hint
  if (ms < 0 || ms > maxRetryAfter || ms > MAX_TIMER_MS) return REFUSE_RETRY;
  return ms;
}
