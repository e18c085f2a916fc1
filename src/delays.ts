/**
 * Delay strategies: how long to pause between attempts.
 *
 * Every strategy is a frozen object with one method, `delay(context)`. Everything that varies
 * between executions (the attempt number, the previous pause, the random source) comes in through
 * the {@link DelayContext}, so one strategy can be shared by any number of concurrent executions
 * and a seeded random source ({@link seededRandom}) makes every pause reproducible.
 *
 * Options are checked when a strategy is made: a bad value throws at once (`TypeError` for a wrong
 * type, `RangeError` for a number out of range), naming the option and the value given. Nothing is
 * silently clamped. All times are milliseconds; no strategy returns more than 2147483647 ms, the
 * longest pause `setTimeout` honours.
 */

import type { DelayContext, DelayFunction, DelayStrategy } from './types.js';
// checkTime refuses -0, and nothing below turns +0 into -0, so no strategy ever returns -0.
import { checkOptions, checkTime, describe, MAX_TIMER_MS } from './validate.js';

/**
 * How a strategy randomises its delay `d` (see "Exponential Backoff and Jitter", AWS Architecture
 * Blog, 2015). `r` is one draw of `context.random()` in [0, 1):
 *
 * - `'none'`: `d`; no draw is made.
 * - `'full'`: `d * r`, in [0, d].
 * - `'equal'`: `d / 2 + (d / 2) * r`, in [d/2, d] (capped at `d` against rounding).
 * - `'decorrelated'`: `min(max, base + (max(base, 3 * prev) - base) * r)`, in [base, max], where
 *   `base` is the strategy's first delay (`initial`, or the constant, or the list's first entry)
 *   and `prev` is `context.previousDelay ?? base`. It replaces the strategy's own growth curve: the
 *   pause grows by up to 3x per retry from whatever the previous pause was, until `max`.
 */
export type Jitter = 'none' | 'full' | 'equal' | 'decorrelated';

/** Options shared by every strategy that supports jitter. */
export interface JitterOptions {
  /**
   * How to randomise each delay; see {@link Jitter}.
   * @defaultValue `'none'`
   */
  readonly jitter?: Jitter | undefined;
}

/** Options of {@link constant}. */
export interface ConstantOptions extends JitterOptions {
  /**
   * The cap of `'decorrelated'` jitter (the other modes never exceed the constant). Must be >= the
   * constant.
   * @defaultValue `2147483647` (setTimeout's maximum)
   */
  readonly max?: number | undefined;
}

/** Options of {@link linear}. */
export interface LinearOptions extends JitterOptions {
  /** The first delay (after attempt 1 fails). A finite number >= 0. */
  readonly initial: number;
  /** Added for every further failed attempt. A finite number >= 0. */
  readonly step: number;
  /**
   * The largest delay, before jitter. Must be >= `initial`.
   * @defaultValue `2147483647` (setTimeout's maximum)
   */
  readonly max?: number | undefined;
}

/** Options of {@link exponential}. */
export interface ExponentialOptions extends JitterOptions {
  /** The first delay (after attempt 1 fails). A finite number >= 0. */
  readonly initial: number;
  /**
   * The multiplier per failed attempt. A finite number >= 1.
   * @defaultValue `2`
   */
  readonly factor?: number | undefined;
  /**
   * The largest delay, before jitter. Must be >= `initial`.
   * @defaultValue `2147483647` (setTimeout's maximum)
   */
  readonly max?: number | undefined;
}

/** Options of {@link fibonacci}. */
export interface FibonacciOptions extends JitterOptions {
  /** The first and second delay. A finite number >= 0. */
  readonly initial: number;
  /**
   * The largest delay, before jitter. Must be >= `initial`.
   * @defaultValue `2147483647` (setTimeout's maximum)
   */
  readonly max?: number | undefined;
}

