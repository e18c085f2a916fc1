/**
 * Timing precision in an incident: N executions at once whose attempts never settle, each bounded
 * to 50 ms. Measured: the lateness of each rejection, i.e. when the caller's rejection handler
 * runs, against that execution's nominal time (the `performance.now()` read just before the call,
 * plus 50 ms). p50 / p99 / max (and min: negative = early) in ms, for N = 1,000 and 10,000, on an
 * idle event loop and with a CPU-busy neighbour in the same process (a `setInterval` doing 2 ms of
 * synchronous work every 10 ms).
 *
 * Rows:
 *  - floor: `new Promise((_, reject) => setTimeout(reject, 50, premadeError))`: Node's timers,
 *    nothing else (no error is constructed per call);
 *  - by-hand race: `Promise.race([attempt, new Promise((_, reject) => setTimeout(() =>
 *    reject(new Error('timeout')), 50))])`, as it is usually written;
 *  - asyncbackoff `new Backoff({ attemptTimeout: 50, maxTries: 1 })`;
 *  - asyncbackoff `new Backoff({ deadline: 50 })`;
 *  - asyncbackoff with `attemptTimeout: 50, maxTries: 1` and an attempt that listens to its signal
 *    (`currentAttempt().signal`; rejects with `signal.reason` on abort, as fetch does);
 *  - the same by hand: an AbortController aborted by `setTimeout(() => controller.abort(), 50)`
 *    and the same listening attempt;
 *  - cockatiel `timeout(50, TimeoutStrategy.Aggressive).execute(attempt)`;
 *  - the context floor, by hand: what a bounded call costs at the least when it carries an attempt
 *    context as asyncbackoff does. One shared FIFO timer for all calls, a promise per call, the
 *    attempt run in `AsyncLocalStorage.run`, the caller's async context kept in an `AsyncResource`
 *    for the verdict (the timer is shared), and a new stackless `Error` per verdict;
 *  - the by-hand abort in a process that uses AsyncLocalStorage: on Node 20 (and 22), the first
 *    `run()` switches on promise hooks for every promise in the process, asyncbackoff's rows
 *    included.
 *
 * Each row runs in a child process of its own (nothing else loaded; no cross-talk between rows).
 * For each (N, load): one discarded warm-up run per row, then RUNS runs interleaved across the rows
 * (one child at a time; the others wait idle), with a forced GC before each. Reported: the median over the runs of each run's p50, p99, max and min; the CDF
 * chart pools every run's values.
 *
 * Run: `npm run bench` (with the suite), or alone:
 *   node --import tsx benchmarks/precision.bench.ts [--smoke]
 * A report: exits 0 whether the targets pass or not.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { fileURLToPath } from 'node:url';
import { PALETTE, renderCdfChart } from './chart.js';
import {
  contextFloor,
  exposeGc,
  formatNumber,
  loadLibrary,
  loadPeers,
  median,
  option,
  quantile,
  Report,
  SMOKE,
  serveRequests,
  startWorker,
  times,
  type Worker,
} from './support.js';

const BOUND = 50;
const RUNS = SMOKE ? 1 : 5;
const SIZES = SMOKE ? [100, 300] : [1000, 10_000];
const BUSY_EVERY_MS = 10;
const BUSY_WORK_MS = 2;

const ROWS = {
  floor: 'floor: setTimeout rejecting (pre-made error)',
  race: 'by hand: Promise.race + setTimeout, new Error()',
  attemptTimeout: 'asyncbackoff attemptTimeout (maxTries 1)',
  deadline: 'asyncbackoff deadline',
  signal: 'asyncbackoff, attempt listens to its signal',
  signalByHand: 'by hand: AbortController + setTimeout, listening attempt',
  cockatiel: 'cockatiel timeout(Aggressive)',
  contextFloor: 'context floor, by hand: FIFO timer + als.run + AsyncResource + stackless Error',
  signalByHandAls:
    'by hand: AbortController + setTimeout, listening attempt, AsyncLocalStorage in use',
} as const;
type RowKey = keyof typeof ROWS;

// --- child mode: one row, one N, one load ---------------------------------------------------------

type Start = () => Promise<unknown>;

async function makeStart(row: RowKey): Promise<Start> {
  const never = () => new Promise<never>(() => {});
  /** An attempt that rejects when its signal aborts, as fetch does. */
  const listening = (signal: AbortSignal) =>
    new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  switch (row) {
    case 'floor': {
      const premade = new Error('timeout (pre-made)');
      return () => new Promise((_, reject) => setTimeout(reject, BOUND, premade));
    }
    case 'race':
      return () =>
        Promise.race([
          never(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), BOUND)),
        ]);
    case 'attemptTimeout': {
      const { Backoff } = await loadLibrary();
      const backoff = new Backoff({ attemptTimeout: BOUND, maxTries: 1 });
      return () => backoff.execute(never);
    }
    case 'deadline': {
      const { Backoff } = await loadLibrary();
      const backoff = new Backoff({ deadline: BOUND });
      return () => backoff.execute(never);
    }
    case 'signal': {
      const { Backoff, currentAttempt } = await loadLibrary();
      const backoff = new Backoff({ attemptTimeout: BOUND, maxTries: 1 });
      const attempt = () => listening(currentAttempt()!.signal);
      return () => backoff.execute(attempt);
    }
    case 'signalByHand':
      return () => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(), BOUND);
        return listening(controller.signal);
      };
    case 'contextFloor':
      return contextFloor(never, BOUND);
    case 'signalByHandAls': {
      // The first run() of an AsyncLocalStorage turns on its machinery for the whole process.
      new AsyncLocalStorage().run({}, () => {});
      return () => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(), BOUND);
        return listening(controller.signal);
      };
    }
    case 'cockatiel': {
      const { cockatiel } = await loadPeers();
      const policy = cockatiel.timeout(BOUND, cockatiel.TimeoutStrategy.Aggressive);
      return () => policy.execute(never);
    }
  }
}

