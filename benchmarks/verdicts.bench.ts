/**
 * What one verdict costs, taken apart: N executions whose bound has passed when their timer runs,
 * so that every verdict comes due at once and nothing else runs between them. Measured: from the
 * moment the timer can run until the caller's last rejection handler ran (ms for N verdicts), with
 * no collection in the window (a forced GC after the starts, before the timer is due).
 *
 * Rows:
 *  - the context floor (see support.ts): one FIFO timer, `AsyncLocalStorage.run`, an
 *    `AsyncResource`, and a new stackless `Error` per verdict;
 *  - the same with one pre-made error for every verdict;
 *  - asyncbackoff `new Backoff({ attemptTimeout: B, maxTries: 1 })` and `new Backoff({ deadline: B })`;
 *  - asyncbackoff `attemptTimeout`, with its verdicts sharing one pre-made error: a patched copy of
 *    dist/index.js (`attemptTimedOut` returns the same error each time). Not something a user can
 *    configure: it takes the error out of the verdict, to show what the rest of it costs;
 *  - the attempt-timeout verdict cut down to its reject (patched), with a new error per verdict and
 *    with one pre-made error: what the engine's own path adds, and what its error class costs
 *    beside the floor's plain `Error`, in the same expiry.
 *
 * (precision.bench.ts measures what a caller sees; this says where the time of the expiry goes.)
 *
 * Run: `npm run bench` (with the suite), or alone:
 *   node --import tsx benchmarks/verdicts.bench.ts [--smoke]
 * A report: exits 0 whatever the figures are.
 */
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  formatNumber,
  median,
  option,
  Report,
  SMOKE,
  serveRequests,
  startWorker,
  TARGET,
  times,
  type Worker,
} from './support.js';
import { BOUND, makeStart, PATCHED, ROWS, type RowKey } from './verdict-rows.js';

const N = SMOKE ? 200 : 10_000;
const RUNS = SMOKE ? 1 : 11;

// --- child mode: one row --------------------------------------------------------------------------

const CHILD = option('row') as RowKey | undefined;
if (CHILD !== undefined) {
  if (!(CHILD in ROWS)) throw new Error(`unknown --row=${CHILD}`);
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const start = await makeStart(CHILD);
  const asleep = new Int32Array(new SharedArrayBuffer(4));
  // Request: "<n>"; the answer: ms from when the first verdict could run to the last handler.
  await serveRequests(async (line) => {
    const n = Number(line);
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
    let left = n;
    let last = 0;
    const startedAt = performance.now();
    const settled = new Promise<void>((resolve, reject) => {
      for (let i = 0; i < n; i++)
        start().then(
          () => reject(new Error(`${ROWS[CHILD]}: an execution fulfilled`)),
          () => {
            if (--left === 0) {
              last = performance.now();
              resolve();
            }
          },
        );
    });
    // The starts are done: collect now, so no collection falls among the verdicts.
    await new Promise((resolve) => setTimeout(resolve, BOUND * 0.6));
    gc();
    // Block (without spinning) until every bound has passed: all verdicts are due together.
    const wait = startedAt + BOUND * 1.4 - performance.now();
    if (wait > 0) Atomics.wait(asleep, 0, 0, wait);
    const dueAt = performance.now();
    await settled;
    return JSON.stringify({ ms: last - dueAt });
  });
}

// --- main mode ------------------------------------------------------------------------------------

