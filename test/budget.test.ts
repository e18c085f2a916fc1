import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';
import { retryQuota, tokenBucket } from '../src/budget.js';
import type { FailureKind } from '../src/types.js';

describe('tokenBucket (gRPC retry throttling)', () => {
  it('starts full and exposes its configuration', () => {
    const bucket = tokenBucket({ maxTokens: 10, tokenRatio: 0.1 });
    expect(bucket.tokens).toBe(10);
    expect(bucket.maxTokens).toBe(10);
    expect(bucket.tokenRatio).toBe(0.1);
    expect(bucket.stats).toEqual({ acquired: 0, refused: 0 });
    expect(Object.prototype.toString.call(bucket)).toBe('[object TokenBucket]');
  });

  it('takes one token per failure, never below zero', () => {
    const bucket = tokenBucket({ maxTokens: 3, tokenRatio: 1 });
    bucket.recordFailure('error');
    expect(bucket.tokens).toBe(2);
    bucket.recordFailure('timeout');
    bucket.recordFailure('result');
    expect(bucket.tokens).toBe(0);
    bucket.recordFailure('error');
    expect(bucket.tokens).toBe(0);
  });

  it('adds tokenRatio per success, never above maxTokens, whatever the retry kind', () => {
    const bucket = tokenBucket({ maxTokens: 4, tokenRatio: 0.5 });
    bucket.recordSuccess(undefined);
    expect(bucket.tokens).toBe(4);
    bucket.recordFailure('error');
    bucket.recordFailure('error');
    expect(bucket.tokens).toBe(2);
    bucket.recordSuccess('timeout');
    expect(bucket.tokens).toBe(2.5);
    bucket.recordSuccess(undefined);
    bucket.recordSuccess('error');
    bucket.recordSuccess('result');
    expect(bucket.tokens).toBe(4);
  });

  it('adds fractional ratios exactly (ten successes of 0.1 make one token)', () => {
    const bucket = tokenBucket({ maxTokens: 10, tokenRatio: 0.1 });
    for (let i = 0; i < 10; i++) bucket.recordFailure('error');
    expect(bucket.tokens).toBe(0);
    for (let i = 0; i < 10; i++) bucket.recordSuccess(undefined);
    expect(bucket.tokens).toBe(1);
    for (let i = 0; i < 30; i++) bucket.recordSuccess(undefined);
    expect(bucket.tokens).toBe(4);
    const odd = tokenBucket({ maxTokens: 7, tokenRatio: 0.003 });
    odd.recordFailure('error');
    for (let i = 0; i < 7; i++) odd.recordSuccess(undefined);
    expect(odd.tokens).toBe(6.021);
  });

  it('allows a retry only while tokens > maxTokens / 2, and asking spends nothing', () => {
    const bucket = tokenBucket({ maxTokens: 10, tokenRatio: 0.1 });
    const allowed: boolean[] = [];
    for (let i = 0; i < 7; i++) {
      bucket.recordFailure('error');
      allowed.push(bucket.tryAcquire('error'));
    }
    // 9, 8, 7, 6 tokens: allowed; 5 (exactly half), 4, 3: refused.
    expect(allowed).toEqual([true, true, true, true, false, false, false]);
    expect(bucket.tokens).toBe(3);
    expect(bucket.stats).toEqual({ acquired: 4, refused: 3 });
    // tryAcquire itself does not spend.
    const full = tokenBucket({ maxTokens: 2, tokenRatio: 1 });
    for (let i = 0; i < 5; i++) expect(full.tryAcquire('timeout')).toBe(true);
    expect(full.tokens).toBe(2);
  });

  it('reopens once successes lift it back above half', () => {
    const bucket = tokenBucket({ maxTokens: 10, tokenRatio: 0.1 });
    for (let i = 0; i < 5; i++) bucket.recordFailure('error');
    expect(bucket.tokens).toBe(5);
    expect(bucket.tryAcquire('error')).toBe(false);
    bucket.recordSuccess(undefined);
    expect(bucket.tokens).toBe(5.1);
    expect(bucket.tryAcquire('error')).toBe(true);
  });

  it('with an odd maxTokens the threshold is a fractional half', () => {
    const bucket = tokenBucket({ maxTokens: 3, tokenRatio: 0.5 });
    bucket.recordFailure('error'); // 2 > 1.5
    expect(bucket.tryAcquire('error')).toBe(true);
    bucket.recordSuccess('error'); // 2.5
    bucket.recordFailure('error'); // 1.5, not > 1.5
    expect(bucket.tokens).toBe(1.5);
    expect(bucket.tryAcquire('error')).toBe(false);
  });

  it('stats is a frozen snapshot', () => {
    const bucket = tokenBucket({ maxTokens: 4, tokenRatio: 0.25 });
    const before = bucket.stats;
    bucket.tryAcquire('error');
    expect(before).toEqual({ acquired: 0, refused: 0 });
    expect(Object.isFrozen(before)).toBe(true);
    expect(bucket.stats).toEqual({ acquired: 1, refused: 0 });
  });

  it('matches a reference model on any sequence of events (tokens always in [0, maxTokens])', () => {
    const event = fc.constantFrom('fail', 'succeed', 'acquire');
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(event, { maxLength: 200 }),
        (maxTokens, ratioMilli, events) => {
          const bucket = tokenBucket({ maxTokens, tokenRatio: ratioMilli / 1000 });
          let milli = maxTokens * 1000;
          for (const e of events) {
            if (e === 'fail') {
              bucket.recordFailure('error');
              milli = Math.max(0, milli - 1000);
            } else if (e === 'succeed') {
              bucket.recordSuccess(undefined);
              milli = Math.min(maxTokens * 1000, milli + ratioMilli);
            } else {
              expect(bucket.tryAcquire('error')).toBe(milli > maxTokens * 500);
            }
            expect(bucket.tokens).toBe(milli / 1000);
            expect(bucket.tokens).toBeGreaterThanOrEqual(0);
            expect(bucket.tokens).toBeLessThanOrEqual(maxTokens);
          }
        },
      ),
    );
  });

  describe('validation', () => {
    it('accepts the edges of the gRPC ranges', () => {
      expect(tokenBucket({ maxTokens: 1000, tokenRatio: 1 }).tokens).toBe(1000);
      expect(tokenBucket({ maxTokens: 1, tokenRatio: 0.001 }).tokens).toBe(1);
      expect(tokenBucket({ maxTokens: 5, tokenRatio: 0.123 }).tokenRatio).toBe(0.123);
    });

    it.each([
      [0, /'maxTokens' must be an integer in \(0, 1000\], got 0$/],
      [-1, /'maxTokens'.*got -1$/],
      [1001, /'maxTokens'.*got 1001$/],
      [2.5, /'maxTokens'.*got 2\.5$/],
      [Number.NaN, /'maxTokens'.*got NaN$/],
      [Number.POSITIVE_INFINITY, /'maxTokens'.*got Infinity$/],
    ])('rejects maxTokens %s with a RangeError', (maxTokens, message) => {
      expect(() => tokenBucket({ maxTokens, tokenRatio: 0.1 })).toThrow(RangeError);
      expect(() => tokenBucket({ maxTokens, tokenRatio: 0.1 })).toThrow(message);
    });

    it.each([
      [0, /'tokenRatio' must be in \(0, 1\], got 0$/],
      [-0.1, /'tokenRatio'.*got -0\.1$/],
      [1.5, /'tokenRatio'.*got 1\.5$/],
      [Number.NaN, /'tokenRatio'.*got NaN$/],
      [0.0001, /'tokenRatio' may have at most 3 decimal places, got 0\.0001$/],
      [0.1234, /'tokenRatio' may have at most 3 decimal places, got 0\.1234$/],
    ])('rejects tokenRatio %s with a RangeError', (tokenRatio, message) => {
      expect(() => tokenBucket({ maxTokens: 10, tokenRatio })).toThrow(RangeError);
      expect(() => tokenBucket({ maxTokens: 10, tokenRatio })).toThrow(message);
    });

    it('rejects wrong types with a TypeError naming the option', () => {
      expect(() => tokenBucket({ maxTokens: '10' as any, tokenRatio: 0.1 })).toThrow(
        new TypeError("tokenBucket: 'maxTokens' must be a number, got '10' (a string)"),
      );
      expect(() => tokenBucket({ maxTokens: 10 } as any)).toThrow(
        new TypeError("tokenBucket: 'tokenRatio' must be a number, got undefined"),
      );
      expect(() => tokenBucket(undefined as any)).toThrow(TypeError);
      expect(() => tokenBucket(null as any)).toThrow(/options must be an object, got null/);
      expect(() => tokenBucket({ maxTokens: 10, tokenRatio: 0.1, ratio: 1 } as any)).toThrow(
        new TypeError("tokenBucket: unknown option 'ratio'"),
      );
    });
  });
});

