/**
 * Happy-path cost of one call: ns per `await <retry library>(async () => 1)`, awaited one after
 * another, compared with a bare `await fn()` and with peer libraries.
 *
 * Run (any of):
 *   npx tsx benchmarks/calls.bench.ts [--quick]
 *   npm run bench -- [--quick]
 *   node --import tsx benchmarks/calls.bench.ts [--quick]
 *   npx -y node@24 --import tsx benchmarks/calls.bench.ts [--quick]
 *   bash benchmarks/run-all.sh [--quick]          # Node 20 (PATH's node) and Node 24
 *
 * The bare baseline is measured twice:
 *  - in a fresh child process that never imports asyncbackoff (nor any peer) and never touches
 *    AsyncLocalStorage. The targets are judged against this one.
 *  - in this process, after asyncbackoff ran. On Node < 24, AsyncLocalStorage is implemented with
 *    V8 promise hooks, which stay enabled once `als.run()` was called: from then on every promise
 *    in the process (the bare one included) is ~2.7x slower. A ratio against this baseline is
 *    therefore flattering to asyncbackoff; it is printed for information only. Node 24 uses
 *    AsyncContextFrame and has no such tax, so both baselines agree there.
 *
 * Method: per case, warm up (and calibrate n so one round takes ~TARGET_ROUND_MS), then run ROUNDS
 * rounds, interleaving the cases within each round; the result is the median of the rounds'
 * ns/call, timed with process.hrtime.bigint(). Each case gets its own freshly compiled loop
 * function so that no case pollutes another's inline caches.
 *
 * The output is a report: the process exits 0 whether the targets pass or not.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type * as CockatielModule from 'cockatiel';
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

type Call = () => Promise<unknown>;
type Loop = (call: Call, n: number) => Promise<void>;

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
/** Set in a child process: which one case it measures (see "child modes" below). */
const CHILD = argv.find((a) => a.startsWith('--child='))?.slice('--child='.length);
const ROUNDS = QUICK ? 5 : 11;
const TARGET_ROUND_MS = QUICK ? 40 : 120;
const WARMUP_MS = QUICK ? 150 : 500;
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => Loop;
let loopId = 0;

/** A fresh `async (call, n) => { for (...) await call(); }` with its own feedback (unique source). */
function makeLoop(): Loop {
  loopId++;
  return new AsyncFunction(
    'call',
    'n',
    `/* loop ${loopId} */ for (let i = 0; i < n; i++) await call();`,
  );
}

/** One round: [wall-clock ns per call (hrtime), process CPU ns per call (cpuUsage, all threads)]. */

async function time(loop: Loop, call: Call, n: number): Promise<Sample> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await loop(call, n);
  const wall = Number(process.hrtime.bigint() - t0) / n;
  const c = process.cpuUsage(c0);
  return [wall, ((c.user + c.system) * 1000) / n];
}

interface Case {
  readonly name: string;
  readonly call: Call;
  readonly loop: Loop;
  n: number;
  readonly samples: Sample[];
}

function makeCase(name: string, call: Call): Case {
  return { name, call, loop: makeLoop(), n: 0, samples: [] };
}

/** Warms the case up for WARMUP_MS and sets n so that a round takes about TARGET_ROUND_MS. */
async function warmUp(c: Case): Promise<void> {
  // Sanity check: the call must resolve with 1.
  const value = await c.call();
  if (value !== 1) throw new Error(`${c.name}: expected 1, got ${String(value)}`);
  let n = 1000;
  let spent = 0;
  let ns = 0;
  while (spent < WARMUP_MS * 1e6) {
    [ns] = await time(c.loop, c.call, n);
    spent += ns * n;
    n = Math.min(n * 2, 1_000_000);
  }
  c.n = Math.max(1000, Math.round((TARGET_ROUND_MS * 1e6) / ns));
}

/**
 * Warms every case up, then runs ROUNDS rounds; in each round every case once, then `extra` (the
 * fresh child's round, while this process waits idle).
 */
async function measure(cases: Case[], extra: () => Promise<Sample>): Promise<Sample[]> {
  for (const c of cases) await warmUp(c);
  const extraSamples: Sample[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) c.samples.push(await time(c.loop, c.call, c.n));
    extraSamples.push(await extra());
  }
  return extraSamples;
}