const CHILD = option('row') as RowKey | undefined;
if (CHILD !== undefined) {
  if (!(CHILD in ROWS)) throw new Error(`unknown --row=${CHILD}`);
  const gc = exposeGc();
  const start = await makeStart(CHILD);

  /** How long the last run's synchronous start loop took (ms). */
  let startMs = 0;
  /** One run: n executions started in one synchronous loop; resolves with their lateness (ms). */
  const run = (n: number, busy: boolean): Promise<Float64Array> => {
    const late = new Float64Array(n);
    let left = n;
    return new Promise((resolve, reject) => {
      const neighbour = busy
        ? setInterval(() => {
            const end = performance.now() + BUSY_WORK_MS;
            while (performance.now() < end);
          }, BUSY_EVERY_MS)
        : undefined;
      const first = performance.now();
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        start().then(
          () => reject(new Error(`${ROWS[CHILD]}: an execution fulfilled`)),
          () => {
            late[i] = performance.now() - t0 - BOUND;
            if (--left === 0) {
              clearInterval(neighbour);
              resolve(late);
            }
          },
        );
      }
      startMs = performance.now() - first;
    });
  };
  // Requests: "<n> <idle|busy>"; the answer: { start: ms of the start loop, late: lateness values }.
  await serveRequests(async (line) => {
    const [n, load] = line.split(' ');
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20)); // let the GC's helper threads finish
    const late = await run(Number(n), load === 'busy');
    return JSON.stringify({
      start: startMs,
      late: Array.from(late, (v) => Math.round(v * 1000) / 1000),
    });
  });
}

// --- main mode ------------------------------------------------------------------------------------

