/** Small helpers for error messages, shared by every module that validates input. */

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
 */
export function checkOptions(where: string, options: unknown, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options))
    if (!known.includes(key)) throw new TypeError(`${where}: unknown option '${key}'`);
}
