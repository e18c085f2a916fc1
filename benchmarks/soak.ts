/**
 * Soak test: a million calls through ONE Backoff instance bound to long-lived signals, checking
 * that nothing accumulates (heap, abort listeners, timers) and that no warning is emitted.
 *
 * Run: `npm run bench` (with the suite), or alone (--expose-gc is required):
 *   node --expose-gc --import tsx benchmarks/soak.ts [--smoke] [--calls 1000000] [--concurrency 1000]
 *   npx -y node@24 --expose-gc --import tsx benchmarks/soak.ts
 * `--smoke`: 20,000 calls in chunks of 100, a probe of 2,000 calls.
 *
 * Phase 1 (the verdict). The instance has `attemptTimeout: 1000`, `deadline: 5000` and the instance
 * option `signal: shutdown`; every call goes through `instance.withSignal(request).execute(...)`
 * (another long-lived signal), every 10th through `instance.execute(...)` directly. Calls alternate
 * between a concurrent chunk (`concurrency` calls in flight, Promise.all) and a sequential chunk
 * of the same size; after each chunk the loop yields one event-loop turn (setImmediate), as a
 * server doing I/O would. 1% of calls fail once and are retried (pause 0); 1% read
 * `currentAttempt().signal` and listen on it, as fetch would.
 * Every tenth of the calls (100k): heapUsed after global.gc(), abort listeners on both signals, active 'Timeout'
 * resources. Verdict: heap growth from the second sample (200k) to the last sample < 5 MB; abort listeners
 * <= 2 per signal and timers <= 2 at any time (also checked mid-chunk); 0 timers and 0 listeners
 * once an event-loop turn passed after the last call; no process warning (e.g.
 * MaxListenersExceededWarning); every call resolved with 1; statistics add up.
 *
 * Phase 2 (a probe, reported, part of the verdict only for "released afterwards"): one call hangs on
 * its first attempt while fast calls go through the same instance (up to 100k, for at most 600 ms);
 * how much heap do the fast calls keep alive until the hanging attempt times out (1 s), and is it
 * all released afterwards?
 *
 * Exits 1 if the verdict fails.
 */
import { getEventListeners } from 'node:events';
import { loadLibrary, numberOption, Report, SMOKE } from './support.js';

const CALLS = numberOption('calls', SMOKE ? 20_000 : 1_000_000);
const CONCURRENCY = numberOption('concurrency', SMOKE ? 100 : 1000);
const PROBE_CALLS = numberOption('probe-calls', SMOKE ? 2_000 : 100_000);
const SAMPLE_EVERY = Math.max(1, Math.round(CALLS / 10));
const HEAP_BOUND_MB = 5;

const gcFn = globalThis.gc;
if (typeof gcFn !== 'function') {
  console.error(
    'soak: run node with --expose-gc (node --expose-gc --import tsx benchmarks/soak.ts)',
  );
  process.exit(2);
}
const gc = gcFn;
const { Backoff, currentAttempt } = await loadLibrary();
const report = new Report(
  'memory',
  `Memory: ${CALLS.toLocaleString('en-US')} calls through one instance`,
  'benchmarks/soak.ts',
  [
    'ONE `new Backoff({ attemptTimeout: 1000, deadline: 5000, exceptions: [Flaky], maxTries: 3, signal: shutdown })`; every call through `instance.withSignal(request).execute(fn)` (every 10th through `instance.execute(fn)`), both signals long-lived.',
    `Chunks of ${CONCURRENCY} calls, alternately concurrent (Promise.all) and sequential, one event-loop turn (setImmediate) after each; 1% of the calls fail once and are retried (pause 0), 1% listen on \`currentAttempt().signal\`.`,
    `Every ${SAMPLE_EVERY.toLocaleString('en-US')} calls: heapUsed after two forced GCs, abort listeners on both signals, active Timeout resources. Probe: one call hangs on its first attempt (1 s attempt timeout) while up to ${PROBE_CALLS.toLocaleString('en-US')} fast calls go through the same instance.`,
  ],
  {
    execArgv: '--expose-gc',
    checksHeading: 'Verdict (hygiene, not timing: the process exits 1 if a check fails):',
  },
);
function heapMB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

const warnings: string[] = [];
process.on('warning', (warning) => warnings.push(`${warning.name}: ${warning.message}`));