/** Medians of the wall-clock and of the CPU-time samples. */
function medians(samples: Sample[]): Sample {
  return [median(samples.map((x) => x[0])), median(samples.map((x) => x[1]))];
}

// --- child modes: one case each, in a process that loads nothing else -----------------------------
// --child=bare: the bare call; nothing but node is loaded. The targets' baseline.
// --child=lean: a no-limits call with `context: false`; asyncbackoff is loaded but never enables
//   AsyncLocalStorage, so on Node < 24 this process has no promise hooks.
// --child=floor: `als.run(store, fn)` alone, what carrying a context costs at the least. In its
//   own process because on Node 24 a second AsyncLocalStorage here would add its key to every
//   context frame the engine's cases copy, and slow them down.
// Protocol on stdin/stdout, one line each: the child warms up and prints "ready"; for every "round"
// it reads, it runs one round and prints its ns/call; it exits when stdin closes.

if (CHILD !== undefined) {
  const f = async () => 1;
  let call: Call = f;
  if (CHILD === 'lean') {
    const { Backoff } = await import('../src/index.js');
    const lean = new Backoff({ exceptions: [Error], maxTries: 3, context: false });
    call = () => lean.execute(f);
  } else if (CHILD === 'floor') {
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const als = new AsyncLocalStorage<object>();
    const store = {};
    call = () => als.run(store, f);
  } else if (CHILD !== 'bare') throw new Error(`unknown --child=${CHILD}`);
  const c = makeCase('child', call);
  await warmUp(c);
  process.stdout.write('ready\n');
  const { createInterface } = await import('node:readline');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'round') continue;
    process.stdout.write(`${(await time(c.loop, c.call, c.n)).join(' ')}\n`);
  }
  process.exit(0);
}

// --- main mode ------------------------------------------------------------------------------------

// The fresh baseline runs in a child process, one of its rounds after each round of the in-process
// cases (this process waits idle meanwhile), so both see the same machine load.
const loadBefore = os.loadavg()[0]!;
const child = (kind: string) =>
  startChild(fileURLToPath(import.meta.url), `--child=${kind}`, QUICK ? ['--quick'] : []);
const fresh = await child('bare');
const leanChild = await child('lean');
const floorChild = await child('floor');

const { pRetry: pRetryPkg, cockatiel: cockatielPkg } = peerPackages();
const imported = await import(cockatielPkg as string);
const cockatiel = (imported.retry ? imported : imported.default) as typeof CockatielModule;
const pRetry = ((await import(pRetryPkg as string)) as { default: typeof pRetryFn }).default;
const { retry: acxRetry } = await import('abort-controller-x');
const { backOff } = await import('exponential-backoff');
const { Backoff } = await import('../src/index.js');

const fn = async () => 1;
const longLived = new AbortController();
const signal = longLived.signal;

const full = new Backoff({ attemptTimeout: 1000, deadline: 5000, exceptions: [Error] });
const fullView = full.withSignal(signal);
const noLimits = new Backoff({ exceptions: [Error], maxTries: 3 });
const noLimitsLean = new Backoff({ exceptions: [Error], maxTries: 3, context: false });

const { retry, handleAll, ConstantBackoff, timeout, TimeoutStrategy, wrap } = cockatiel;
const cockatielRetry = retry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(0) });
const cockatielWrapped = wrap(
  timeout(5000, TimeoutStrategy.Aggressive), // total
  retry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(0) }),
  timeout(1000, TimeoutStrategy.Aggressive), // per attempt
);

const K = {
  bareIn: 'bare `await fn()` (in-process, after ALS)',
  full: 'asyncbackoff: attemptTimeout+deadline, withSignal(s) per call',
  fullView: 'asyncbackoff: attemptTimeout+deadline, view bound once',
  noLimits: 'asyncbackoff: no time limits, maxTries 3',
  noLimitsLean: 'asyncbackoff: no time limits, maxTries 3, context: false',
  acx: 'abort-controller-x retry(signal, fn, {maxAttempts: 3})',
  cockatiel: 'cockatiel retry(handleAll, {maxAttempts: 3, ConstantBackoff(0)})',
  cockatielWrapped: 'cockatiel wrap(timeout 5000, retry, timeout 1000), signal',
  pRetry: 'p-retry pRetry(fn, {retries: 2})',
  expBackoff: 'exponential-backoff backOff(fn, {numOfAttempts: 3})',
} as const;