const peers = await loadPeers();
const report = new Report(
  'precision',
  `Timing precision: ${SIZES.map((n) => n.toLocaleString('en-US')).join(' and ')} executions timing out at once`,
  'benchmarks/precision.bench.ts',
  [
    `N executions started in one synchronous loop, attempts that never settle, each bounded to ${BOUND} ms. Lateness = when the caller's rejection handler runs minus (\`performance.now()\` read just before the call + ${BOUND} ms); negative = early.`,
    `Loads: idle, and busy (a \`setInterval\` in the same process doing ${BUSY_WORK_MS} ms of synchronous work every ${BUSY_EVERY_MS} ms).`,
    'Floor: `setTimeout(reject, 50, premadeError)`. By-hand race: `Promise.race([attempt, timer that rejects with new Error()])`. Signal rows: the attempt rejects with `signal.reason` when its signal aborts (asyncbackoff: `currentAttempt().signal`; by hand: `setTimeout(() => controller.abort(), 50)`). asyncbackoff rows: `new Backoff({ attemptTimeout: 50, maxTries: 1 })`, `new Backoff({ deadline: 50 })`. cockatiel: `timeout(50, TimeoutStrategy.Aggressive)`.',
    '"start loop ms": how long starting the N executions took (one synchronous loop). When it exceeds 50 ms the first executions are late by that much before any timer can run.',
    `Each row in a child process of its own; per (N, load) one discarded warm-up run, then ${RUNS} runs interleaved across the rows, a forced GC before each; figures are the medians over the runs of each run's statistic.`,
  ],
  { peers: peers.versions },
);

const script = fileURLToPath(import.meta.url);
const rowKeys = Object.keys(ROWS) as RowKey[];
const loads = ['idle', 'busy'] as const;
type Stats = { p50: number; p99: number; max: number; min: number; start: number };
const results: Record<string, Record<string, Stats & { runs: Stats[] }>> = {};
const stats = (sorted: Float64Array): Omit<Stats, 'start'> => ({
  p50: quantile(sorted, 0.5),
  p99: quantile(sorted, 0.99),
  max: sorted[sorted.length - 1]!,
  min: sorted[0]!,
});

const workers = new Map<RowKey, Worker>();
await Promise.all(
  rowKeys.map(async (row) => {
    workers.set(row, await startWorker(script, [`--row=${row}`]));
  }),
);
for (const n of SIZES)
  for (const load of loads) {
    const config = `N = ${n.toLocaleString('en-US')}, ${load}`;
    process.stderr.write(`precision: ${config}\n`);
    const pooled = new Map<RowKey, number[]>(rowKeys.map((r) => [r, []]));
    const perRun = new Map<RowKey, Stats[]>(rowKeys.map((r) => [r, []]));
    // Run 0 of every (row, N, load) warms up and is discarded.
    for (let r = 0; r <= RUNS; r++)
      for (const row of rowKeys) {
        const answer = JSON.parse(await workers.get(row)!.request(`${n} ${load}`)) as {
          start: number;
          late: number[];
        };
        if (r === 0) continue;
        const values = answer.late;
        const sorted = Float64Array.from(values).sort();
        perRun.get(row)!.push({ ...stats(sorted), start: answer.start });
        pooled.get(row)!.push(...values);
      }

    const byRow: Record<string, Stats & { runs: Stats[] }> = {};
    for (const row of rowKeys) {
      const runs = perRun.get(row)!;
      byRow[row] = {
        p50: median(runs.map((s) => s.p50)),
        p99: median(runs.map((s) => s.p99)),
        max: median(runs.map((s) => s.max)),
        min: median(runs.map((s) => s.min)),
        start: median(runs.map((s) => s.start)),
        runs,
      };
    }
    results[config] = byRow;
    const floor = byRow.floor!;
    report.table({
      title: `${config}: lateness in ms (median of ${RUNS} runs)`,
      columns: [
        'row',
        'p50',
        'p99',
        'max',
        'min',
        'p99 − floor p99',
        'p99 x race p99',
        'p99 x context floor p99',
        'start loop ms',
      ],
      rows: rowKeys.map((row) => {
        const s = byRow[row]!;
        return [
          ROWS[row],
          formatNumber(s.p50),
          formatNumber(s.p99),
          formatNumber(s.max),
          formatNumber(s.min),
          formatNumber(s.p99 - floor.p99),
          times(s.p99 / byRow.race!.p99),
          times(s.p99 / byRow.contextFloor!.p99),
          formatNumber(s.start),
        ];
      }),
    });
    report.chart(
      `precision-${n}-${load}`,
      `Lateness CDF, ${config}`,
      renderCdfChart({
        title: `Lateness of ${n.toLocaleString('en-US')} timeouts at once, ${load} loop (node ${process.version}, ${RUNS} runs pooled)`,
        xLabel:
          'lateness, ms (log scale; values at or below 0.01 ms, early ones included, drawn at 0.01)',
        floor: 0.01,
        series: rowKeys.map((row, i) => ({
          name: ROWS[row],
          color: PALETTE[i % PALETTE.length]!,
          sorted: Float64Array.from(pooled.get(row)!).sort(),
        })),
      }),
    );
  }

