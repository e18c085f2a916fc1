/**
 * The retry-storm study: how much work backoff with and without jitter, and retry budgets, cost
 * when many clients retry at once. Reproduces the model of the AWS Architecture Blog post
 * "Exponential Backoff and Jitter" on a virtual clock, with this library's delay strategies and
 * budgets.
 *
 * Run: `npx tsx benchmarks/retry-storm/study.ts` (or `npm run bench`, which runs it with the suite).
 * Deterministic (seeded); writes `retry-storm.{md,json,svg}` into `--out=DIR` (default
 * benchmarks/results/) and prints the markdown. `--json=FILE` also writes the suite's report of it;
 * `--smoke` (with --out) uses 5 contention seeds, 1 outage seed and a 10 s outage.
 * Exits 1 if the model stops showing what the write-up claims.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BarPanel, renderBarChart } from '../chart.js';
import {
  cpuModel,
  type Environment,
  option,
  type ScenarioReport,
  SMOKE,
  srcHash,
} from '../support.js';
import {
  BASE_MS,
  BUCKET,
  CAP_MS,
  type ContentionRow,
  contention,
  OUTAGE_BUDGETS,
  type OutageBudget,
  type OutageParams,
  type OutageRow,
  outage,
  POLICIES,
} from './scenarios.js';

const COMMAND = 'npx tsx benchmarks/retry-storm/study.ts';
const CLIENTS = [10, 50, 100] as const;
// --smoke (the suite's smoke run): fewer seeds and a shorter outage, same model and checks.
const CONTENTION_SEEDS = SMOKE ? 5 : 50;
const OUTAGE: OutageParams = { clients: 20, interval: 100, window: SMOKE ? 10_000 : 60_000 };
const OUTAGE_SEEDS = SMOKE ? 1 : 3;
const MAX_TRIES = [3, 5] as const;
const FAILURE_RATES = [1, 0.5] as const;

const started = performance.now();
const loadBefore = os.loadavg()[0]!;
process.stderr.write(
  `retry-storm study: node ${process.version}, CPU ${cpuModel()}, load (1 min) ${loadBefore.toFixed(2)}, src/*.ts sha256 ${srcHash()}\n`,
);

const contentionRows: ContentionRow[] = [];
for (const clients of CLIENTS)
  for (const withBudget of [false, true])
    for (const policy of POLICIES)
      contentionRows.push(contention(clients, policy, withBudget, CONTENTION_SEEDS));

const outageRows: OutageRow[] = [];
for (const failureRate of FAILURE_RATES)
  for (const maxTries of MAX_TRIES)
    for (const budget of Object.keys(OUTAGE_BUDGETS) as OutageBudget[])
      outageRows.push(outage(OUTAGE, maxTries, failureRate, budget, OUTAGE_SEEDS));

const elapsed = performance.now() - started;

// ---------------------------------------------------------------------------------------------
// Checks: the study fails loudly if the model stops showing what the write-up claims.

const row = (clients: number, jitter: string, budget: string): ContentionRow =>
  contentionRows.find((r) => r.clients === clients && r.jitter === jitter && r.budget === budget)!;
const noJitter100 = row(100, 'none', 'none');
const fullJitter100 = row(100, 'full', 'none');
const reduction = 1 - fullJitter100.calls / noJitter100.calls;
const problems: string[] = [];
if (reduction < 0.5)
  problems.push(
    `full jitter at N=100 saved only ${(reduction * 100).toFixed(1)}% of the calls (expected >= 50%)`,
  );
for (const r of outageRows) {
  if (r.budget === 'tokenBucket' && r.loadMultiplier >= 1.1)
    problems.push(
      `tokenBucket let the load reach ${r.loadMultiplier.toFixed(3)}x (maxTries ${r.maxTries}, failure rate ${r.failureRate})`,
    );
  if (r.budget === 'none' && r.failureRate === 1 && Math.abs(r.loadMultiplier - r.maxTries) > 1e-9)
    problems.push(`without a budget a total outage gave ${r.loadMultiplier}x, not ${r.maxTries}x`);
}

// ---------------------------------------------------------------------------------------------
// Markdown

const n0 = (x: number): string => Math.round(x).toLocaleString('en-US');
const n1 = (x: number): string => x.toFixed(1);
const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)}%`;

const bucketText = `tokenBucket({ maxTokens: ${BUCKET.maxTokens}, tokenRatio: ${BUCKET.tokenRatio} })`;
const call = (options: object): string =>
  `exponential(${JSON.stringify(options)
    .replace(/"/g, '')
    .replace(/([:,])/g, '$1 ')
    .replace(/^\{/, '{ ')
    .replace(/\}$/, ' }')})`;
const bucketRows = outageRows.filter((r) => r.budget === 'tokenBucket');
const bucketWorst = Math.max(...bucketRows.map((r) => r.loadMultiplier));
const perClient = (r: OutageRow): string => {
  const extra = (r.calls - r.requests) / (OUTAGE.clients * OUTAGE_SEEDS);
  return `${n1(extra)} retries per client`;
};
const bucketOutageExtra = bucketRows
  .filter((r) => r.failureRate === 1)
  .map((r) => `maxTries ${r.maxTries}: ${perClient(r)}`)
  .join(', ');
const quotaOutage = outageRows.find((r) => r.budget === 'retryQuota' && r.failureRate === 1)!;
const quotaOutageExtra = `${perClient(quotaOutage)}, +${((quotaOutage.loadMultiplier - 1) * 100).toFixed(1)}% calls`;

const md: string[] = [];
md.push(
  '# Retry storm study',
  '',
  `Produced by \`${COMMAND}\`: a virtual clock (an event queue, no real sleeping), seeded with`,
  "the library's `seededRandom`, so every run prints the same numbers. Raw data:",
  '`retry-storm.json`; chart: `retry-storm.svg`.',
  '',
  '## 1. Contention: N clients, one optimistic-concurrency row',
  '',
  'The model of the AWS Architecture Blog post "Exponential Backoff and Jitter" (Marc Brooker,',
  '2015). N clients start at t = 0 and each wants to update one row once. A client reads the row',
  'version, then sends a conditional write carrying that version; the write commits only if no',
  'other write committed in between, otherwise the client pauses (the policy under test) and starts',
  'over with a fresh read. Each network hop takes |Normal(10 ms, 2 ms)|. **calls** counts writes, as',
  'the post does; **time** is virtual ms until the last client finished. Means over',
  `${CONTENTION_SEEDS} seeds (± is the standard deviation of calls).`,
  '',
  `Policies, all with the post's base ${BASE_MS} ms and a cap of ${CAP_MS} ms, built with this library:`,
  '',
  ...POLICIES.map((p) => `- ${p.name}: \`${call(p.options)}\``),
  '',
  `(The post's exponential pause after the n-th failure is min(cap, base × 2ⁿ), so its first pause`,
  'is 2 × base; its decorrelated jitter draws from [base, 3 × previous pause], starting at base.)',
  '',
  `With a budget, the N writers (N concurrent requests of one service) share one \`${bucketText}\`;`,
  'when it refuses a retry that client gives up (**committed** counts the writes that got through).',
  '',
  '| N | policy | budget | calls | ± | time (ms) | committed | calls vs no jitter |',
  '|--:|:--|:--|--:|--:|--:|--:|--:|',
);
for (const r of contentionRows) {
  const base = row(r.clients, 'none', r.budget);
  md.push(
    `| ${r.clients} | ${r.policy} | ${r.budget === 'none' ? '—' : 'tokenBucket'} | ${n1(r.calls)} | ${n1(r.callsSd)} | ${n0(r.time)} | ${n1(r.committed)} / ${r.clients} | ${r === base ? '—' : pct(r.calls / base.calls - 1)} |`,
  );
}
md.push(
  '',
  `**At N = 100, full jitter made ${(reduction * 100).toFixed(1)}% fewer calls than unjittered`,
  `exponential backoff (${n1(fullJitter100.calls)} vs ${n1(noJitter100.calls)}) and all clients were done after`,
  `${n0(fullJitter100.time)} ms instead of ${n0(noJitter100.time)} ms.** Without jitter, the clients that`,
  'conflicted together sleep exactly as long and come back together (only the network spreads them a',
  'little), so each round is a new pile-up in which one writer wins and the rest conflict again.',
  'Jitter spreads the retries so that most reads meet a quiet row. Full and equal jitter do about',
  'the same work, but equal jitter keeps half of each pause fixed, so it finishes later; decorrelated',
  'jitter is between the two.',
  '',
  'The budget rows show what a retry budget is *not* for. In contention nearly every attempt fails,',
  'so a shared gRPC bucket is below half after 5 conflicts and the other writers give up: calls stay',
  'near N, but most writes are lost. Contention wants jitter; budgets are for outages.',
  '',
  '## 2. Outage: steady traffic against a failing dependency',
  '',
  `${OUTAGE.clients} client processes each start a request every ${OUTAGE.interval} ms (open loop: traffic keeps`,
  `arriving whatever happens downstream) for ${OUTAGE.window / 1000} s of virtual time. A call takes two network`,
  'hops and fails with the given probability (100% = a total outage). A request makes up to',
  '`maxTries` attempts with full-jitter pauses; each client process holds its own budget. **load** =',
  `calls / first attempts. Sums over ${OUTAGE_SEEDS} seeds.`,
  '',
  '| failure rate | maxTries | budget | first attempts | calls | load | succeeded | retries refused |',
  '|--:|--:|:--|--:|--:|--:|--:|--:|',
);
for (const r of outageRows) {
  md.push(
    `| ${r.failureRate === 1 ? '100% (outage)' : `${r.failureRate * 100}%`} | ${r.maxTries} | ${r.budget === 'none' ? '—' : r.budget === 'tokenBucket' ? 'tokenBucket' : 'retryQuota()'} | ${n0(r.requests)} | ${n0(r.calls)} | **${r.loadMultiplier.toFixed(3)}×** | ${n0(r.succeeded)} | ${n0(r.refused)} |`,
  );
}
md.push(
  '',
  'Without a budget a total outage multiplies the load by exactly `maxTries` (and a 50% failure',
  `rate by 1 + p + p² + …). With \`${bucketText}\` per client, the worst case above is`,
  `**${bucketWorst.toFixed(3)}×**. Why it stays under 1.1×:`,
  '',
  '- A failed attempt takes one token, a success gives back 0.1, and a retry is allowed only while',
  '  more than `maxTokens / 2` = 5 tokens remain. In a total outage nothing refills the bucket, so',
  '  each client retries at most 4 times in all (after the failures that leave 9, 8, 7 and 6 tokens,',
  '  unless that failure was a final attempt) and then sends first attempts only: 4 extra calls per',
  `  client at most, however long the outage lasts (here: ${bucketOutageExtra}).`,
  '- In general, every allowed retry follows a failure that took a whole token while the bucket was',
  '  above half, and only successes (0.1 each) refill it, so retries ≤ maxTokens / 2 + tokenRatio ×',
  '  successes ≤ maxTokens / 2 + 10% of the requests. With half of the calls failing, the failures',
  '  that are not retried drain the bucket too, so it sits near empty and retries are rare; they',
  '  come back when the failure rate falls below about 10%.',
  '',
  '`retryQuota()` (AWS standard mode) bounds the *absolute* number of unpaid retries instead: 500',
  'tokens at 5 per retry is 100 retries per client before it shuts off, so in a total outage the',
  'extra share of load shrinks as the outage goes on',
  `(${quotaOutageExtra} in this ${OUTAGE.window / 1000} s window). A success refunds the cost of its retry`,
  '(or 1 token when it did not retry), so with 50% failures it keeps allowing the retries that pay',
  'for themselves.',
  '',
);
if (problems.length > 0) md.push('## Check FAILED', '', ...problems.map((p) => `- ${p}`), '');

const markdown = md.join('\n');

// ---------------------------------------------------------------------------------------------
// SVG

const COLORS: Record<string, string> = {
  none: '#7f7f7f',
  full: '#1f77b4',
  equal: '#2ca02c',
  decorrelated: '#ff7f0e',
};
const contentionPanel: BarPanel = {
  title: `Contention: write calls until all N clients finished (mean of ${CONTENTION_SEEDS} seeds; hatched: with tokenBucket)`,
  yLabel: 'calls',
  groups: CLIENTS.map((n) => `N = ${n}`),
  series: [false, true].flatMap((budget) =>
    POLICIES.map((p) => ({
      name: `${p.name}${budget ? ' + bucket' : ''}`,
      color: COLORS[p.jitter]!,
      hatched: budget,
    })),
  ),
  values: CLIENTS.map((clients) =>
    [false, true].flatMap((budget) =>
      POLICIES.map((p) => row(clients, p.jitter, budget ? 'tokenBucket' : 'none').calls),
    ),
  ),
  format: (v) => String(Math.round(v)),
};
const outageBudgets = Object.keys(OUTAGE_BUDGETS) as OutageBudget[];
const outageGroups = FAILURE_RATES.flatMap((rate) =>
  MAX_TRIES.map((maxTries) => ({ rate, maxTries })),
);
const outagePanel: BarPanel = {
  title: `Outage: load multiplier (calls / first attempts), ${OUTAGE.clients} clients × ${1000 / OUTAGE.interval} req/s × ${OUTAGE.window / 1000} s`,
  yLabel: 'load multiplier',
  groups: outageGroups.map(
    (g) => `${g.rate === 1 ? 'total outage' : `${g.rate * 100}% failing`}, maxTries ${g.maxTries}`,
  ),
  series: [
    { name: 'no budget', color: '#7f7f7f' },
    { name: 'tokenBucket {10, 0.1}', color: '#1f77b4' },
    { name: 'retryQuota()', color: '#9467bd' },
  ],
  values: outageGroups.map((g) =>
    outageBudgets.map(
      (budget) =>
        outageRows.find(
          (r) => r.failureRate === g.rate && r.maxTries === g.maxTries && r.budget === budget,
        )!.loadMultiplier,
    ),
  ),
  format: (v) => `${v.toFixed(2)}×`,
  reference: { value: 1.1, label: '1.1× (10% extra load)' },
};
const svg = renderBarChart('asyncbackoff retry-storm study', [contentionPanel, outagePanel]);

// ---------------------------------------------------------------------------------------------
// Output

const json = {
  command: COMMAND,
  model: {
    contention: {
      description:
        'AWS "Exponential Backoff and Jitter" OCC model: read version, conditional write, retry on conflict',
      network: { hopMeanMs: 10, hopSdMs: 2 },
      seeds: CONTENTION_SEEDS,
      baseMs: BASE_MS,
      capMs: CAP_MS,
      strategies: POLICIES.map((p) => ({ name: p.name, exponential: p.options })),
      budget: { tokenBucket: BUCKET, sharedBy: 'all N clients' },
    },
    outage: { ...OUTAGE, seeds: OUTAGE_SEEDS, strategy: 'full jitter', budgetPer: 'client' },
  },
  contention: contentionRows,
  outage: outageRows,
  checks: { fullJitterReductionAtN100: reduction, problems },
};

if (SMOKE && option('out') === undefined)
  throw new Error(
    '--smoke: give --out=DIR, so that the smoke figures do not replace benchmarks/results/',
  );
const resultsDir = option('out') ?? fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'retry-storm.md'), markdown);
writeFileSync(join(resultsDir, 'retry-storm.json'), `${JSON.stringify(json, null, 2)}\n`);
writeFileSync(join(resultsDir, 'retry-storm.svg'), svg);

process.stdout.write(markdown);
process.stderr.write(
  `\nwrote ${join(resultsDir, 'retry-storm.{md,json,svg}')} in ${(elapsed / 1000).toFixed(1)} s of simulation\n`,
);
const jsonReport = option('json');
if (jsonReport !== undefined) {
  const environment: Environment = {
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    cpus: os.availableParallelism(),
    cpu: 'any (a virtual clock: the figures do not depend on the machine)',
    target: 'src',
    source: `src/*.ts sha256 ${srcHash()} (the source, through tsx)`,
    loadBefore: loadBefore,
    loadAfter: os.loadavg()[0]!,
  };
  const report: ScenarioReport = {
    scenario: 'retry-storm',
    title: 'Retry storm (deterministic simulation)',
    command: COMMAND,
    smoke: SMOKE,
    environment,
    method: [
      "A seeded simulation on a virtual clock, through the library's delay strategies and budgets (from src/): the same numbers on every machine and Node version. Full write-up: [retry-storm.md](retry-storm.md).",
    ],
    blocks: [
      {
        kind: 'text',
        lines: [
          `Contention, N = 100: full jitter made ${(reduction * 100).toFixed(1)}% fewer calls than unjittered exponential backoff (${n1(fullJitter100.calls)} vs ${n1(noJitter100.calls)}), done after ${n0(fullJitter100.time)} ms instead of ${n0(noJitter100.time)} ms.`,
        ],
      },
      {
        kind: 'text',
        lines: [
          `Outage: with \`${bucketText}\` per client the load stays at most ${bucketWorst.toFixed(3)}× (without a budget a total outage multiplies it by maxTries).`,
        ],
      },
      { kind: 'chart', chart: { title: 'Retry storm study', file: 'retry-storm.svg' } },
    ],
    checks: [
      {
        name: 'the model shows what the write-up claims',
        pass: problems.length === 0,
        detail: problems.length === 0 ? 'yes' : problems.join('; '),
      },
    ],
    checksHeading: 'Check (the process exits 1 if it fails):',
    seconds: (performance.now() - started) / 1000,
    data: json,
  };
  writeFileSync(jsonReport, `${JSON.stringify(report, null, 2)}\n`);
}
if (problems.length > 0) {
  process.stderr.write(`study checks failed:\n${problems.join('\n')}\n`);
  process.exitCode = 1;
}
