/**
 * Batch benchmark (issue 4): 100,000 items, each call awaiting a 1 ms timer, 5% of the items failing
 * once (item i fails its first attempt iff i % 20 === 0), at most 100 in flight, retried at once
 * (pause 0). Compared in the same process:
 *
 *  - asyncbackoff: ONE `Backoff({ exceptions: [TransientError], maxTries: 2, pause: 0 })`, shared by
 *    every round, `backoff.map(items, work, { concurrency: 100 })`;
 *  - pool: a minimal hand-written pool (100 async workers pulling an index counter, retrying inline
 *    in a loop) — the reference;
 *  - p-map + p-retry: `pMap(items, (i) => pRetry(() => work(i), { retries: 1, minTimeout: 0 }),
 *    { concurrency: 100 })`;
 *  - cockatiel: `wrap(bulkhead(100, Infinity), retry(handleAll, { maxAttempts: 1, backoff: new
 *    ConstantBackoff(0) }))` (cockatiel's maxAttempts counts retries: 1 = 2 attempts), executed for
 *    every item at once and awaited with `Promise.all` (the bulkhead queues the rest), which is how
 *    a bulkhead is meant to be used.
 *
 * The pool is also run in a fresh child process that never loads asyncbackoff (for information: on
 * Node < 24, once asyncbackoff used AsyncLocalStorage, every promise in the process pays for V8
 * promise hooks, the in-process pool included).
 *
 * Method: a warm-up run of every case, then ROUNDS rounds; each round runs every case once, in an
 * order that rotates every round and is reversed every other round, with a forced GC before each
 * run. Reported: medians of wall time (performance.now) and of process CPU time (cpuUsage, all
 * threads). Every run is checked: results in order, N + N/20 calls.
 *
 * Run: `npm run bench` (with the suite), or alone:
 *   node --import tsx benchmarks/batch.bench.ts [--smoke] [--items=N] [--rounds=R]
 *   npx -y node@24 --import tsx benchmarks/batch.bench.ts
 *
 * `--smoke`: 2,000 items, 1 round (not figures). The process exits 0 whether the targets pass or
 * not (it is a report), 1 if a run returned wrong results.
 */
import { fileURLToPath } from 'node:url';
import {
  exposeGc,
  loadLibrary,
  loadPeers,
  median,
  NODE_MAJOR,
  numberOption,
  Report,
  type Sample,
  SMOKE,
  startChild,
  times,
  versionOf,
} from './support.js';

const POOL_CHILD = process.argv.includes('--pool-child');
const N = numberOption('items', SMOKE ? 2_000 : 100_000);
const ROUNDS = numberOption('rounds', SMOKE ? 1 : 5);
const CONCURRENCY = 100;
const WARMUP_ITEMS = Math.min(N, 10_000);

const gc = exposeGc();

// --- the workload ----------------------------------------------------------------------------------

class TransientError extends Error {}

const items = Array.from({ length: N }, (_, i) => i);
let failedOnce = new Uint8Array(N);
let calls = 0;

/** One call: a 1 ms timer; item i fails its first attempt iff i % 20 === 0. */
async function work(i: number): Promise<number> {
  calls++;
  await new Promise((resolve) => setTimeout(resolve, 1));
  if (i % 20 === 0 && failedOnce[i] === 0) {
    failedOnce[i] = 1;
    throw new TransientError(`item ${i}`);
  }
  return i * 2;
}

type Run = (items: number[]) => Promise<unknown[]>;