const cases: Case[] = [
  makeCase(K.bareIn, fn),
  makeCase(K.full, () => full.withSignal(signal).execute(fn)),
  makeCase(K.fullView, () => fullView.execute(fn)),
  makeCase(K.noLimits, () => noLimits.execute(fn)),
  makeCase(K.noLimitsLean, () => noLimitsLean.execute(fn)),
  makeCase(K.acx, () => acxRetry(signal, fn, { maxAttempts: 3 })),
  makeCase(K.cockatiel, () => cockatielRetry.execute(fn)),
  makeCase(K.cockatielWrapped, () => cockatielWrapped.execute(fn, signal)),
  makeCase(K.pRetry, () => pRetry(fn, { retries: 2 })),
  makeCase(K.expBackoff, () => backOff(fn, { numOfAttempts: 3 })),
];

const leanSamples: Sample[] = [];
const floorSamples: Sample[] = [];
const freshSamples = await measure(cases, async () => {
  leanSamples.push(await leanChild.round());
  floorSamples.push(await floorChild.round());
  return fresh.round();
});
for (const c of [fresh, leanChild, floorChild]) c.stop();
const loadAfter = os.loadavg()[0]!;

const LEAN_OWN = `${K.noLimitsLean} (own process)`;
const FLOOR = 'AsyncLocalStorage.run(store, fn) alone (own process): the context floor';
/** [wall, cpu] medians per case; index 0 is the fresh-process bare call. */
const rowsData: { name: string; m: Sample }[] = [
  { name: 'bare `await fn()` (fresh child process)', m: medians(freshSamples) },
  ...cases.map((c) => ({ name: c.name, m: medians(c.samples) })),
  { name: LEAN_OWN, m: medians(leanSamples) },
  { name: FLOOR, m: medians(floorSamples) },
];
const byName = new Map(rowsData.map((r) => [r.name, r.m]));
const freshM = rowsData[0]!.m;
const inM = byName.get(K.bareIn)!;
/** ns per call of a case: index 0 wall clock, 1 CPU time. */
const ns = (key: keyof typeof K, kind: 0 | 1 = 0): number => byName.get(K[key])![kind];
const bareFresh = freshM[0];
const bareIn = inM[0];
const leanOwn = byName.get(LEAN_OWN)!;
const floor = byName.get(FLOOR)!;

console.log(`asyncbackoff happy-path call benchmark${QUICK ? ' (--quick)' : ''}`);
console.log(
  `node ${process.version} (${process.platform}/${process.arch}), ${os.availableParallelism()} CPUs: ${cpuModel()}`,
);
console.log(`asyncbackoff source: src/*.ts sha256 ${srcHash()} (run from source through tsx)`);
console.log(
  `peers: ${pRetryPkg}=p-retry@${versionOf(pRetryPkg)}, ${cockatielPkg}=cockatiel@${versionOf(cockatielPkg)}, ` +
    `abort-controller-x@${versionOf('abort-controller-x')}, exponential-backoff@${versionOf('exponential-backoff')}`,
);
console.log(
  `load average (1 min) before/after: ${loadBefore.toFixed(2)} / ${loadAfter.toFixed(2)}` +
    (Math.max(loadBefore, loadAfter) > os.availableParallelism() * 0.75
      ? ' -- WARNING: the machine is busy; wall-clock numbers are inflated (the rounds are interleaved, so ratios are time-matched; see the CPU-time columns)'
      : ''),
);
console.log(
  `method: median of ${ROUNDS} interleaved rounds of ~${TARGET_ROUND_MS} ms per case, sequential awaits of \`async () => 1\`; ` +
    'wall = process.hrtime.bigint(), cpu = process.cpuUsage() (all threads of the process)',
);
console.log(
  NODE_MAJOR < 24
    ? `note: Node ${NODE_MAJOR} implements AsyncLocalStorage with promise hooks; once asyncbackoff ran, every promise in this process pays for them (bare in-process / fresh = ${(bareIn / bareFresh).toFixed(2)}x). Targets are judged against the fresh-process bare call.`
    : `note: Node ${NODE_MAJOR} uses AsyncContextFrame for AsyncLocalStorage (no promise-hook tax; bare in-process / fresh = ${(bareIn / bareFresh).toFixed(2)}x). Targets are judged against the fresh-process bare call.`,
);
console.log('');