/** Options of {@link delays}. */
export interface DelaysOptions extends JitterOptions {
  /**
   * The cap of `'decorrelated'` jitter (the other modes never exceed the list's entries). Must be
   * >= every entry of the list.
   * @defaultValue `2147483647` (setTimeout's maximum)
   */
  readonly max?: number | undefined;
}

/** Strategies made here; they validate their own output, so {@link resolveDelay} need not wrap them. */
const builtIns = new WeakSet<DelayStrategy>();

/** The jitter kinds, in the order error messages and the CLI's usage list them. */
export const JITTERS: readonly Jitter[] = ['none', 'full', 'equal', 'decorrelated'];

// ---------------------------------------------------------------------------------------------
// Validation helpers. `who` is the factory's name; it starts every message.

function checkJitter(who: string, value: unknown): Jitter {
  if (value === undefined) return 'none';
  if (!JITTERS.includes(value as Jitter))
    throw new TypeError(
      `${who}: 'jitter' must be one of ${JITTERS.map((j) => `'${j}'`).join(', ')}, got ${describe(value)}`,
    );
  return value as Jitter;
}

function checkMax(who: string, value: unknown, floorName: string, floor: number): number {
  if (value === undefined) return MAX_TIMER_MS;
  const max = checkTime(who, 'max', value);
  if (max < floor)
    throw new RangeError(`${who}: 'max' must be >= ${floorName} (${floor}), got ${describe(max)}`);
  return max;
}

function checkDecorrelatedBase(who: string, jitter: Jitter, name: string, base: number): void {
  // With base 0 the decorrelated range U(0, 3 * 0) never leaves 0: almost surely a mistake.
  if (jitter === 'decorrelated' && base === 0)
    throw new RangeError(`${who}: ${name} must be > 0 with jitter 'decorrelated', got 0`);
}

// ---------------------------------------------------------------------------------------------
// Run-time checks of the context, so a strategy called by hand with a bad context fails loudly
// instead of returning NaN to a timer.

function attemptOf(who: string, context: DelayContext): number {
  const attempt = context.attempt;
  if (!Number.isInteger(attempt) || attempt < 1)
    throw new RangeError(
      `${who}: context.attempt must be an integer >= 1, got ${describe(attempt)}`,
    );
  return attempt;
}

function draw(who: string, context: DelayContext): number {
  const random = context.random;
  if (typeof random !== 'function')
    throw new TypeError(`${who}: context.random must be a function, got ${describe(random)}`);
  const r = random();
  if (typeof r !== 'number' || !(r >= 0 && r < 1))
    throw new RangeError(
      `${who}: context.random() must return a number in [0, 1), got ${describe(r)}`,
    );
  return r;
}

function previousOf(who: string, context: DelayContext, base: number): number {
  const previous = context.previousDelay;
  if (previous === undefined) return base;
  if (typeof previous !== 'number' || !(previous >= 0) || previous === Number.POSITIVE_INFINITY)
    throw new RangeError(
      `${who}: context.previousDelay must be undefined or a finite number >= 0, got ${describe(previous)}`,
    );
  return previous;
}

function checkResult(who: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(`${who} must return a number of milliseconds, got ${describe(value)}`);
  if (!(value >= 0) || value > MAX_TIMER_MS)
    throw new RangeError(
      `${who} returned ${describe(value)}; a delay must be a finite number >= 0 and <= ${MAX_TIMER_MS}`,
    );
  return value;
}

// ---------------------------------------------------------------------------------------------

function register(strategy: DelayStrategy): DelayStrategy {
  Object.freeze(strategy);
  builtIns.add(strategy);
  return strategy;
}

/**
 * Builds a frozen strategy from a jitter-free delay curve `raw`. `base` and `max` only matter to
 * `'decorrelated'`, which ignores `raw`.
 */
