/**
 * Input validation shared by every module that takes options: how a value reads in an error
 * message, the options-object check, and the checks for times, counts, booleans and functions.
 * Messages start with the function the user called (`where`) and name the option and the value.
 */

/** Largest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days); larger values would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Describes a value for an error message: `-1`, `'abc'` (a string), `an object (Date)`, ... */
export function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}' (a string)`;
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'bigint' || typeof value === 'boolean')
    return `${String(value)} (a ${typeof value})`;
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (typeof value === 'symbol') return `a symbol (${String(value.description)})`;
  if (Array.isArray(value)) return 'an array';
  if (typeof (value as { then?: unknown }).then === 'function') return 'a promise (a thenable)';
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}

/**
 * A thrown value's message, to put in another message: an error's `message`, else
 * {@link describe}. Never throws (a getter or proxy trap that does gets a placeholder).
 */
export function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? error.message : describe(error);
  } catch {
    return 'a value that cannot be shown';
  }
}

/**
 * Checks that `options` is an options object naming only `known` keys, as own properties: a typo
 * such as `maxDelay`, whether enumerable or not, and a key inherited from a prototype (which a
 * spread or a copy would drop) would otherwise be ignored silently.
 *
 * @param hint - appended to the unknown-option message, e.g. `'(set policy options on the Backoff)'`.
 * @throws TypeError naming `where` and the key.
 */
export function checkOptions(
  where: string,
  options: unknown,
  known: readonly string[] | ReadonlySet<string>,
  hint?: string,
): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  const has = Array.isArray(known)
    ? (key: string) => known.includes(key)
    : (key: string) => (known as ReadonlySet<string>).has(key);
  for (const key of Object.getOwnPropertyNames(options))
    if (!has(key))
      throw new TypeError(
        `${where}: unknown option '${key}'${hint === undefined ? '' : ` ${hint}`}`,
      );
  for (const key in options)
    if (!Object.hasOwn(options, key))
      throw new TypeError(
        `${where}: option '${key}' is inherited from a prototype; pass options as own properties`,
      );
}

/**
 * Checks a time in milliseconds: a number in [0, {@link MAX_TIMER_MS}] (what `setTimeout` can
 * wait), fractions included. For the parameters of delay strategies, which may be computed; the
 * policy's own times use {@link checkOptionTime}.
 *
 * @throws TypeError when `value` is not a number.
 * @throws RangeError when it is negative (-0 too: a sign a computation went wrong, as for the
 *   policy's times), NaN, infinite or above {@link MAX_TIMER_MS}.
 */
export function checkTime(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(
      `${where}: '${name}' must be a number of milliseconds, got ${describe(value)}`,
    );
  // `!(value >= 0)` also catches NaN; the upper bound also catches Infinity.
  if (!(value >= 0) || value > MAX_TIMER_MS || Object.is(value, -0))
    throw new RangeError(
      `${where}: '${name}' must be a finite number >= 0 and <= ${MAX_TIMER_MS}, got ${describe(value)}`,
    );
  return value;
}

/**
 * A time option of a policy (`attemptTimeout`, `deadline`, `pause`, `maxRetryAfter`): 0 (unless
 * `allowZero` is false) or a number in [1, 2^31 - 1]. With `limit`, `null`, `undefined` and
 * `Infinity` mean "no limit" and give `Infinity`. A value between 0 and 1 is refused as what it
 * almost always is: seconds, copied from Python.
 *
 * @throws TypeError for a non-number; RangeError for NaN, a negative number or -0, 0 unless
 *   `allowZero`, a value between 0 and 1, or more than 2^31 - 1 ms.
 */
export function checkOptionTime(
  where: string,
  name: string,
  value: unknown,
  { allowZero, limit }: { allowZero: boolean; limit: boolean },
): number {
  if (value === null || value === undefined) {
    if (limit) return Number.POSITIVE_INFINITY;
  } else if (typeof value === 'number') {
    if (limit && value === Number.POSITIVE_INFINITY) return value;
    if (value > 0 && value < 1)
      throw new RangeError(
        `${where}: '${name}' is ${describe(value)} ms; times are milliseconds (write ${value * 1000} for ${value} s)`,
      );
    if (value >= 0 && !Object.is(value, -0) && (allowZero || value > 0) && value <= MAX_TIMER_MS)
      return value;
    const range = `${allowZero ? '0, or ' : ''}>= 1 and <= ${MAX_TIMER_MS} ms`;
    const none = limit ? ' (or null or Infinity for no limit)' : '';
    throw new RangeError(`${where}: '${name}' must be ${range}${none}, got ${describe(value)}`);
  }
  throw new TypeError(
    `${where}: '${name}' must be a number of milliseconds${limit ? ' or null' : ''}, got ${describe(value)}`,
  );
}

/**
 * A count option: an integer in [min, 2^31 - 1]; with `limit`, `null`, `undefined` and `Infinity`
 * give `Infinity` (no limit).
 * @throws TypeError for a non-number; RangeError otherwise.
 */
export function checkCount(
  where: string,
  name: string,
  value: unknown,
  { min, limit }: { min: number; limit: boolean },
): number {
  if (limit && (value === null || value === undefined || value === Number.POSITIVE_INFINITY))
    return Number.POSITIVE_INFINITY;
  const expected = `an integer >= ${min} and <= ${MAX_TIMER_MS}${limit ? ' (or null or Infinity for no limit)' : ''}`;
  if (typeof value !== 'number')
    throw new TypeError(`${where}: '${name}' must be ${expected}, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > MAX_TIMER_MS || Object.is(value, -0))
    throw new RangeError(`${where}: '${name}' must be ${expected}, got ${describe(value)}`);
  return value;
}

/** A boolean option; `undefined` gives `fallback`. @throws TypeError for anything else. */
export function checkBoolean(where: string, name: string, value: unknown, fallback: boolean) {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new TypeError(`${where}: '${name}' must be a boolean, got ${describe(value)}`);
  return value;
}

/**
 * An optional function option (`null` and `undefined` give `undefined`); with `allowName`, a
 * non-empty string (a method of the decorated object) is accepted too.
 * @throws TypeError for anything else.
 */
export function checkFunction<T>(
  where: string,
  name: string,
  value: T,
  allowName = false,
): Exclude<T, null> | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'function') return value as Exclude<T, null>;
  if (allowName && typeof value === 'string' && value.length > 0) return value as Exclude<T, null>;
  throw new TypeError(
    `${where}: '${name}' must be a function${allowName ? ' or a method name' : ''}, got ${describe(value)}`,
  );
}