const rowKeys = (Object.keys(ROWS) as RowKey[]).filter(
  // The patched copies are of the build; measuring src/ leaves those rows out.
  (row) => !PATCHED.includes(row) || TARGET === 'dist',
);
const report = new Report(
  'verdicts',
  `What a verdict costs: ${N.toLocaleString('en-US')} verdicts due at once`,
  'benchmarks/verdicts.bench.ts',
  [
    `${N.toLocaleString('en-US')} executions started in one loop, attempts that never settle, each bounded to ${BOUND} ms; a forced GC once they have started; then the process blocks until every bound has passed, so that all verdicts are due when the timer runs. Measured: from then until the caller's last rejection handler ran.`,
    'Context floor: one FIFO timer, `AsyncLocalStorage.run`, an `AsyncResource` per call and, per verdict, a new stackless `Error` (or one pre-made error). asyncbackoff: `new Backoff({ attemptTimeout, maxTries: 1 })`, `new Backoff({ deadline })`, the first with every verdict rejecting with one pre-made error (a patched copy of dist/index.js: the error taken out of the verdict), and the first with its verdict cut to what the caller needs (the attempt marked ended, the execution off the deadline queue, the promise rejected; no scope, statistics, release or abort), with a new error and with one pre-made error.',
    `Each row in a child process of its own; one discarded warm-up run, then ${RUNS} runs interleaved across the rows; the median.`,
  ],
);

const script = fileURLToPath(import.meta.url);
const workers = new Map<RowKey, Worker>();
await Promise.all(
  rowKeys.map(async (row) => {
    workers.set(row, await startWorker(script, [`--row=${row}`]));
  }),
);
const runs = new Map<RowKey, number[]>(rowKeys.map((row) => [row, []]));
for (let r = 0; r <= RUNS; r++)
  for (const row of rowKeys) {
    const { ms } = JSON.parse(await workers.get(row)!.request(String(N))) as { ms: number };
    if (r > 0) runs.get(row)!.push(ms);
  }
for (const worker of workers.values()) worker.stop();

const ms = Object.fromEntries(rowKeys.map((row) => [row, median(runs.get(row)!)])) as Record<
  RowKey,
  number
>;
const perVerdict = (value: number) => formatNumber((value * 1000) / N);
report.table({
  title: `${N.toLocaleString('en-US')} verdicts due at once (median of ${RUNS} runs)`,
  columns: ['row', 'ms for all', 'µs per verdict', 'x context floor'],
  rows: rowKeys.map((row) => [
    ROWS[row],
    formatNumber(ms[row]),
    perVerdict(ms[row]),
    times(ms[row] / ms.floor),
  ]),
});
report.text(
  `The error per verdict: ${perVerdict(ms.floor - ms.floorShared)} µs in the context floor (new Error vs one pre-made).`,
);
if (ms.attemptTimeoutShared !== undefined)
  report.text(
    `The error per verdict in asyncbackoff: ${perVerdict(ms.attemptTimeout - ms.attemptTimeoutShared)} µs (attemptTimeout vs the same sharing one error).`,
    `The rest of asyncbackoff's verdict: ${perVerdict(ms.attemptTimeoutShared)} µs, ${times(ms.attemptTimeoutShared / ms.floorShared)} the context floor's ${perVerdict(ms.floorShared)} µs (both with one pre-made error).`,
  );
if (ms.bareVerdict !== undefined && ms.bareVerdictShared !== undefined)
  report.text(
    `Cut to its reject: ${perVerdict(ms.bareVerdictShared)} µs per verdict with one pre-made error (${times(ms.bareVerdictShared / ms.floorShared)} the floor's), ${perVerdict(ms.bareVerdict)} µs with a new error per verdict (${times(ms.bareVerdict / ms.floor)} the floor's). The engine's path on top of that: ${perVerdict(ms.attemptTimeout - ms.bareVerdict)} µs per verdict. The error alone, in the cut verdict: ${perVerdict(ms.bareVerdict - ms.bareVerdictShared)} µs (asyncbackoff's AttemptTimeoutError) against ${perVerdict(ms.floor - ms.floorShared)} µs (the floor's stackless Error).`,
  );
report.set('msForAll', Object.fromEntries(rowKeys.map((row) => [ROWS[row], ms[row]])));
report.set('runsMs', Object.fromEntries(rowKeys.map((row) => [ROWS[row], runs.get(row)!])));
report.set('n', N);
report.finish();
