/**
 * The policies and scenarios of the retry-storm study, shared by the study script and by
 * `test/retry-storm.test.ts` (which runs a reduced version to keep the study's claims honest).
 */
import { retryQuota, tokenBucket } from '../../src/budget.js';
import {
  type ExponentialOptions,
  exponential,
  type Jitter,
  seededRandom,
} from '../../src/delays.js';
import type { DelayStrategy, RetryBudget } from '../../src/types.js';
import { type ContentionResult, simulateContention, simulateOutage } from './sim.js';

/**
 * Base and cap of every backoff in the study, ms. The AWS post's simulator used base 5 ms (and a
 * 2 s cap; 1 s here).
 */
export const BASE_MS = 5;
export const CAP_MS = 1000;

export interface Policy {
  readonly name: string;
  readonly jitter: Jitter;
  /** What was passed to `exponential(...)`. */
  readonly options: ExponentialOptions;
  readonly strategy: DelayStrategy;
}

/**
 * The four policies of the AWS post, with the same base and cap, built with `exponential`:
 *
 * - the post's capped exponential pause after the n-th failure is `min(cap, base * 2^n)`, so its
 *   first pause is `2 * base`: `exponential({ initial: 2 * base, factor: 2, max: cap, jitter })`
 *   for `'none'`, `'full'` and `'equal'`;
 * - its decorrelated jitter is `min(cap, random(base, 3 * previous))` starting from `base`:
 *   `exponential({ initial: base, max: cap, jitter: 'decorrelated' })`.
 */
export const POLICIES: readonly Policy[] = (
  [
    ['exponential, no jitter', 'none'],
    ['full jitter', 'full'],
    ['equal jitter', 'equal'],
    ['decorrelated jitter', 'decorrelated'],
  ] as const
).map(([name, jitter]) => {
  const options: ExponentialOptions =
    jitter === 'decorrelated'
      ? { initial: BASE_MS, max: CAP_MS, jitter }
      : { initial: 2 * BASE_MS, factor: 2, max: CAP_MS, jitter };
  return { name, jitter, options, strategy: exponential(options) };
});

/** The gRPC retry throttle used throughout the study. */
export const BUCKET = { maxTokens: 10, tokenRatio: 0.1 } as const;

/** Independent random streams for the network and for the jitter, derived from one seed. */
export function streams(seed: number): { networkRandom: () => number; jitterRandom: () => number } {
  return {
    networkRandom: seededRandom(seed),
    jitterRandom: seededRandom((seed * 0x9e3779b1 + 0x7f4a7c15) >>> 0),
  };
}

export interface ContentionRow {
  readonly clients: number;
  readonly policy: string;
  readonly jitter: Jitter;
  readonly budget: 'none' | 'tokenBucket';
  readonly seeds: number;
  /** Means over the seeds. */
  readonly calls: number;
  readonly reads: number;
  readonly time: number;
  readonly committed: number;
  readonly gaveUp: number;
  /** Standard deviation of `calls` over the seeds. */
  readonly callsSd: number;
}

/** Runs the OCC contention model for one policy, averaged over seeds 1..`seeds`. */
export function contention(
  clients: number,
  policy: Policy,
  withBudget: boolean,
  seeds: number,
): ContentionRow {
  const runs: ContentionResult[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    runs.push(
      simulateContention({
        clients,
        strategy: policy.strategy,
        // One bucket shared by the N concurrent writers (one service, one hot row).
        budget: withBudget ? tokenBucket(BUCKET) : undefined,
        ...streams(seed),
      }),
    );
  }
  const mean = (pick: (r: ContentionResult) => number): number =>
    runs.reduce((sum, r) => sum + pick(r), 0) / runs.length;
  const calls = mean((r) => r.calls);
  const variance = runs.reduce((sum, r) => sum + (r.calls - calls) ** 2, 0) / runs.length;
  return {
    clients,
    policy: policy.name,
    jitter: policy.jitter,
    budget: withBudget ? 'tokenBucket' : 'none',
    seeds,
    calls,
    reads: mean((r) => r.reads),
    time: mean((r) => r.time),
    committed: mean((r) => r.committed),
    gaveUp: mean((r) => r.gaveUp),
    callsSd: Math.sqrt(variance),
  };
}

export type OutageBudget = 'none' | 'tokenBucket' | 'retryQuota';

export const OUTAGE_BUDGETS: Readonly<Record<OutageBudget, (() => RetryBudget) | undefined>> = {
  none: undefined,
  tokenBucket: () => tokenBucket(BUCKET),
  retryQuota: () => retryQuota(),
};

export interface OutageParams {
  readonly clients: number;
  readonly interval: number;
  readonly window: number;
}

export interface OutageRow {
  readonly maxTries: number;
  readonly failureRate: number;
  readonly budget: OutageBudget;
  readonly seeds: number;
  /** Sums over the seeds. */
  readonly requests: number;
  readonly calls: number;
  readonly succeeded: number;
  readonly refused: number;
  /** calls / requests. */
  readonly loadMultiplier: number;
}

/** Runs the steady-traffic outage model (full-jitter pauses) summed over seeds 1..`seeds`. */
export function outage(
  params: OutageParams,
  maxTries: number,
  failureRate: number,
  budget: OutageBudget,
  seeds: number,
): OutageRow {
  const strategy = POLICIES.find((p) => p.jitter === 'full')!.strategy;
  let requests = 0;
  let calls = 0;
  let succeeded = 0;
  let refused = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const r = simulateOutage({
      ...params,
      maxTries,
      failureRate,
      strategy,
      budget: OUTAGE_BUDGETS[budget],
      ...streams(seed),
    });
    requests += r.requests;
    calls += r.calls;
    succeeded += r.succeeded;
    refused += r.refused;
  }
  return {
    maxTries,
    failureRate,
    budget,
    seeds,
    requests,
    calls,
    succeeded,
    refused,
    loadMultiplier: calls / requests,
  };
}
