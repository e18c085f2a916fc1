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
 *    configure: it takes the error out of the verdict, to show what the rest of it costs.
 *
 * (precision.bench.ts measures what a caller sees; this says where the time of the expiry goes.)
 *
 * Run: `npm run bench` (with the suite), or alone:
 *   node --import tsx benchmarks/verdicts.bench.ts [--smoke]
 * A report: exits 0 whatever the figures are.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  contextFloor,
  formatNumber,
  type Library,
  loadLibrary,
  median,
  option,
  Report,
  SMOKE,
  serveRequests,
  stacklessError,
  startWorker,
  TARGET,
  times,
  type Worker,
} from './support.js';

/** Long enough for the starts and a full collection to finish before the first verdict is due. */
const BOUND = 100;
const N = SMOKE ? 200 : 10_000;
const RUNS = SMOKE ? 1 : 11;

const ROWS = {
  floor: 'context floor: new stackless Error per verdict',
  floorShared: 'context floor: one pre-made error for all verdicts',
  attemptTimeout: 'asyncbackoff attemptTimeout (maxTries 1)',
  deadline: 'asyncbackoff deadline',
  attemptTimeoutShared: 'asyncbackoff attemptTimeout, one pre-made error (patched dist copy)',
} as const;
type RowKey = keyof typeof ROWS;

const root = fileURLToPath(new URL('../', import.meta.url));

/**
 * A copy of dist/index.js whose attempt-timeout verdicts all reject with one error. Throws if the
 * function it patches is no longer there (the bench must not silently measure the unpatched code).
 */
async function librarySharingOneError(): Promise<Library> {
  const source = readFileSync(join(root, 'dist/index.js'), 'utf8');
  const pattern = /\nfunction attemptTimedOut\(timeout, attempt\) \{\n[\s\S]*?\n\}\n/;
  if (!pattern.test(source))
    throw new Error('dist/index.js has no `function attemptTimedOut(timeout, attempt)` to patch');
  const patched = source.replace(
    pattern,
    // Built on the first call only: no error is constructed (and no stack limit set) per verdict.
    '\nvar sharedTimeoutError;\nfunction attemptTimedOut(timeout, attempt) {\n' +
      '  if (sharedTimeoutError === undefined) {\n' +
      '    const limit = Error.stackTraceLimit;\n    Error.stackTraceLimit = 0;\n' +
      '    sharedTimeoutError = new AttemptTimeoutError(timeout, attempt);\n' +
      '    Error.stackTraceLimit = limit;\n  }\n  return sharedTimeoutError;\n}\n',
  );
  const file = join(mkdtempSync(join(os.tmpdir(), 'asyncbackoff-verdicts-')), 'index.mjs');
  writeFileSync(file, patched);
  return (await import(pathToFileURL(file).href)) as Library;
}

async function makeStart(row: RowKey): Promise<() => Promise<unknown>> {
  const never = () => new Promise<never>(() => {});
  switch (row) {
    case 'floor':
      return contextFloor(never, BOUND);
    case 'floorShared': {
      const shared = stacklessError();
      return contextFloor(never, BOUND, () => shared);
    }
    case 'attemptTimeout': {
      const backoff = new (await loadLibrary()).Backoff({ attemptTimeout: BOUND, maxTries: 1 });
      return () => backoff.execute(never);
    }
    case 'deadline': {
      const backoff = new (await loadLibrary()).Backoff({ deadline: BOUND });
      return () => backoff.execute(never);
    }
    case 'attemptTimeoutShared': {
      const { Backoff } = await librarySharingOneError();
      const backoff = new Backoff({ attemptTimeout: BOUND, maxTries: 1 });
      return () => backoff.execute(never);
    }
  }
}

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
  // The patched copy is of the build; measuring src/ leaves that row out.
  (row) => row !== 'attemptTimeoutShared' || TARGET === 'dist',
);
const report = new Report(
  'verdicts',
  `What a verdict costs: ${N.toLocaleString('en-US')} verdicts due at once`,
  'benchmarks/verdicts.bench.ts',
  [
    `${N.toLocaleString('en-US')} executions started in one loop, attempts that never settle, each bounded to ${BOUND} ms; a forced GC once they have started; then the process blocks until every bound has passed, so that all verdicts are due when the timer runs. Measured: from then until the caller's last rejection handler ran.`,
    'Context floor: one FIFO timer, `AsyncLocalStorage.run`, an `AsyncResource` per call and, per verdict, a new stackless `Error` (or one pre-made error). asyncbackoff: `new Backoff({ attemptTimeout, maxTries: 1 })`, `new Backoff({ deadline })`, and the first with every verdict rejecting with one pre-made error (a patched copy of dist/index.js: the error taken out of the verdict).',
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
report.set('msForAll', Object.fromEntries(rowKeys.map((row) => [ROWS[row], ms[row]])));
report.set('runsMs', Object.fromEntries(rowKeys.map((row) => [ROWS[row], runs.get(row)!])));
report.set('n', N);
report.finish();
