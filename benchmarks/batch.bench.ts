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
 * Run (any of):
 *   npx tsx benchmarks/batch.bench.ts [--quick] [--items=N] [--rounds=R]
 *   node --import tsx benchmarks/batch.bench.ts [--quick]
 *   npx -y node@24 --import tsx benchmarks/batch.bench.ts [--quick]
 *
 * `--quick`: 20,000 items, 3 rounds (a smoke test, not numbers). The process exits 0 whether the
 * targets pass or not (it is a report), 1 if a run returned wrong results.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import type * as CockatielModule from 'cockatiel';
import type pMapFn from 'p-map';
import type pRetryFn from 'p-retry';
import {
  cpuModel,
  median,
  peerPackages,
  type Sample,
  srcHash,
  startChild,
  versionOf,
} from './support.js';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const POOL_CHILD = argv.includes('--pool-child');
const numberArg = (name: string, fallback: number): number => {
  const arg = argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : Number(arg.slice(name.length + 3));
};
const N = numberArg('items', QUICK ? 20_000 : 100_000);
const ROUNDS = numberArg('rounds', QUICK ? 3 : 5);
const CONCURRENCY = 100;
const WARMUP_ITEMS = Math.min(N, 10_000);
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

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

const loadBefore = os.loadavg()[0]!;
const fresh = await startChild(fileURLToPath(import.meta.url), '--pool-child', argv);

const { pRetry: pRetryPkg, cockatiel: cockatielPkg } = peerPackages();
const pMap = ((await import('p-map')) as { default: typeof pMapFn }).default;
const pRetry = ((await import(pRetryPkg as string)) as { default: typeof pRetryFn }).default;
const imported = await import(cockatielPkg as string);
const cockatiel = (imported.bulkhead ? imported : imported.default) as typeof CockatielModule;
const { Backoff } = await import('../src/index.js');

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

console.log('asyncbackoff batch benchmark');
console.log(
  `node ${process.version} (${process.platform}/${process.arch}), ${os.cpus().length} CPUs: ${cpuModel()}`,
);
console.log(`asyncbackoff source: src/*.ts sha256 ${srcHash()} (run from source through tsx)`);
console.log(
  `peers: p-map ${versionOf('p-map')}, ${pRetryPkg} ${versionOf(pRetryPkg)}, ${cockatielPkg} ${versionOf(cockatielPkg)}`,
);
console.log(
  `workload: ${N} items, concurrency ${CONCURRENCY}, each call awaits setTimeout(1), items i % 20 === 0 fail once (${Math.ceil(N / 20)} retries), pause 0; ${ROUNDS} rounds, medians`,
);
console.log(`arguments: ${argv.length > 0 ? argv.join(' ') : '(none)'}`);
console.log(`load average (1 min) before: ${loadBefore.toFixed(2)}`);
if (loadBefore > 0.75 * os.cpus().length)
  console.log('warning: the machine is busy; the numbers are noisy');

for (const c of cases) await timeRun(c.run, WARMUP_ITEMS, c.name);
for (let r = 0; r < ROUNDS; r++) {
  const rotated = cases.map((_, k) => cases[(k + r) % cases.length]!);
  const order = r % 2 === 1 ? rotated.reverse() : rotated;
  for (const c of order) c.samples.push(await timeRun(c.run, N, c.name));
  freshSamples.push(await fresh.round());
  process.stderr.write(`round ${r + 1}/${ROUNDS}: ${order.map((c) => c.name).join(' → ')}\n`);
}
fresh.stop();
const loadAfter = os.loadavg()[0]!;

const wall = (s: Sample[]) => median(s.map((x) => x[0]));
const cpu = (s: Sample[]) => median(s.map((x) => x[1]));
const [ours, ref, pmap, cock] = cases as [Case, Case, Case, Case];
const refWall = wall(ref.samples);
const refCpu = cpu(ref.samples);

const rows: [string, Sample[]][] = [
  ...cases.map((c) => [c.name, c.samples] as [string, Sample[]]),
  ['hand-written pool, fresh process (info)', freshSamples],
];
const header = [
  'case',
  'wall ms (median)',
  'min..max',
  'x pool',
  'CPU ms (median)',
  'CPU x pool',
  'µs CPU/item',
];
const table = rows.map(([name, s]) => [
  name,
  wall(s).toFixed(0),
  `${Math.min(...s.map((x) => x[0])).toFixed(0)}..${Math.max(...s.map((x) => x[0])).toFixed(0)}`,
  `${(wall(s) / refWall).toFixed(2)}x`,
  cpu(s).toFixed(0),
  `${(cpu(s) / refCpu).toFixed(2)}x`,
  ((cpu(s) * 1000) / N).toFixed(2),
]);
const widths = header.map((h, k) => Math.max(h.length, ...table.map((row) => row[k]!.length)));
const line = (cells: string[]) =>
  `| ${cells.map((cell, k) => (k === 0 ? cell.padEnd(widths[k]!) : cell.padStart(widths[k]!))).join(' | ')} |`;
console.log();
console.log(line(header));
console.log(
  `|${widths.map((w, k) => (k === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
);
for (const row of table) console.log(line(row));
console.log();

const ourWall = wall(ours.samples);
const checks: [boolean, string][] = [
  [
    ourWall <= 1.2 * refWall,
    `asyncbackoff within 1.2x of the hand-written pool: ${(ourWall / refWall).toFixed(3)}x`,
  ],
  [
    ourWall < wall(pmap.samples),
    `asyncbackoff ahead of p-map + p-retry: ${ourWall.toFixed(0)} ms vs ${wall(pmap.samples).toFixed(0)} ms`,
  ],
  [
    ourWall < wall(cock.samples),
    `asyncbackoff ahead of cockatiel bulkhead+retry: ${ourWall.toFixed(0)} ms vs ${wall(cock.samples).toFixed(0)} ms`,
  ],
];
for (const [ok, text] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${text}`);
console.log(`verdict: ${checks.every(([ok]) => ok) ? 'PASS' : 'FAIL'}`);
console.log(`load average (1 min) after: ${loadAfter.toFixed(2)}`);
if (NODE_MAJOR < 24)
  console.log(
    `note: Node ${NODE_MAJOR} implements AsyncLocalStorage with promise hooks; once asyncbackoff ran, every promise in this process pays for them, the in-process pool's included (fresh-process pool / in-process pool CPU = ${(cpu(freshSamples) / refCpu).toFixed(2)}x). The targets compare in-process runs.`,
  );