const header = [
  'case',
  'ns/call',
  'x bare (fresh)',
  'x bare (in-proc)',
  'cpu ns/call',
  'cpu x bare (fresh)',
];
const rows = rowsData.map(({ name, m }) => [
  name,
  m[0].toFixed(1),
  (m[0] / freshM[0]).toFixed(2),
  (m[0] / inM[0]).toFixed(2),
  m[1].toFixed(1),
  (m[1] / freshM[1]).toFixed(2),
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const fmt = (r: string[]) =>
  `| ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
console.log(fmt(header));
console.log(
  `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
);
for (const r of rows) console.log(fmt(r));
console.log('');

interface Target {
  name: string;
  /** The measured value on wall clock (0) and CPU time (1). */
  value: (kind: 0 | 1) => number;
  pass: (value: number) => boolean;
  show: (value: number, kind: 0 | 1) => string;
}
const targets: Target[] = [
  {
    name: '(a) full call >= 10x faster than cockatiel retry+timeouts',
    value: (k) => ns('cockatielWrapped', k) / ns('full', k),
    pass: (v) => v >= 10,
    show: (v, k) =>
      `${v.toFixed(2)}x faster (cockatiel ${ns('cockatielWrapped', k).toFixed(0)} ns, asyncbackoff ${ns('full', k).toFixed(0)} ns)`,
  },
  {
    name: '(a) full call <= 16x bare (fresh process)',
    value: (k) => ns('full', k) / freshM[k],
    pass: (v) => v <= 16,
    show: (v, k) =>
      `${v.toFixed(2)}x (vs in-process bare: ${(ns('full', k) / inM[k]).toFixed(2)}x; view bound once: ${(ns('fullView', k) / freshM[k]).toFixed(2)}x)`,
  },
  {
    name: '(b) no-limits call <= 8x bare (fresh process)',
    value: (k) => ns('noLimits', k) / freshM[k],
    pass: (v) => v <= 8,
    show: (v, k) =>
      `${v.toFixed(2)}x (vs in-process bare: ${(ns('noLimits', k) / inM[k]).toFixed(2)}x)`,
  },
  {
    name: '(b) no-limits call faster than p-retry',
    value: (k) => ns('pRetry', k) / ns('noLimits', k),
    pass: (v) => v > 1,
    show: (v, k) =>
      `${v >= 1 ? `${v.toFixed(2)}x faster` : `${(1 / v).toFixed(2)}x slower`} (p-retry ${ns('pRetry', k).toFixed(0)} ns, asyncbackoff ${ns('noLimits', k).toFixed(0)} ns)`,
  },
];
console.log(
  'targets (judged on wall-clock time against the fresh-process bare call; CPU-time result in brackets):',
);
for (const t of targets) {
  const wall = t.value(0);
  const cpu = t.value(1);
  console.log(
    `  ${t.pass(wall) ? 'PASS' : 'FAIL'}  ${t.name}: ${t.show(wall, 0)} [cpu: ${t.pass(cpu) ? 'PASS' : 'FAIL'}, ${t.show(cpu, 1)}]`,
  );
}
console.log('');
console.log(
  'with context: false (no AsyncLocalStorage; currentAttempt() is not carried), for information:',
);
for (const k of [0, 1] as const) {
  const label = k === 0 ? 'wall' : 'cpu';
  console.log(
    `  ${label}: in-process ${ns('noLimitsLean', k).toFixed(0)} ns = ${(ns('noLimitsLean', k) / freshM[k]).toFixed(2)}x bare, ` +
      `own process ${leanOwn[k].toFixed(0)} ns = ${(leanOwn[k] / freshM[k]).toFixed(2)}x bare; ` +
      `p-retry / own process = ${(ns('pRetry', k) / leanOwn[k]).toFixed(2)}; ` +
      `AsyncLocalStorage.run alone ${floor[k].toFixed(0)} ns = ${(floor[k] / ns('pRetry', k)).toFixed(2)}x p-retry`,
  );
}