function withJitter(
  who: string,
  jitter: Jitter,
  base: number,
  max: number,
  raw: (context: DelayContext) => number,
): DelayStrategy {
  switch (jitter) {
    case 'none':
      return register({ delay: raw });
    case 'full':
      return register({ delay: (context) => raw(context) * draw(who, context) });
    case 'equal':
      return register({
        delay(context) {
          const d = raw(context);
          // min() only matters for subnormal d, where d / 2 rounds up.
          return Math.min(d, d / 2 + (d / 2) * draw(who, context));
        },
      });
    case 'decorrelated':
      return register({
        delay(context) {
          const previous = previousOf(who, context, base);
          // A previous pause below `base` (a policy or a retry-after hint may have chosen it)
          // would invert the range; keep the floor at `base`.
          const high = Math.max(base, 3 * previous);
          return Math.min(max, base + (high - base) * draw(who, context));
        },
      });
  }
}

/**
 * The same delay after every failed attempt.
 *
 * Bounds: `ms` without jitter; [0, ms] with `'full'`; [ms/2, ms] with `'equal'`; [ms, max] with
 * `'decorrelated'`.
 *
 * @param ms - the delay, a finite number in [0, 2147483647].
 * @param options - `jitter` (default `'none'`); `max`, the cap of `'decorrelated'` jitter
 *   (default 2147483647, so pass one when using `'decorrelated'`).
 * @defaultValue options: `{ jitter: 'none', max: 2147483647 }`
 * @throws TypeError when `ms` is not a number, `options` is not an object, an option is unknown or
 *   `jitter` is not a known mode.
 * @throws RangeError when `ms` or `max` is negative, NaN, infinite or above 2147483647, when
 *   `max < ms`, or when `ms` is 0 with `'decorrelated'` jitter.
 * @example
 * ```ts
 * new Backoff({ pause: constant(500, { jitter: 'full' }), maxTries: 5 });
 * ```
 */
export function constant(ms: number, options: ConstantOptions = {}): DelayStrategy {
  return makeConstant('constant', 'ms', ms, options);
}

function makeConstant(
  who: string,
  name: string,
  ms: unknown,
  options: ConstantOptions,
): DelayStrategy {
  const value = checkTime(who, name, ms);
  checkOptions(who, options, ['jitter', 'max']);
  const jitter = checkJitter(who, options.jitter);
  const max = checkMax(who, options.max, `'${name}'`, value);
  checkDecorrelatedBase(who, jitter, `'${name}'`, value);
  return withJitter(who, jitter, value, max, () => value);
}

/**
 * A delay that grows by `step` per failed attempt: `min(max, initial + step * (attempt - 1))`.
 *
 * Bounds: [initial, max] without jitter; [0, d] with `'full'` and [d/2, d] with `'equal'` (d being
 * the jitter-free delay); [initial, max] with `'decorrelated'`.
 *
 * @defaultValue `max`: 2147483647; `jitter`: `'none'`
 * @throws TypeError when an option has the wrong type or is unknown, or `jitter` is not a known mode.
 * @throws RangeError when `initial`, `step` or `max` is negative, NaN, infinite or above
 *   2147483647, when `max < initial`, or when `initial` is 0 with `'decorrelated'` jitter.
 * @example
 * ```ts
 * linear({ initial: 100, step: 100, max: 1000 }); // 100, 200, 300, ..., 1000, 1000, ...
 * ```
 */
export function linear(options: LinearOptions): DelayStrategy {
  const who = 'linear';
  checkOptions(who, options, ['initial', 'step', 'max', 'jitter']);
  const initial = checkTime(who, 'initial', options.initial);
  const step = checkTime(who, 'step', options.step);
  const max = checkMax(who, options.max, "'initial'", initial);
  const jitter = checkJitter(who, options.jitter);
  checkDecorrelatedBase(who, jitter, "'initial'", initial);
  return withJitter(who, jitter, initial, max, (context) =>
    // For absurd attempt numbers the product may reach Infinity; min() still returns `max`.
    Math.min(max, initial + step * (attemptOf(who, context) - 1)),
  );
}

