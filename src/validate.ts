/**
 * The validation helpers every module that checks input shares: how a value reads in an error
 * message, the unknown-option check and the time check. Messages start with the function the user
 * called (`where`) and name the option and the value given.
 */

/** Largest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days); larger values would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Describes a value for an error message: `-1`, `'abc'` (string), `an object`, ... */
export function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}' (a string)`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return `${String(value)}${typeof value === 'number' ? '' : ` (a ${typeof value})`}`;
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (Array.isArray(value)) return 'an array';
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}

/**
 * Checks that `options` is a plain options object naming only `known` keys: a typo such as
 * `maxDelay` would otherwise be ignored silently.
 *
 * @param hint - appended to the unknown-option message, e.g. `'(set policy options on the Backoff)'`.
 * @throws TypeError when `options` is not an object, or names a key not in `known`.
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
  for (const key of Object.keys(options))
    if (!has(key))
      throw new TypeError(
        `${where}: unknown option '${key}'${hint === undefined ? '' : ` ${hint}`}`,
      );
}

/**
 * Checks a time in milliseconds: a number in [0, {@link MAX_TIMER_MS}] (what `setTimeout` can
 * wait). Returns it with `-0` made `0`.
 *
 * @throws TypeError when `value` is not a number.
 * @throws RangeError when it is negative, NaN, infinite or above {@link MAX_TIMER_MS}.
 */
export function checkTime(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(
      `${where}: '${name}' must be a number of milliseconds, got ${describe(value)}`,
    );
  // `!(value >= 0)` also catches NaN; the upper bound also catches Infinity.
  if (!(value >= 0) || value > MAX_TIMER_MS)
    throw new RangeError(
      `${where}: '${name}' must be a finite number >= 0 and <= ${MAX_TIMER_MS}, got ${describe(value)}`,
    );
  return value + 0;
}
