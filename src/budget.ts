/**
 * Retry budgets: shared counters that cap how much extra load retries may add, so that a fleet of
 * clients backs off as a whole when a dependency is down instead of multiplying its load by
 * `maxTries`. Pass one to `Backoff`'s `budget` option; share the same object between every
 * `Backoff` that talks to the same dependency.
 *
 * - {@link tokenBucket}: gRPC retry throttling (gRFC A6).
 * - {@link retryQuota}: the AWS SDKs' "standard" retry mode quota.
 */

import type { FailureKind, RetryBudget } from './types.js';
import { checkOptions, describe } from './validate.js';

/** Counters of a retry budget, for dashboards and tests. */
export interface RetryBudgetStats {
  /** Retries the budget allowed (`tryAcquire` returned `true`). */
  readonly acquired: number;
  /** Retries the budget refused (`tryAcquire` returned `false`). */
  readonly refused: number;
}

/** Options of {@link tokenBucket}; both are required, as in gRPC's `retryThrottling` config. */
export interface TokenBucketOptions {
  /**
   * Size of the bucket; it starts full. Each failed attempt takes one token, and retries stop
   * while the bucket holds `maxTokens / 2` tokens or fewer. An integer in (0, 1000].
   */
  readonly maxTokens: number;
  /**
   * Tokens given back by each successful execution: in (0, 1] with at most 3 decimal places
   * (gRPC's rule). `0.1` means retries keep flowing while fewer than about one call in ten fails.
   */
  readonly tokenRatio: number;
}

/** A gRPC-style retry throttle made by {@link tokenBucket}. */
export interface TokenBucket extends RetryBudget {
  /** Tokens in the bucket now, between 0 and `maxTokens`. */
  readonly tokens: number;
  /** The bucket's size, as configured. */
  readonly maxTokens: number;
  /** Tokens added per success, as configured. */
  readonly tokenRatio: number;
  /** A snapshot of the allowed and refused retry counts. */
  readonly stats: RetryBudgetStats;
}

/** Options of {@link retryQuota}. The defaults are the AWS SDKs' standard-mode constants. */
export interface RetryQuotaOptions {
  /**
   * Size of the quota; it starts full.
   * @defaultValue `500`
   */
  readonly capacity?: number | undefined;
  /**
   * Taken by a retry after an error or a `retryIf` result.
   * @defaultValue `5`
   */
  readonly retryCost?: number | undefined;
  /**
   * Taken by a retry after an attempt timeout.
   * @defaultValue `10`
   */
  readonly timeoutCost?: number | undefined;
  /**
   * Given back by an execution that succeeded on its first attempt.
   * @defaultValue `1`
   */
  readonly noRetryIncrement?: number | undefined;
}

/** An AWS-style retry quota made by {@link retryQuota}. */
export interface RetryQuota extends RetryBudget {
  /** Tokens left in the quota now, between 0 and `capacity`. */
  readonly tokens: number;
  /** The quota's size, as configured. */
  readonly capacity: number;
  /** A snapshot of the allowed and refused retry counts. */
  readonly stats: RetryBudgetStats;
}

const TOKEN_BUCKET_KEYS = ['maxTokens', 'tokenRatio'];
const RETRY_QUOTA_KEYS = ['capacity', 'retryCost', 'timeoutCost', 'noRetryIncrement'];

function checkNumber(where: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number')
    throw new TypeError(`${where}: '${name}' must be a number, got ${describe(value)}`);
}

class TokenBucketImpl implements TokenBucket {
  readonly maxTokens: number;
  readonly tokenRatio: number;
  // Kept in thousandths of a token, as integers, so that adding 0.1 ten times gives exactly 1 and
  // the "more than half full" comparison never suffers from floating-point drift.
  #milliTokens: number;
  readonly #milliMax: number;
  readonly #milliRatio: number;
  #acquired = 0;
  #refused = 0;