/** The reference: CONCURRENCY workers pulling an index counter, retrying inline. */
const pool: Run = async (input) => {
  const results = new Array<number>(input.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < input.length; i = next++) {
      for (let attempt = 1; ; attempt++) {
        try {
          results[i] = await work(input[i]!);
          break;
        } catch (error) {
          if (attempt >= 2 || !(error instanceof TransientError)) throw error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return results;
};

/** Runs `run` over the first `n` items, checks the outcome, returns [wall ms, CPU ms]. */
async function timeRun(run: Run, n: number, name: string): Promise<Sample> {
  const input = n === items.length ? items : items.slice(0, n);
  failedOnce = new Uint8Array(n);
  calls = 0;
  gc();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const results = await run(input);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const expectedCalls = n + Math.ceil(n / 20);
  let bad = results.length === n ? 0 : 1;
  for (let i = 0; i < n && bad === 0; i++) if (results[i] !== i * 2) bad++;
  if (bad > 0 || calls !== expectedCalls) {
    console.error(
      `${name}: wrong outcome: ${results.length} results (${bad > 0 ? 'wrong values' : 'ok'}), ${calls} calls (expected ${expectedCalls})`,
    );
    process.exitCode = 1;
  }
  return [wall, (c.user + c.system) / 1000];
}

// --- child mode: the pool only, in a process that never loads asyncbackoff or a peer ----------------
// Protocol: the child warms up and prints "ready"; for every "round" line it runs the pool once and
// prints "wall cpu"; it exits when stdin closes.

if (POOL_CHILD) {
  await timeRun(pool, WARMUP_ITEMS, 'pool (fresh)');
  process.stdout.write('ready\n');
  const { createInterface } = await import('node:readline');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'round') continue;
    process.stdout.write(`${(await timeRun(pool, N, 'pool (fresh)')).join(' ')}\n`);
  }
  process.exit(0);
}

// --- main mode -------------------------------------------------------------------------------------

const peers = await loadPeers();
const pMap = ((await import('p-map')) as { default: typeof import('p-map').default }).default;
const { pRetry, cockatiel } = peers;
const report = new Report(
  'batch',
  `Batch: ${N.toLocaleString('en-US')} items through backoff.map`,
  'benchmarks/batch.bench.ts',
  [
    `Items 0..${N - 1}; each call awaits \`setTimeout(1)\`, items with i % 20 === 0 fail their first attempt (${Math.ceil(N / 20)} retries); at most ${CONCURRENCY} in flight, retried at once (pause 0). Every run is checked: results in input order, N + N/20 calls.`,
    'asyncbackoff: ONE `new Backoff({ exceptions: [TransientError], maxTries: 2, pause: 0 })` shared by every round, `backoff.map(items, work, { concurrency: 100 })`; hand-written pool: 100 async workers pulling an index, retrying inline (the reference); p-map + p-retry `pMap(items, i => pRetry(() => work(i), { retries: 1, minTimeout: 0 }), { concurrency: 100 })`; cockatiel `wrap(bulkhead(100, Infinity), retry(handleAll, { maxAttempts: 1, backoff: new ConstantBackoff(0) }))` for every item up front, `Promise.all`.',
    `One warm-up run per case (${WARMUP_ITEMS.toLocaleString('en-US')} items), then ${ROUNDS} rounds; each round runs every case once in an order that rotates every round and is reversed every other round; a forced GC before each run; medians. Wall time (what the targets judge) is set by the 1 ms timers; the CPU columns show the per-item overhead. The pool also runs in a fresh process (for information).`,
  ],
  { peers: `p-map@${versionOf('p-map')}, ${peers.versions}` },
);
const fresh = await startChild(
  fileURLToPath(import.meta.url),
  '--pool-child',
  process.argv.slice(2),
);
const { Backoff } = await loadLibrary();
const backoff = new Backoff({ exceptions: [TransientError], maxTries: 2, pause: 0 });
const policy = cockatiel.wrap(
  cockatiel.bulkhead(CONCURRENCY, Number.POSITIVE_INFINITY),
  cockatiel.retry(cockatiel.handleAll, {
    maxAttempts: 1,
    backoff: new cockatiel.ConstantBackoff(0),
  }),
);

interface Case {
  readonly name: string;
  readonly run: Run;
  readonly samples: Sample[];
}
const cases: Case[] = [
  {
    name: 'asyncbackoff map',
    run: (input) => backoff.map(input, work, { concurrency: CONCURRENCY }),
    samples: [],
  },
  { name: 'hand-written pool', run: pool, samples: [] },
  {
    name: 'p-map + p-retry',
    run: (input) =>
      pMap(input, (i) => pRetry(() => work(i), { retries: 1, minTimeout: 0 }), {
        concurrency: CONCURRENCY,
      }),
    samples: [],
  },
  {
    name: 'cockatiel bulkhead+retry',
    run: (input) => Promise.all(input.map((i) => policy.execute(() => work(i)))),
    samples: [],
  },
];
const freshSamples: Sample[] = [];

for (const c of cases) await timeRun(c.run, WARMUP_ITEMS, c.name);
for (let r = 0; r < ROUNDS; r++) {
  const rotated = cases.map((_, k) => cases[(k + r) % cases.length]!);
  const order = r % 2 === 1 ? rotated.reverse() : rotated;
  for (const c of order) c.samples.push(await timeRun(c.run, N, c.name));
  freshSamples.push(await fresh.round());
  process.stderr.write(`round ${r + 1}/${ROUNDS}: ${order.map((c) => c.name).join(' → ')}\n`);
}
fresh.stop();

const wall = (s: Sample[]) => median(s.map((x) => x[0]));
const cpu = (s: Sample[]) => median(s.map((x) => x[1]));
const [ours, ref, pmap, cock] = cases as [Case, Case, Case, Case];
const refWall = wall(ref.samples);
const refCpu = cpu(ref.samples);

const rows: [string, Sample[]][] = [
  ...cases.map((c) => [c.name, c.samples] as [string, Sample[]]),
  ['hand-written pool, fresh process (info)', freshSamples],
];
report.table({
  columns: [
    'case',
    'wall ms (median)',
    'min..max',
    'x pool',
    'CPU ms (median)',
    'CPU x pool',
    'µs CPU/item',
  ],
  rows: rows.map(([name, s]) => [
    name,
    wall(s).toFixed(0),
    `${Math.min(...s.map((x) => x[0])).toFixed(0)}..${Math.max(...s.map((x) => x[0])).toFixed(0)}`,
    times(wall(s) / refWall),
    cpu(s).toFixed(0),
    times(cpu(s) / refCpu),
    ((cpu(s) * 1000) / N).toFixed(2),
  ]),
});
if (NODE_MAJOR < 24)
  report.text(
    `Node ${NODE_MAJOR} implements AsyncLocalStorage with promise hooks; once asyncbackoff ran, every promise in this process pays for them, the in-process pool's included (fresh-process pool / in-process pool CPU = ${times(cpu(freshSamples) / refCpu)}). The targets compare in-process runs.`,
  );

const ourWall = wall(ours.samples);
report.check(
  'asyncbackoff within 1.2x of the hand-written pool',
  ourWall <= 1.2 * refWall,
  times(ourWall / refWall),
);
report.check(
  'asyncbackoff ahead of p-map + p-retry',
  ourWall < wall(pmap.samples),
  `${ourWall.toFixed(0)} ms vs ${wall(pmap.samples).toFixed(0)} ms`,
);
report.check(
  'asyncbackoff ahead of cockatiel bulkhead+retry',
  ourWall < wall(cock.samples),
  `${ourWall.toFixed(0)} ms vs ${wall(cock.samples).toFixed(0)} ms`,
);
report.set(
  'ms',
  Object.fromEntries(rows.map(([name, s]) => [name, { wall: wall(s), cpu: cpu(s), samples: s }])),
);
report.finish();