class Flaky extends Error {}

const shutdown = new AbortController();
const request = new AbortController();
const instance = new Backoff({
  attemptTimeout: 1000,
  deadline: 5000,
  exceptions: [Flaky],
  maxTries: 3,
  signal: shutdown.signal,
});

const ok = async () => 1;
/** Fails its first attempt (retried with pause 0), then succeeds. */
const failsOnce = async () => {
  if (currentAttempt()!.attempt === 1) throw new Flaky('first attempt fails');
  return 1;
};
/** Listens on the attempt's signal like fetch would, and removes the listener when done. */
const usesSignal = async () => {
  const s = currentAttempt()!.signal;
  const onAbort = () => {};
  s.addEventListener('abort', onAbort, { once: true });
  await null;
  s.removeEventListener('abort', onAbort);
  return 1;
};
/** Never settles on its first attempt: the attempt timeout fires, the retry succeeds. */
const hangsOnce = (): Promise<number> =>
  currentAttempt()!.attempt === 1 ? new Promise<number>(() => {}) : Promise.resolve(1);

let calls = 0;
let wrong = 0;
function call(i: number): Promise<number> {
  const fn = i % 100 === 7 ? failsOnce : i % 100 === 53 ? usesSignal : ok;
  const target = i % 10 === 0 ? instance : instance.withSignal(request.signal);
  return target.execute(fn);
}

const listeners = (s: AbortSignal) => getEventListeners(s, 'abort').length;
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

interface Sample {
  calls: number;
  heapMB: number;
  shutdownListeners: number;
  requestListeners: number;
  timers: number;
}
const samples: Sample[] = [];
let maxTimers = 0;
let maxListeners = 0;
function observe(): void {
  maxTimers = Math.max(maxTimers, timers());
  maxListeners = Math.max(maxListeners, listeners(shutdown.signal), listeners(request.signal));
}

async function runChunks(total: number, onChunk?: () => void, until = Infinity): Promise<void> {
  let concurrent = true;
  const end = calls + total;
  while (calls < end && performance.now() < until) {
    const size = Math.min(CONCURRENCY, end - calls);
    if (concurrent) {
      const batch: Promise<number>[] = new Array(size);
      for (let j = 0; j < size; j++) batch[j] = call(calls + j);
      observe(); // mid-flight: `size` calls are live
      for (const v of await Promise.all(batch)) if (v !== 1) wrong++;
    } else {
      for (let j = 0; j < size; j++) {
        const p = call(calls + j);
        if (j === size >> 1) observe();
        if ((await p) !== 1) wrong++;
      }
    }
    concurrent = !concurrent;
    calls += size;
    onChunk?.();
    await turn();
  }
}

// --- phase 1 ------------------------------------------------------------------------------------

const t0 = process.hrtime.bigint();
let nextSample = SAMPLE_EVERY;
await runChunks(CALLS, () => {
  if (calls < nextSample) return;
  nextSample += SAMPLE_EVERY;
  // Resources as they are right after a chunk settled (before the release turn), then the heap.
  const t = timers();
  const sl = listeners(shutdown.signal);
  const rl = listeners(request.signal);
  maxTimers = Math.max(maxTimers, t);
  maxListeners = Math.max(maxListeners, sl, rl);
  samples.push({ calls, heapMB: heapMB(), shutdownListeners: sl, requestListeners: rl, timers: t });
});
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
await turn();
const timersAfter = timers();
const listenersAfter = listeners(shutdown.signal) + listeners(request.signal);
const phase1Calls = calls;

// --- phase 2: a hanging call outstanding ----------------------------------------------------------

const probeBefore = heapMB();
let hangSettled = false;
const hanging = instance
  .withSignal(request.signal)
  .execute(hangsOnce)
  .then(
    (v) => v,
    (error: unknown) => error,
  )
  .finally(() => {
    hangSettled = true;
  });
const probeStart = performance.now();
const probeCallsBefore = calls;
// Stop well before the hung attempt's 1 s timeout, so that the measurement sees it outstanding.
await runChunks(PROBE_CALLS, undefined, probeStart + 600);
const probeMs = performance.now() - probeStart;
const probeCalls = calls - probeCallsBefore;
const probeDuring = heapMB();
const probeValid = !hangSettled;
const hangResult = await hanging;
await turn();
const probeAfter = heapMB();
const timersAfterProbe = timers();
const listenersAfterProbe = listeners(shutdown.signal) + listeners(request.signal);