describe('retryQuota (AWS standard retry mode)', () => {
  it('has the AWS standard-mode defaults', () => {
    const quota = retryQuota();
    expect(quota.capacity).toBe(500);
    expect(quota.tokens).toBe(500);
    expect(quota.stats).toEqual({ acquired: 0, refused: 0 });
    expect(Object.prototype.toString.call(quota)).toBe('[object RetryQuota]');
  });

  it('spends retryCost per retry and timeoutCost per retry after a timeout', () => {
    const quota = retryQuota();
    expect(quota.tryAcquire('error')).toBe(true);
    expect(quota.tokens).toBe(495);
    expect(quota.tryAcquire('result')).toBe(true);
    expect(quota.tokens).toBe(490);
    expect(quota.tryAcquire('timeout')).toBe(true);
    expect(quota.tokens).toBe(480);
  });

  it('recordFailure is a no-op', () => {
    const quota = retryQuota({ capacity: 10 });
    for (const kind of ['error', 'timeout', 'result'] as const) quota.recordFailure(kind);
    expect(quota.tokens).toBe(10);
  });

  it('allows exactly capacity / cost retries, then refuses without spending', () => {
    const quota = retryQuota();
    let allowed = 0;
    while (quota.tryAcquire('error')) allowed++;
    expect(allowed).toBe(100);
    expect(quota.tokens).toBe(0);
    expect(quota.tryAcquire('error')).toBe(false);
    expect(quota.tokens).toBe(0);
    expect(quota.stats).toEqual({ acquired: 100, refused: 2 });

    const timeouts = retryQuota();
    let n = 0;
    while (timeouts.tryAcquire('timeout')) n++;
    expect(n).toBe(50);
  });

  it('refuses a timeout retry that does not fit, but still allows a cheaper one', () => {
    const quota = retryQuota({ capacity: 14 });
    expect(quota.tryAcquire('timeout')).toBe(true); // 4 left
    expect(quota.tryAcquire('timeout')).toBe(false);
    expect(quota.tokens).toBe(4);
    expect(quota.tryAcquire('error')).toBe(false);
    quota.recordSuccess(undefined); // 5
    expect(quota.tryAcquire('error')).toBe(true); // exactly the cost: allowed
    expect(quota.tokens).toBe(0);
  });

  it('refunds the cost of the last retry kind, or noRetryIncrement, capped at capacity', () => {
    const quota = retryQuota();
    quota.tryAcquire('timeout');
    quota.tryAcquire('error');
    expect(quota.tokens).toBe(485);
    quota.recordSuccess('timeout');
    expect(quota.tokens).toBe(495);
    quota.recordSuccess(undefined);
    expect(quota.tokens).toBe(496);
    quota.recordSuccess('result');
    expect(quota.tokens).toBe(500);
    quota.recordSuccess('error');
    quota.recordSuccess(undefined);
    expect(quota.tokens).toBe(500);
  });

  it('honours custom costs, including free retries', () => {
    const quota = retryQuota({ capacity: 20, retryCost: 3, timeoutCost: 7, noRetryIncrement: 2 });
    quota.tryAcquire('error');
    quota.tryAcquire('timeout');
    expect(quota.tokens).toBe(10);
    quota.recordSuccess(undefined);
    expect(quota.tokens).toBe(12);
    const free = retryQuota({ capacity: 1, retryCost: 0, noRetryIncrement: 0 });
    for (let i = 0; i < 1000; i++) expect(free.tryAcquire('error')).toBe(true);
    expect(free.tokens).toBe(1);
    expect(free.tryAcquire('timeout')).toBe(false); // timeoutCost 10 > capacity 1
  });

  it('matches a reference model on any sequence of events', () => {
    const kind = fc.constantFrom<FailureKind>('error', 'timeout', 'result');
    const event = fc.oneof(
      fc.record({ type: fc.constant('acquire' as const), kind }),
      fc.record({
        type: fc.constant('succeed' as const),
        kind: fc.option(kind, { nil: undefined }),
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.array(event, { maxLength: 200 }),
        (capacity, events) => {
          const quota = retryQuota({ capacity });
          let tokens = capacity;
          let acquired = 0;
          let refused = 0;
          for (const e of events) {
            if (e.type === 'acquire') {
              const cost = e.kind === 'timeout' ? 10 : 5;
              const ok = cost <= tokens;
              expect(quota.tryAcquire(e.kind)).toBe(ok);
              if (ok) {
                tokens -= cost;
                acquired++;
              } else refused++;
            } else {
              quota.recordSuccess(e.kind);
              const refund = e.kind === undefined ? 1 : e.kind === 'timeout' ? 10 : 5;
              tokens = Math.min(capacity, tokens + refund);
            }
            expect(quota.tokens).toBe(tokens);
          }
          expect(quota.stats).toEqual({ acquired, refused });
        },
      ),
    );
  });

  describe('validation', () => {
    it.each([
      ['capacity', 0, "retryQuota: 'capacity' must be a finite number > 0, got 0"],
      ['capacity', -5, "retryQuota: 'capacity' must be a finite number > 0, got -5"],
      [
        'capacity',
        Number.POSITIVE_INFINITY,
        "retryQuota: 'capacity' must be a finite number > 0, got Infinity",
      ],
      ['retryCost', -1, "retryQuota: 'retryCost' must be a finite number >= 0, got -1"],
      [
        'timeoutCost',
        Number.NaN,
        "retryQuota: 'timeoutCost' must be a finite number >= 0, got NaN",
      ],
      [
        'noRetryIncrement',
        -0.5,
        "retryQuota: 'noRetryIncrement' must be a finite number >= 0, got -0.5",
      ],
    ])('rejects %s = %s with a RangeError', (name, value, message) => {
      expect(() => retryQuota({ [name]: value })).toThrow(new RangeError(message));
    });

    it('rejects wrong types with a TypeError naming the option', () => {
      expect(() => retryQuota({ retryCost: '5' as any })).toThrow(
        new TypeError("retryQuota: 'retryCost' must be a number, got '5' (a string)"),
      );
      expect(() => retryQuota({ capacity: null as any })).toThrow(
        new TypeError("retryQuota: 'capacity' must be a number, got null"),
      );
      expect(() => retryQuota(42 as any)).toThrow(
        new TypeError('retryQuota: options must be an object, got 42'),
      );
      expect(() => retryQuota({ cost: 1 } as any)).toThrow(
        new TypeError("retryQuota: unknown option 'cost'"),
      );
    });

    it('accepts explicit undefined as "use the default"', () => {
      expect(retryQuota({ capacity: undefined, retryCost: undefined }).tokens).toBe(500);
    });
  });
});

describe('budgets driven by Backoff', () => {
  const fail = async (): Promise<never> => {
    throw new Error('down');
  };

  it('a token bucket shared by two instances throttles both', async () => {
    const bucket = tokenBucket({ maxTokens: 10, tokenRatio: 0.1 });
    const a = new Backoff({ maxTries: 3, retryAll: true, budget: bucket });
    const b = new Backoff({ maxTries: 5, retryAll: true, budget: bucket });
    for (let i = 0; i < 3; i++) {
      await expect(a.execute(fail)).rejects.toThrow('down');
      await expect(b.execute(fail)).rejects.toThrow('down');
    }
    // a: fails at 9, 8 (retried) and 7 (last try); b: fails at 6 (retried) and 5 (refused);
    // every later failure is refused.
    expect(a.statistics.attempts + b.statistics.attempts).toBe(3 + 2 + 4);
    expect(bucket.tokens).toBe(1);
    expect(bucket.stats).toEqual({ acquired: 3, refused: 5 });
    expect(a.statistics.budgetRefusals + b.statistics.budgetRefusals).toBe(5);
  });

  it('a retry quota is refunded when the retried execution succeeds', async () => {
    const quota = retryQuota();
    const backoff = new Backoff({ maxTries: 3, retryAll: true, budget: quota });
    let calls = 0;
    const flaky = async (): Promise<string> => {
      if (calls++ === 0) throw new Error('once');
      return 'ok';
    };
    await expect(backoff.execute(flaky)).resolves.toBe('ok');
    expect(quota.tokens).toBe(500);
    expect(quota.stats).toEqual({ acquired: 1, refused: 0 });
  });
});
