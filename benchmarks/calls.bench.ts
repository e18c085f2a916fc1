/**
 * Happy path: ns per successful call, `await <retry library>(async () => 1)` awaited one after
 * another, against a bare `await fn()`, the attempt context's floor, and peer libraries.
 *
 * Run: `npm run bench` runs it with the rest of the suite; alone:
 *   node --import tsx benchmarks/calls.bench.ts [--smoke]
 *   npx -y node@24 --import tsx benchmarks/calls.bench.ts [--smoke]
 * It loads asyncbackoff from dist/ (run `npm run build` first) unless ASYNCBACKOFF_BENCH_TARGET=src.
 *
 * Rows in child processes of their own (one of their rounds follows each round of the in-process
 * cases, while this process waits idle, so every row sees the same machine load):
 *  - the bare call: a process that never imports asyncbackoff nor any peer and never touches
 *    AsyncLocalStorage. The targets are judged against it. On Node < 24, AsyncLocalStorage is
 *    built on V8 promise hooks, which stay on once `als.run()` was called: from then on every
 *    promise in the process is ~2.7x slower, so the bare call measured in this process (printed too)
 *    would flatter asyncbackoff. Node 24 uses AsyncContextFrame: both baselines agree there.
 *  - the floor: what carrying the attempt context costs at the least: `performance.now()`, then
 *    `als.run(store, fn).then(…)` whose reaction reads the clock again (the engine's `sumTime`). Own process, because on Node 24 a second AsyncLocalStorage here would add its key to
 *    every context frame the engine's cases copy.
 *  - `context: false`: asyncbackoff loaded, AsyncLocalStorage never enabled.
 *
 * Method: per case, warm up (and calibrate n so one round takes ~TARGET_ROUND_MS), then ROUNDS
 * rounds, interleaving the cases within each round; the figure is the median of the rounds'
 * ns/call (wall: process.hrtime.bigint(); CPU: process.cpuUsage(), all threads). Each case gets its
 * own freshly compiled loop function so that no case pollutes another's inline caches.
 *
 * A report: the process exits 0 whether the targets pass or not.
 */
import { fileURLToPath } from 'node:url';
import { renderHBarChart } from './chart.js';
import {
  formatNumber,
  loadLibrary,
  loadPeers,
  median,
  NODE_MAJOR,
  option,
  Report,
  type Sample,
  SMOKE,
  serveRequests,
  startChild,
  times,
} from './support.js';

type Call = () => Promise<unknown>;
type Loop = (call: Call, n: number) => Promise<void>;

/** Set in a child process: which one case it measures (see "child modes" below). */
const CHILD = option('child');
const ROUNDS = SMOKE ? 3 : 11;
const TARGET_ROUND_MS = SMOKE ? 10 : 120;
const WARMUP_MS = SMOKE ? 30 : 500;

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

/** Medians of the wall-clock and of the CPU-time samples. */
function medians(samples: Sample[]): Sample {
  return [median(samples.map((x) => x[0])), median(samples.map((x) => x[1]))];
}

// --- child modes: one case each, in a process that loads nothing else -----------------------------
// --child=bare: the bare call; nothing but node is loaded. The targets' baseline.
// --child=lean: a no-limits call with `context: false`; asyncbackoff is loaded but never enables
//   AsyncLocalStorage, so on Node < 24 this process has no promise hooks.
// --child=floor: the least a call that carries a context and times itself costs: a clock read,
//   `als.run(store, fn)`, and a `.then` on its promise that reads the clock again.
// Protocol (support.ts startWorker): the child warms up and prints "ready"; for every "round" it
// runs one round and prints its "wall cpu" ns/call; it exits when stdin closes.

if (CHILD !== undefined) {
  const f = async () => 1;
  let call: Call = f;
  if (CHILD === 'lean') {
    const { Backoff } = await loadLibrary();
    const lean = new Backoff({ exceptions: [Error], maxTries: 3, context: false });
    call = () => lean.execute(f);
  } else if (CHILD === 'floor') {
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const als = new AsyncLocalStorage<object>();
    const store = {};
    const sum = { time: 0 }; // the engine's sumTime
    // The cheapest way to time a call that runs in a context: one reaction on its promise.
    call = () => {
      const t0 = performance.now();
      return als.run(store, f).then((value) => {
        sum.time += performance.now() - t0;
        return value;
      });
    };
  } else if (CHILD !== 'bare') throw new Error(`unknown --child=${CHILD}`);
  const c = makeCase('child', call);
  await warmUp(c);
  await serveRequests(async () => (await time(c.loop, c.call, c.n)).join(' '));
}

