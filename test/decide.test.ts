/**
 * The retry decision on its own: no timers, no executions, just the policy, the failure and the
 * moment. (The engine's use of it is tested through the public API elsewhere.)
 */
import { describe, expect, it } from 'vitest';
import {
  crossesDeadline,
  type Failure,
  isRetriable,
  type Moment,
  planRetry,
  readPolicyDecision,
} from '../src/decide.js';
import { AttemptTimeoutError, exponential } from '../src/index.js';
import { normalizeOptions } from '../src/options.js';

class Transient extends Error {}
const error: Failure = { kind: 'error', outcome: new Transient('x') };
const at = (partial: Partial<Moment> = {}): Moment => ({
  attempts: 1,
  startedAt: 0,
  at: 100,
  deadlineAt: Number.POSITIVE_INFINITY,
  previousDelay: undefined,
  ...partial,
});

describe('isRetriable', () => {
  it('attempt timeouts always; exceptions by instanceof; retryOn by its answer; retryAll everything', () => {
    const none = normalizeOptions({});
    expect(isRetriable(none, new AttemptTimeoutError(10, 1))).toBe(true);
    expect(isRetriable(none, new Transient())).toBe(false);
    expect(isRetriable(normalizeOptions({ exceptions: [Error] }), new Transient())).toBe(true);
    expect(isRetriable(normalizeOptions({ retryAll: true }), 'a string')).toBe(true);
    const byCode = normalizeOptions({ retryOn: (e) => (e as { code?: string }).code === 'X' });
    expect(isRetriable(byCode, { code: 'X' })).toBe(true);
    expect(isRetriable(byCode, { code: 'Y' })).toBe(false);
    // Either filter is enough.
    const both = normalizeOptions({ exceptions: [Transient], retryOn: () => false });
    expect(isRetriable(both, new Transient())).toBe(true);
  });

  it('refuses a retryOn that answers with anything but a boolean (an async one, say)', () => {
    const policy = normalizeOptions({ retryOn: (async () => true) as never });
    expect(() => isRetriable(policy, new Error())).toThrow(
      /'retryOn' must return a boolean \(synchronously\), got a promise/,
    );
  });
});

describe('planRetry', () => {
  it('gives up at maxTries, before asking anything else', () => {
    const policy = normalizeOptions({ maxTries: 2, pause: () => Number.NaN });
    expect(planRetry(policy, error, at({ attempts: 2 }), undefined)).toEqual({
      giveUp: 'max-tries',
    });
  });

  it('takes the policy callback’s delay, else the strategy’s, else the constant pause', () => {
    expect(planRetry(normalizeOptions({ pause: 30 }), error, at(), undefined)).toEqual({
      delay: 30,
    });
    expect(planRetry(normalizeOptions({ pause: 30 }), error, at(), 5)).toEqual({ delay: 5 });
    const strategy = normalizeOptions({ pause: exponential({ initial: 10, factor: 3 }) });
    expect(planRetry(strategy, error, at({ attempts: 3 }), undefined)).toEqual({ delay: 90 });
  });

  it('hands the strategy the moment: elapsed, remaining, previous delay, kind and outcome', () => {
    let seen: unknown;
    const policy = normalizeOptions({
      pause: (context) => {
        seen = context;
        return 1;
      },
    });
    planRetry(
      policy,
      error,
      at({ startedAt: 40, at: 100, deadlineAt: 160, previousDelay: 7 }),
      undefined,
    );
    expect(seen).toMatchObject({
      attempt: 1,
      kind: 'error',
      error: error.outcome,
      result: undefined,
      elapsed: 60,
      remaining: 60,
      previousDelay: 7,
    });
  });

  it('honours pushback: at least the hint; a refusal or a hint over maxRetryAfter gives up', () => {
    const hint = (ms: unknown) =>
      normalizeOptions({ pause: 10, retryAfter: () => ms as number, maxRetryAfter: 1000 });
    expect(planRetry(hint(50), error, at(), undefined)).toEqual({ delay: 50 });
    expect(planRetry(hint(5), error, at(), undefined)).toEqual({ delay: 10 });
    expect(planRetry(hint(-1), error, at(), undefined)).toEqual({ giveUp: 'pushback' });
    expect(planRetry(hint(5000), error, at(), undefined)).toEqual({ giveUp: 'pushback' });
    expect(planRetry(hint(undefined), error, at(), undefined)).toEqual({ delay: 10 });
    expect(() => planRetry(hint('soon'), error, at(), undefined)).toThrow(TypeError);
  });

  it('gives up rather than sleep a pause that ends at or after the deadline', () => {
    const policy = normalizeOptions({ pause: 50 });
    expect(planRetry(policy, error, at({ deadlineAt: 150 }), undefined)).toEqual({
      giveUp: 'deadline',
    });
    expect(planRetry(policy, error, at({ deadlineAt: 151 }), undefined)).toEqual({ delay: 50 });
  });

  it('refuses a strategy delay that is not a usable number', () => {
    for (const bad of [-1, Number.NaN, 2 ** 31, '5'])
      expect(() =>
        planRetry(normalizeOptions({ pause: () => bad as number }), error, at(), undefined),
      ).toThrow(/'pause' function/);
  });
});

describe('readPolicyDecision and crossesDeadline', () => {
  it('reads both shapes and checks the delay', () => {
    expect(readPolicyDecision([false, 20])).toEqual({ abandon: false, delay: 20 });
    expect(readPolicyDecision({ abandon: true, delay: 'ignored' })).toEqual({
      abandon: true,
      delay: undefined,
    });
    expect(readPolicyDecision({ abandon: false })).toEqual({ abandon: false, delay: undefined });
    expect(() => readPolicyDecision(42)).toThrow(TypeError);
    expect(() => readPolicyDecision([false, -5])).toThrow(RangeError);
  });

  it('a zero pause crosses only a deadline already reached', () => {
    expect(crossesDeadline(0, 100, 100)).toBe(true);
    expect(crossesDeadline(0, 99, 100)).toBe(false);
    expect(crossesDeadline(1, 99, 100)).toBe(true);
  });
});