// --- report -------------------------------------------------------------------------------------

report.text(`${phase1Calls.toLocaleString('en-US')} calls in ${seconds.toFixed(1)} s.`);
report.table({
  columns: ['calls', 'heapUsed MB', 'listeners shutdown', 'listeners request', 'timers'],
  rows: samples.map((s) => [
    s.calls.toLocaleString('en-US'),
    s.heapMB.toFixed(2),
    String(s.shutdownListeners),
    String(s.requestListeners),
    String(s.timers),
  ]),
});

const retainedMB = probeDuring - probeBefore;
const bytesPerCall = (retainedMB * 2 ** 20) / probeCalls;
report.text(
  `Probe: ${probeCalls} fast calls in ${probeMs.toFixed(0)} ms while one call hung on its first attempt: ` +
    `heapUsed ${probeBefore.toFixed(2)} -> ${probeDuring.toFixed(2)} MB (+${retainedMB.toFixed(2)} MB, ` +
    `~${bytesPerCall.toFixed(0)} B per fast call kept alive) -> ${probeAfter.toFixed(2)} MB after the hung ` +
    `attempt timed out and its retry resolved (${String(hangResult)})` +
    (probeValid ? '' : ' [INVALID: the hung call settled before the measurement]'),
);

const stats = instance.statistics;
const totalCalls = calls + 1;
const from = samples[1] ?? samples[0]; // the first sample still holds the warm-up's garbage
const last = samples[samples.length - 1];
const growth = from !== undefined && last !== undefined ? last.heapMB - from.heapMB : 0;
const checks: [name: string, detail: string, pass: boolean][] = [
  [
    `heap growth ${from?.calls ?? '-'} -> ${last?.calls ?? '-'} calls`,
    `${growth.toFixed(2)} MB (< ${HEAP_BOUND_MB} MB)`,
    growth < HEAP_BOUND_MB,
  ],
  ['max abort listeners per signal during the run', `${maxListeners} (<= 2)`, maxListeners <= 2],
  ['max active timers during the run', `${maxTimers} (<= 2)`, maxTimers <= 2],
  ['active timers one turn after the last call', `${timersAfter} (0)`, timersAfter === 0],
  ['abort listeners one turn after the last call', `${listenersAfter} (0)`, listenersAfter === 0],
  [
    'probe: heap released after the hung call finished',
    `${(probeAfter - probeBefore).toFixed(2)} MB over the pre-probe heap (< 1 MB)`,
    probeAfter - probeBefore < 1,
  ],
  [
    'probe: timers/listeners afterwards',
    `${timersAfterProbe}/${listenersAfterProbe} (0/0)`,
    timersAfterProbe === 0 && listenersAfterProbe === 0,
  ],
  [
    'process warnings',
    `${warnings.length}${warnings.length ? ` (${warnings[0]})` : ''} (0)`,
    warnings.length === 0,
  ],
  ['wrong results', `${wrong + (hangResult === 1 ? 0 : 1)} (0)`, wrong === 0 && hangResult === 1],
  [
    'statistics',
    `successes ${stats.successes}, retries ${stats.retries}, giveUps ${stats.giveUps}, timeouts ${stats.timeouts} (successes = ${totalCalls}, giveUps = 0, timeouts = 1)`,
    stats.successes === totalCalls && stats.giveUps === 0 && stats.timeouts === 1,
  ],
];
let pass = true;
for (const [name, detail, good] of checks) {
  pass &&= good;
  report.check(name, good, detail);
}
report.set('samples', samples);
report.set('probe', {
  calls: probeCalls,
  ms: probeMs,
  before: probeBefore,
  during: probeDuring,
  after: probeAfter,
  valid: probeValid,
});
report.set('heapGrowthMB', growth);
report.set('callsPerSecond', phase1Calls / seconds);
report.text(
  `verdict: ${pass ? 'PASS' : 'FAIL'} (a leak is a bug, not a timing: the process exits 1 if the verdict fails)`,
);
report.finish();
process.exitCode = pass ? 0 : 1;