// --- main mode ------------------------------------------------------------------------------------

const peers = await loadPeers();
const report = new Report(
  'happy',
  'Happy path: ns per successful call',
  'benchmarks/calls.bench.ts',
  [
    'The guarded function is `async () => 1`, awaited one call after another; every case has its own freshly compiled loop.',
    `Per case: warm-up of ~${WARMUP_MS} ms that also sets the iteration count for rounds of ~${TARGET_ROUND_MS} ms; ${ROUNDS} rounds interleaved across the cases; the figure is the median round (wall: hrtime; CPU: cpuUsage, all threads).`,
    "Own processes, one round after each in-process round: the bare call (the targets' baseline: no AsyncLocalStorage, no library loaded), the floor (`performance.now()`, `als.run(store, fn).then(…)` that reads `performance.now()` again), and `context: false`.",
    'Bounded call: `new Backoff({ attemptTimeout: 1000, deadline: 5000, exceptions: [Error] })`, called as `backoff.withSignal(longLived.signal).execute(fn)`; no-limits: `new Backoff({ exceptions: [Error], maxTries: 3 })`.',
    'Peers: abort-controller-x `retry(signal, fn, { maxAttempts: 3 })`, cockatiel `retry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(0) })` and the same wrapped as `wrap(timeout(5000, Aggressive), retry, timeout(1000, Aggressive)).execute(fn, signal)`, p-retry `pRetry(fn, { retries: 2 })`, exponential-backoff `backOff(fn, { numOfAttempts: 3 })`.',
  ],
  { peers: peers.versions },
);

const child = (kind: string) =>
  startChild(fileURLToPath(import.meta.url), `--child=${kind}`, SMOKE ? ['--smoke'] : []);
const fresh = await child('bare');
const leanChild = await child('lean');
const floorChild = await child('floor');

const { Backoff } = await loadLibrary();
const { cockatiel, pRetry, acxRetry, backOff } = peers;

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
  bare: 'bare `await fn()` (own process)',
  floor: 'floor: `als.run` + two `performance.now()` (own process)',
  noLimits: 'asyncbackoff: no limits (default, with context)',
  lean: 'asyncbackoff: no limits, `context: false` (own process)',
  full: 'asyncbackoff: attemptTimeout + deadline + withSignal per call',
  fullView: 'asyncbackoff: bounded, view bound once',
  leanIn: 'asyncbackoff: no limits, `context: false` (in-process)',
  bareIn: 'bare `await fn()` (in-process, after asyncbackoff ran)',
  acx: 'abort-controller-x retry',
  cockatiel: 'cockatiel retry',
  cockatielWrapped: 'cockatiel retry + attempt and total timeouts',
  pRetry: 'p-retry',
  expBackoff: 'exponential-backoff',
} as const;

const cases: Case[] = [
  makeCase(K.noLimits, () => noLimits.execute(fn)),
  makeCase(K.full, () => full.withSignal(signal).execute(fn)),
  makeCase(K.fullView, () => fullView.execute(fn)),
  makeCase(K.leanIn, () => noLimitsLean.execute(fn)),
  makeCase(K.bareIn, fn),
  makeCase(K.acx, () => acxRetry(signal, fn, { maxAttempts: 3 })),
  makeCase(K.cockatiel, () => cockatielRetry.execute(fn)),
  makeCase(K.cockatielWrapped, () => cockatielWrapped.execute(fn, signal)),
  makeCase(K.pRetry, () => pRetry(fn, { retries: 2 })),
  makeCase(K.expBackoff, () => backOff(fn, { numOfAttempts: 3 })),
];

const own = { bare: [] as Sample[], lean: [] as Sample[], floor: [] as Sample[] };
for (const c of cases) await warmUp(c);
for (let r = 0; r < ROUNDS; r++) {
  for (const c of cases) c.samples.push(await time(c.loop, c.call, c.n));
  own.bare.push(await fresh.round());
  own.lean.push(await leanChild.round());
  own.floor.push(await floorChild.round());
}
for (const c of [fresh, leanChild, floorChild]) c.stop();