/**
 * A delay multiplied by `factor` per failed attempt: `min(max, initial * factor ** (attempt - 1))`.
 * The power is not computed past the attempt where it reaches `max`, so a huge attempt number
 * returns `max`, never `Infinity` or `NaN`.
 *
 * Bounds: [initial, max] without jitter; [0, d] with `'full'` and [d/2, d] with `'equal'` (d being
 * the jitter-free delay); [initial, max] with `'decorrelated'` (which ignores `factor`).
 *
 * @defaultValue `factor`: 2; `max`: 2147483647; `jitter`: `'none'`
 * @throws TypeError when an option has the wrong type or is unknown, or `jitter` is not a known mode.
 * @throws RangeError when `initial` or `max` is negative, NaN, infinite or above 2147483647, when
 *   `factor` is below 1 or not finite, when `max < initial`, or when `initial` is 0 with
 *   `'decorrelated'` jitter.
 * @example
 * ```ts
 * exponential({ initial: 100, max: 10_000, jitter: 'full' }); // d = 100, 200, 400, ... capped at 10 s
 * ```
 */
export function exponential(options: ExponentialOptions): DelayStrategy {
  const who = 'exponential';
  checkOptions(who, options, ['initial', 'factor', 'max', 'jitter']);
  const initial = checkTime(who, 'initial', options.initial);
  const factor = options.factor === undefined ? 2 : options.factor;
  if (typeof factor !== 'number')
    throw new TypeError(`${who}: 'factor' must be a number, got ${describe(factor)}`);
  if (!(factor >= 1) || factor === Number.POSITIVE_INFINITY)
    throw new RangeError(`${who}: 'factor' must be a finite number >= 1, got ${describe(factor)}`);
  const max = checkMax(who, options.max, "'initial'", initial);
  const jitter = checkJitter(who, options.jitter);
  checkDecorrelatedBase(who, jitter, "'initial'", initial);
  // The exponent from which initial * factor^n >= max for certain (+1 absorbs rounding in the
  // logarithms); past it the power is never computed, so it cannot overflow to Infinity.
  const capExponent =
    factor === 1
      ? Number.POSITIVE_INFINITY
      : Math.ceil(Math.log(max / initial) / Math.log(factor)) + 1;
  return withJitter(who, jitter, initial, max, (context) => {
    const exponent = attemptOf(who, context) - 1;
    // 0 * factor^n is 0, but 0 * Infinity would be NaN.
    if (initial === 0) return 0;
    if (exponent >= capExponent) return max;
    return Math.min(max, initial * factor ** exponent);
  });
}

/**
 * A delay that follows the Fibonacci numbers: `min(max, initial * fib(attempt))` with
 * fib(1) = 1, fib(2) = 1, fib(3) = 2, ... (the convention of Python's `backoff.fibo`), so the
 * delays are `initial, initial, 2 * initial, 3 * initial, 5 * initial, ...`. Grows more gently than
 * doubling (by about 1.618 per attempt).
 *
 * Bounds: [initial, max] without jitter; [0, d] with `'full'` and [d/2, d] with `'equal'` (d being
 * the jitter-free delay); [initial, max] with `'decorrelated'`.
 *
 * @defaultValue `max`: 2147483647; `jitter`: `'none'`
 * @throws TypeError when an option has the wrong type or is unknown, or `jitter` is not a known mode.
 * @throws RangeError when `initial` or `max` is negative, NaN, infinite or above 2147483647, when
 *   `max < initial`, or when `initial` is 0 with `'decorrelated'` jitter.
 * @example
 * ```ts
 * fibonacci({ initial: 100, max: 2000 }); // 100, 100, 200, 300, 500, 800, 1300, 2000, 2000, ...
 * ```
 */