for (const w of workers.values()) w.stop();

const big = results[`N = ${SIZES[1]!.toLocaleString('en-US')}, idle`]!;
const small = results[`N = ${SIZES[0]!.toLocaleString('en-US')}, idle`]!;
const bigN = SIZES[1]!.toLocaleString('en-US');
for (const row of ['attemptTimeout', 'deadline'] as const) {
  const s = big[row]!;
  report.check(
    `N = ${bigN}, idle: ${ROWS[row]} p99 <= 5 ms and max <= 10 ms`,
    s.p99 <= 5 && s.max <= 10,
    `p99 ${formatNumber(s.p99)} ms, max ${formatNumber(s.max)} ms (floor: ${formatNumber(big.floor!.p99)} / ${formatNumber(big.floor!.max)})`,
  );
  report.check(
    `N = ${bigN}, idle: ${ROWS[row]} p99 <= 1/4 of the by-hand race's p99`,
    s.p99 <= big.race!.p99 / 4,
    `${formatNumber(s.p99)} ms vs race ${formatNumber(big.race!.p99)} ms (${times(s.p99 / big.race!.p99)})`,
  );
  report.check(
    `N = ${SIZES[0]!.toLocaleString('en-US')}, idle: ${ROWS[row]} p99 <= 2 ms`,
    small[row]!.p99 <= 2,
    `${formatNumber(small[row]!.p99)} ms (floor ${formatNumber(small.floor!.p99)} ms)`,
  );
}
report.check(
  `N = ${bigN}, idle: attempts listening to their signal p99 within 1.1x of the by-hand abort`,
  big.signal!.p99 <= 1.1 * big.signalByHand!.p99,
  `${formatNumber(big.signal!.p99)} ms vs ${formatNumber(big.signalByHand!.p99)} ms (${times(big.signal!.p99 / big.signalByHand!.p99)})`,
);
report.text(
  'With the busy neighbour there is no target: the tables put each row beside the floor (column "p99 − floor p99").',
);
report.text(
  'The context floor is what any bounded call that carries an attempt context pays: a promise, `AsyncLocalStorage.run`, an `AsyncResource` and a new `Error` per verdict, behind one FIFO timer. Where it misses a target too, that target is below what carrying the context costs on this Node and machine.',
);
for (const row of ['attemptTimeout', 'deadline'] as const)
  report.text(
    `N = ${bigN}, idle: ${ROWS[row]} p99 ${formatNumber(big[row]!.p99)} ms = ${times(big[row]!.p99 / big.contextFloor!.p99)} the context floor's ${formatNumber(big.contextFloor!.p99)} ms (plain setTimeout floor ${formatNumber(big.floor!.p99)} ms).`,
  );
report.text(
  `N = ${bigN}, idle: the listening attempts p99 ${formatNumber(big.signal!.p99)} ms = ${times(big.signal!.p99 / big.signalByHandAls!.p99)} the by-hand abort in a process using AsyncLocalStorage (${formatNumber(big.signalByHandAls!.p99)} ms).`,
);
report.set(
  'latenessMs',
  Object.fromEntries(
    Object.entries(results).map(([config, byRow]) => [
      config,
      Object.fromEntries(Object.entries(byRow).map(([row, s]) => [ROWS[row as RowKey], s])),
    ]),
  ),
);
report.set('runs', RUNS);
report.finish();