  constructor(maxTokens: number, tokenRatio: number) {
    this.maxTokens = maxTokens;
    this.tokenRatio = tokenRatio;
    this.#milliMax = maxTokens * 1000;
    this.#milliRatio = Math.round(tokenRatio * 1000);
    this.#milliTokens = this.#milliMax;
  }

  get tokens(): number {
    return this.#milliTokens / 1000;
  }

  get stats(): RetryBudgetStats {
    return Object.freeze({ acquired: this.#acquired, refused: this.#refused });
  }

  recordFailure(_kind: FailureKind): void {
    this.#milliTokens = Math.max(0, this.#milliTokens - 1000);
  }

  tryAcquire(_kind: FailureKind): boolean {
    // 2 * tokens > maxTokens, i.e. tokens > maxTokens / 2, in integers.
    if (2 * this.#milliTokens > this.#milliMax) {
      this.#acquired++;
      return true;
    }
    this.#refused++;
    return false;
  }

  recordSuccess(_lastRetryKind: FailureKind | undefined): void {
    this.#milliTokens = Math.min(this.#milliMax, this.#milliTokens + this.#milliRatio);
  }

  get [Symbol.toStringTag](): string {
    return 'TokenBucket';
  }
}

/**
 * A retry throttle with gRPC's semantics (gRFC A6 `retryThrottling`). The bucket starts full at
 * `maxTokens`; every failed attempt takes one token (never below 0) and every successful
 * execution adds `tokenRatio` (never above `maxTokens`). A retry is allowed only while the bucket
 * holds more than `maxTokens / 2` tokens; asking does not spend anything, the failure already did.
 *
 * During an outage nothing refills the bucket, so after about `maxTokens / 2` failures only first
 * attempts go out and the load on the failing dependency falls back to about 1×. In steady state
 * retries keep flowing while failures stay below about `tokenRatio` per success.
 *
 * Differences from gRPC: the engine reports every failed attempt, including errors it will not
 * retry (gRPC counts only retryable status codes), and attempt timeouts and `retryIf` results count
 * as failures too.
 *
 * @param options - `{ maxTokens, tokenRatio }`, both required (gRPC has no defaults either).
 * @returns A {@link TokenBucket} to pass as `budget` to one or many `Backoff` instances.
 * @throws TypeError when `options` is not an object, has an unknown key, or an option is not a
 *   number.
 * @throws RangeError when `maxTokens` is not an integer in (0, 1000], or `tokenRatio` is not in
 *   (0, 1] or has more than 3 decimal places.
 * @example
 * ```ts
 * // One bucket per downstream service, shared by every caller in the process.
 * const throttle = tokenBucket({ maxTokens: 10, tokenRatio: 0.1 });
 * const users = new Backoff({ maxTries: 3, retryAll: true, budget: throttle });
 * const orders = new Backoff({ maxTries: 5, retryAll: true, budget: throttle });
 * metrics.gauge('retry_tokens', () => throttle.tokens);
 * ```
 */
export function tokenBucket(options: TokenBucketOptions): TokenBucket {
  const where = 'tokenBucket';
  checkOptions(where, options, TOKEN_BUCKET_KEYS);
  const { maxTokens, tokenRatio } = options;
  checkNumber(where, 'maxTokens', maxTokens);
  checkNumber(where, 'tokenRatio', tokenRatio);
  if (!Number.isInteger(maxTokens) || maxTokens <= 0 || maxTokens > 1000)
    throw new RangeError(
      `${where}: 'maxTokens' must be an integer in (0, 1000], got ${describe(maxTokens)}`,
    );
  if (!(tokenRatio > 0 && tokenRatio <= 1))
    throw new RangeError(`${where}: 'tokenRatio' must be in (0, 1], got ${describe(tokenRatio)}`);
  const milli = tokenRatio * 1000;
  if (Math.abs(milli - Math.round(milli)) > 1e-6)
    throw new RangeError(
      `${where}: 'tokenRatio' may have at most 3 decimal places, got ${describe(tokenRatio)}`,
    );
  return new TokenBucketImpl(maxTokens, tokenRatio);
}

class RetryQuotaImpl implements RetryQuota {
  readonly capacity: number;
  readonly #retryCost: number;
  readonly #timeoutCost: number;
  readonly #noRetryIncrement: number;
  #tokens: number;
  #acquired = 0;
  #refused = 0;

  constructor(capacity: number, retryCost: number, timeoutCost: number, noRetryIncrement: number) {
    this.capacity = capacity;
    this.#retryCost = retryCost;
    this.#timeoutCost = timeoutCost;
    this.#noRetryIncrement = noRetryIncrement;
    this.#tokens = capacity;
  }

  get tokens(): number {
    return this.#tokens;
  }

  get stats(): RetryBudgetStats {
    return Object.freeze({ acquired: this.#acquired, refused: this.#refused });
  }

  #cost(kind: FailureKind): number {
    return kind === 'timeout' ? this.#timeoutCost : this.#retryCost;
  }

  recordFailure(_kind: FailureKind): void {
    // The quota is charged when a retry is taken, not when an attempt fails.
  }

  tryAcquire(kind: FailureKind): boolean {
    const cost = this.#cost(kind);
    if (cost <= this.#tokens) {
      this.#tokens -= cost;
      this.#acquired++;
      return true;
    }
    this.#refused++;
    return false;
  }

  recordSuccess(lastRetryKind: FailureKind | undefined): void {
    const refund = lastRetryKind === undefined ? this.#noRetryIncrement : this.#cost(lastRetryKind);
    this.#tokens = Math.min(this.capacity, this.#tokens + refund);
  }

  get [Symbol.toStringTag](): string {
    return 'RetryQuota';
  }
}

/**
 * A retry quota with the AWS SDKs' "standard" retry mode semantics. Each retry spends `retryCost`
 * tokens (`timeoutCost` after an attempt timeout) and is refused when the quota holds fewer; a
 * failed attempt by itself costs nothing. A successful execution gives back the cost of its last
 * retry, or `noRetryIncrement` when it succeeded at the first attempt; the quota never exceeds
 * `capacity`.
 *
 * With the defaults a fleet may make 100 retries (50 after timeouts) more than it earns back, so
 * a long outage costs about 100 extra calls and then only first attempts go out.
 *
 * @param options - Costs and capacity; every field is optional.
 * @returns A {@link RetryQuota} to pass as `budget` to one or many `Backoff` instances.
 * @throws TypeError when `options` is not an object, has an unknown key, or an option is not a
 *   number.
 * @throws RangeError when `capacity` is not a finite number > 0, or a cost or `noRetryIncrement`
 *   is not a finite number >= 0 (-0 is refused).
 * @example
 * ```ts
 * const quota = retryQuota(); // capacity 500, retry 5, timeout 10, refund 1
 * const s3 = new Backoff({ maxTries: 3, attemptTimeout: 2_000, retryAll: true, budget: quota });
 * // later: quota.tokens, quota.stats.refused
 * ```
 */
export function retryQuota(options: RetryQuotaOptions = {}): RetryQuota {
  const where = 'retryQuota';
  checkOptions(where, options, RETRY_QUOTA_KEYS);
  const read = (name: keyof RetryQuotaOptions, fallback: number, allowZero: boolean): number => {
    const value = options[name];
    if (value === undefined) return fallback;
    checkNumber(where, name, value);
    if (!Number.isFinite(value) || value < 0 || Object.is(value, -0) || (!allowZero && value === 0))
      throw new RangeError(
        `${where}: '${name}' must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${describe(value)}`,
      );
    return value;
  };
  return new RetryQuotaImpl(
    read('capacity', 500, false),
    read('retryCost', 5, true),
    read('timeoutCost', 10, true),
    read('noRetryIncrement', 1, true),
  );
}