const m = new Map<string, Sample>([
  [K.bare, medians(own.bare)],
  [K.floor, medians(own.floor)],
  [K.lean, medians(own.lean)],
  ...cases.map((c) => [c.name, medians(c.samples)] as [string, Sample]),
]);
/** ns per call of a row: wall clock (0) or CPU time (1). */
const ns = (key: keyof typeof K, kind: 0 | 1 = 0): number => m.get(K[key])![kind];
const order: (keyof typeof K)[] = [
  'bare',
  'floor',
  'noLimits',
  'lean',
  'full',
  'fullView',
  'leanIn',
  'bareIn',
  'acx',
  'pRetry',
  'cockatiel',
  'cockatielWrapped',
  'expBackoff',
];

report.table({
  columns: ['case', 'ns/call', 'x bare', 'x floor', 'cpu ns/call', 'cpu x bare'],
  rows: order.map((k) => [
    K[k],
    formatNumber(ns(k)),
    times(ns(k) / ns('bare')),
    times(ns(k) / ns('floor')),
    formatNumber(ns(k, 1)),
    times(ns(k, 1) / ns('bare', 1)),
  ]),
});
report.text(
  NODE_MAJOR < 24
    ? `Node ${NODE_MAJOR} implements AsyncLocalStorage with promise hooks: once asyncbackoff ran, every promise in the process pays for them (bare in-process / own process = ${times(ns('bareIn') / ns('bare'))}). The targets use the own-process bare call.`
    : `Node ${NODE_MAJOR} implements AsyncLocalStorage with AsyncContextFrame (no promise hooks; bare in-process / own process = ${times(ns('bareIn') / ns('bare'))}).`,
);

const chartRows = order.filter((k) => k !== 'fullView' && k !== 'leanIn' && k !== 'bareIn');
report.chart(
  'happy',
  'Happy path, ns per call',
  renderHBarChart({
    title: `Happy path: ns per successful call (node ${process.version}, median of ${ROUNDS} rounds)`,
    xLabel: 'ns per call (log scale)',
    rows: chartRows.map((k) => K[k].replace(/`/g, '')),
    rowColors: chartRows.map((k) =>
      k === 'bare' || k === 'floor'
        ? '#9c9c9c'
        : K[k].startsWith('asyncbackoff')
          ? '#f28e2b'
          : undefined,
    ),
    series: [
      { name: 'wall-clock ns per call (orange: asyncbackoff; grey: baselines)', color: '#4e79a7' },
    ],
    values: chartRows.map((k) => [ns(k)]),
    format: (v) => `${formatNumber(v)} ns`,
    log: true,
    references: [
      { value: ns('bare'), label: 'bare call', color: '#333' },
      { value: ns('floor'), label: 'floor: als.run + two clock reads', color: '#e15759' },
    ],
  }),
);

/** A target judged on wall-clock time, with the CPU-time verdict beside it. */
function target(
  name: string,
  value: (kind: 0 | 1) => number,
  pass: (v: number) => boolean,
  show: (v: number, kind: 0 | 1) => string,
): void {
  const w = value(0);
  const c = value(1);
  report.check(name, pass(w), `${show(w, 0)} [cpu: ${pass(c) ? 'PASS' : 'FAIL'}, ${show(c, 1)}]`);
}
const ratio = (a: keyof typeof K, b: keyof typeof K) => (k: 0 | 1) => ns(a, k) / ns(b, k);
const pair = (a: keyof typeof K, b: keyof typeof K) => (v: number, k: 0 | 1) =>
  `${times(v)} (${formatNumber(ns(a, k))} / ${formatNumber(ns(b, k))} ns)`;
target(
  'no-limits call <= 10x bare',
  ratio('noLimits', 'bare'),
  (v) => v <= 10,
  pair('noLimits', 'bare'),
);
target(
  'no-limits call <= 1.25x its floor',
  ratio('noLimits', 'floor'),
  (v) => v <= 1.25,
  pair('noLimits', 'floor'),
);
target('context: false <= 5x bare', ratio('lean', 'bare'), (v) => v <= 5, pair('lean', 'bare'));
target(
  'context: false faster than p-retry',
  ratio('pRetry', 'lean'),
  (v) => v > 1,
  pair('pRetry', 'lean'),
);
target('bounded call <= 16x bare', ratio('full', 'bare'), (v) => v <= 16, pair('full', 'bare'));
target(
  'bounded call >= 10x faster than cockatiel retry + timeouts',
  ratio('cockatielWrapped', 'full'),
  (v) => v >= 10,
  pair('cockatielWrapped', 'full'),
);

report.set(
  'nsPerCall',
  Object.fromEntries(order.map((k) => [K[k], { wall: ns(k), cpu: ns(k, 1) }])),
);
report.set('rounds', ROUNDS);
report.finish();