export function fibonacci(options: FibonacciOptions): DelayStrategy {
  const who = 'fibonacci';
  checkOptions(who, options, ['initial', 'max', 'jitter']);
  const initial = checkTime(who, 'initial', options.initial);
  const max = checkMax(who, options.max, "'initial'", initial);
  const jitter = checkJitter(who, options.jitter);
  checkDecorrelatedBase(who, jitter, "'initial'", initial);
  // Precompute the delays below `max` once. Fibonacci numbers grow exponentially, so the table
  // is short (at most ~1500 entries even for a subnormal `initial`, when fib overflows to Infinity).
  const table: number[] = [];
  if (initial > 0) {
    for (let a = 1, b = 1; initial * a < max; [a, b] = [b, a + b]) table.push(initial * a);
  }
  Object.freeze(table);
  return withJitter(who, jitter, initial, max, (context) => {
    const attempt = attemptOf(who, context);
    if (initial === 0) return 0;
    return attempt <= table.length ? table[attempt - 1]! : max;
  });
}

/**
 * Delays from a list: the n-th failed attempt waits `list[n - 1]`; once the list runs out its last
 * entry repeats. The list is copied, so later changes to the array do not affect the strategy.
 *
 * Bounds: an entry of the list without jitter; [0, d] with `'full'` and [d/2, d] with `'equal'`
 * (d being the entry); [list[0], max] with `'decorrelated'` (which uses only the first entry).
 *
 * @param list - one or more finite numbers in [0, 2147483647].
 * @param options - `jitter` (default `'none'`); `max`, the cap of `'decorrelated'` jitter
 *   (default 2147483647; must be >= every entry).
 * @defaultValue options: `{ jitter: 'none', max: 2147483647 }`
 * @throws TypeError when `list` is not an array, an entry is not a number, an option has the wrong
 *   type or is unknown, or `jitter` is not a known mode.
 * @throws RangeError when the list is empty, an entry or `max` is negative, NaN, infinite or above
 *   2147483647, when `max` is below an entry, or when the first entry is 0 with `'decorrelated'`.
 * @example
 * ```ts
 * delays([100, 500, 2000]); // 100, 500, 2000, 2000, ...
 * ```
 */
export function delays(list: readonly number[], options: DelaysOptions = {}): DelayStrategy {
  const who = 'delays';
  if (!Array.isArray(list))
    throw new TypeError(`${who}: the list must be an array of milliseconds, got ${describe(list)}`);
  if (list.length === 0) throw new RangeError(`${who}: the list must not be empty, got []`);
  checkOptions(who, options, ['jitter', 'max']);
  // Index by index, not map(): a hole in a sparse list ([1, , 2]) is an entry that is missing.
  const copy = Object.freeze(
    Array.from({ length: list.length }, (_, index) =>
      checkTime(who, `list[${index}]`, list[index]),
    ),
  );
  const first = copy[0]!;
  const largest = Math.max(...copy);
  const jitter = checkJitter(who, options.jitter);
  const max = checkMax(who, options.max, 'the largest entry', largest);
  checkDecorrelatedBase(who, jitter, "'list[0]'", first);
  const last = copy.length;
  return withJitter(
    who,
    jitter,
    first,
    max,
    (context) => copy[Math.min(attemptOf(who, context), last) - 1]!,
  );
}

/**
 * A delay drawn uniformly from [min, max] after every failed attempt (aiohttp_retry's
 * `RandomRetry`): `min + (max - min) * context.random()`.
 *
 * Bounds: [min, max].
 *
 * @throws TypeError when `min` or `max` is not a number.
 * @throws RangeError when `min` or `max` is negative, NaN, infinite or above 2147483647, or when
 *   `min > max`.
 * @example
 * ```ts
 * randomBetween(200, 800);
 * ```
 */
export function randomBetween(min: number, max: number): DelayStrategy {
  const who = 'randomBetween';
  const low = checkTime(who, 'min', min);
  const high = checkTime(who, 'max', max);
  if (low > high)
    throw new RangeError(`${who}: 'min' must be <= 'max' (${high}), got ${describe(low)}`);
  return register({ delay: (context) => low + (high - low) * draw(who, context) });
}

