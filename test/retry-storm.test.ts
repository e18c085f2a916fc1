/**
 * A reduced run of the retry-storm study (benchmarks/retry-storm/study.ts): keeps its qualitative
 * claims honest in CI.
 */
import { describe, expect, it } from 'vitest';
import { renderBarChart } from '../benchmarks/chart.js';
import {
  BUCKET,
  contention,
  OUTAGE_BUDGETS,
  outage,
  POLICIES,
  streams,
} from '../benchmarks/retry-storm/scenarios.js';
import { EventQueue, simulateContention, simulateOutage } from '../benchmarks/retry-storm/sim.js';
import { tokenBucket } from '../src/budget.js';

const policy = (jitter: string) => POLICIES.find((p) => p.jitter === jitter)!;

describe('event queue', () => {
  it('runs events in time order, ties in insertion order', () => {
    const queue = new EventQueue();
    const seen: string[] = [];
    queue.at(5, () => seen.push('b'));
    queue.at(1, () => {
      seen.push('a');
      queue.after(4, () => seen.push('c')); // same time as 'b', scheduled later
    });
    queue.at(9, () => seen.push('d'));
    expect(queue.run()).toBe(9);
    expect(seen).toEqual(['a', 'b', 'c', 'd']);
    expect(() => queue.at(3, () => {})).toThrow(RangeError);
  });

  it('keeps the heap ordered under many random events', () => {
    const queue = new EventQueue();
    const { networkRandom } = streams(7);
    const times: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = Math.floor(networkRandom() * 100);
      queue.at(t, () => times.push(queue.now));
    }
    queue.run();
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times).toHaveLength(2000);
  });
});

describe('contention model (AWS OCC)', () => {
  it('a lone client commits with one write', () => {
    const r = simulateContention({ clients: 1, strategy: policy('full').strategy, ...streams(1) });
    expect(r).toMatchObject({ calls: 1, reads: 1, committed: 1, gaveUp: 0 });
    expect(r.time).toBeGreaterThan(0);
  });

  it('every client eventually commits exactly once without a budget', () => {
    for (const p of POLICIES) {
      const r = simulateContention({ clients: 25, strategy: p.strategy, ...streams(3) });
      expect(r.committed).toBe(25);
      expect(r.gaveUp).toBe(0);
      expect(r.calls).toBeGreaterThanOrEqual(25);
      expect(r.calls).toBe(r.reads);
    }
  });

  it('is deterministic for a seed', () => {
    const a = contention(20, policy('decorrelated'), false, 1);
    const b = contention(20, policy('decorrelated'), false, 1);
    expect(a).toEqual(b);
  });

  it('full jitter does much less work than unjittered exponential backoff (N = 50, one seed)', () => {
    const none = contention(50, policy('none'), false, 1);
    const full = contention(50, policy('full'), false, 1);
    expect(full.calls).toBeLessThan(none.calls);
    expect(full.calls).toBeLessThan(0.75 * none.calls);
    expect(full.time).toBeLessThan(none.time);
  });

  it('a shared token bucket caps the calls at N + a few retries', () => {
    const r = contention(50, policy('full'), true, 1);
    // 4 retries pass (tokens 9, 8, 7, 6 after the failures); successes add only 0.1 each.
    expect(r.calls).toBeLessThanOrEqual(50 + 5);
    expect(r.committed + r.gaveUp).toBe(50);
  });
});

describe('outage model', () => {
  const params = { clients: 5, interval: 100, window: 10_000 };

  it('without a budget a total outage multiplies the load by maxTries', () => {
    for (const maxTries of [3, 5]) {
      const r = outage(params, maxTries, 1, 'none', 1);
      expect(r.loadMultiplier).toBe(maxTries);
      expect(r.succeeded).toBe(0);
    }
  });

  it('the gRPC token bucket keeps the extra load under 10%', () => {
    for (const maxTries of [3, 5]) {
      for (const failureRate of [1, 0.5]) {
        const r = outage(params, maxTries, failureRate, 'tokenBucket', 1);
        expect(r.loadMultiplier).toBeLessThan(1.1);
      }
      // In a total outage each client's bucket allows at most 4 retries (after the failures
      // leaving 9, 8, 7 and 6 tokens, unless a failure was a final attempt), then none.
      const total = outage(params, maxTries, 1, 'tokenBucket', 1);
      expect(total.calls - total.requests).toBeGreaterThan(0);
      expect(total.calls - total.requests).toBeLessThanOrEqual(4 * params.clients);
    }
  });

  it('the AWS retry quota allows capacity / retryCost unpaid retries per client', () => {
    const r = outage({ ...params, window: 60_000 }, 3, 1, 'retryQuota', 1);
    expect(r.calls - r.requests).toBe(100 * params.clients);
  });

  it('each client process gets its own budget', () => {
    let made = 0;
    simulateOutage({
      ...params,
      maxTries: 3,
      failureRate: 1,
      strategy: policy('full').strategy,
      budget: () => {
        made++;
        return tokenBucket(BUCKET);
      },
      ...streams(1),
    });
    expect(made).toBe(params.clients);
    expect(OUTAGE_BUDGETS.none).toBeUndefined();
  });
});

describe('svg chart', () => {
  it('renders a well-formed document with one bar per value', () => {
    const svg = renderBarChart('t <&>', [
      {
        title: 'p',
        yLabel: 'y',
        groups: ['a', 'b'],
        series: [
          { name: 's1', color: '#000' },
          { name: 's2', color: '#111', hatched: true },
        ],
        values: [
          [1, 2],
          [3, 4],
        ],
        format: String,
        reference: { value: 1.5, label: 'ref' },
      },
    ]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('t &lt;&amp;&gt;');
    expect(svg.match(/<title>/g)).toHaveLength(4);
    expect(svg).not.toContain('NaN');
  });
});