/**
 * A strategy from a function of the {@link DelayContext}. Its result is checked on every call:
 * a non-number throws a `TypeError`, and a negative, NaN, infinite or over-2147483647 number a
 * `RangeError` naming the value (the engine rejects the execution with that error).
 *
 * Bounds: whatever the function returns, which must be in [0, 2147483647].
 *
 * @throws TypeError when `fn` is not a function.
 * @example
 * ```ts
 * // Longer pauses after timeouts than after errors.
 * fromFunction(({ kind, attempt }) => (kind === 'timeout' ? 5000 : 100 * attempt));
 * ```
 */
export function fromFunction(fn: DelayFunction): DelayStrategy {
  if (typeof fn !== 'function')
    throw new TypeError(`fromFunction: the argument must be a function, got ${describe(fn)}`);
  return makeFunction(fn, 'fromFunction: the delay function');
}

function makeFunction(fn: DelayFunction, who: string): DelayStrategy {
  // Called without `this`, like any plain callback.
  return register({ delay: (context) => checkResult(who, fn(context)) });
}

/**
 * Tells whether `value` is a {@link DelayStrategy}: a non-null object with a `delay` method.
 *
 * @example
 * ```ts
 * isDelayStrategy(exponential({ initial: 100 })); // true
 * isDelayStrategy(100); // false
 * ```
 */
export function isDelayStrategy(value: unknown): value is DelayStrategy {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { delay?: unknown }).delay === 'function'
  );
}

/**
 * Turns a `pause` option into a {@link DelayStrategy}: a number becomes {@link constant}, a
 * function {@link fromFunction}. A strategy made by this module is returned as is; any other
 * strategy object is wrapped so its results are checked like {@link fromFunction}'s.
 *
 * @param pause - milliseconds, a strategy or a function of the context.
 * @param where - the name that starts error messages (the engine passes its own, e.g. `'Backoff'`).
 * @defaultValue `where`: `'resolveDelay'`
 * @throws TypeError when `pause` is none of the three.
 * @throws RangeError when `pause` is a number that is negative, NaN, infinite or above 2147483647.
 * @example
 * ```ts
 * resolveDelay(250).delay(context); // 250
 * ```
 */
export function resolveDelay(
  pause: number | DelayStrategy | DelayFunction,
  where = 'resolveDelay',
): DelayStrategy {
  if (typeof pause === 'number') return makeConstant(where, 'pause', pause, {});
  if (typeof pause === 'function') return makeFunction(pause, `${where}: the 'pause' function`);
  if (isDelayStrategy(pause)) {
    if (builtIns.has(pause)) return pause;
    const strategy = pause;
    return makeFunction((context) => strategy.delay(context), `${where}: the 'pause' strategy`);
  }
  throw new TypeError(
    `${where}: 'pause' must be milliseconds, a delay strategy or a function, got ${describe(pause)}`,
  );
}

/**
 * A small, fast, deterministic random source (mulberry32, 32 bits of state) returning numbers in
 * [0, 1). Pass it as `Backoff`'s `random` option to make jittered pauses reproducible in tests.
 * Not for cryptography. The returned function is stateful: give each test its own.
 *
 * @param seed - an integer; only its low 32 bits are used (so `seed` and `seed + 2 ** 32` give the
 *   same sequence).
 * @throws TypeError when `seed` is not a number.
 * @throws RangeError when `seed` is not an integer (NaN, Infinity, 1.5).
 * @example
 * ```ts
 * const random = seededRandom(42);
 * new Backoff({ pause: exponential({ initial: 100, jitter: 'full' }), random });
 * ```
 */
export function seededRandom(seed: number): () => number {
  if (typeof seed !== 'number')
    throw new TypeError(`seededRandom: 'seed' must be a number, got ${describe(seed)}`);
  if (!Number.isInteger(seed))
    throw new RangeError(`seededRandom: 'seed' must be an integer, got ${describe(seed)}`);
  // ToInt32 keeps the low 32 bits (exactly, as every integer-valued double is exact).
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    // 32 random bits over 2^32: never 1.
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
