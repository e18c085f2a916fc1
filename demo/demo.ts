/**
 * asyncbackoff demo: a flaky "database" (an in-process HTTP server), a few thousand calls through
 * ONE shared `Backoff`, then the same calls without it, side by side.
 *
 *   npm run demo                                   # 3000 calls, 10-20 s
 *   npm run demo -- --calls 10000 --seed 7         # --help for all options
 *   npm run demo -- --smoke    (or DEMO_SMOKE=1)   # 300 calls; exits 1 if the results look wrong
 *
 * Reading order: the policy (`new Backoff`), the attempt function (`fetchRow`), the two batches in
 * `main`. The server is in ./flaky-server.ts, the worker pool and progress line in ./batch.ts.
 */
import { parseArgs } from 'node:util';
import {
  AttemptTimeoutError,
  Backoff,
  type BackoffStatistics,
  currentAttempt,
  DeadlineExceededError,
} from '../src/index.js';
import { type BatchResult, percentile, runBatch } from './batch.js';
import { type FaultProfile, type ServerCounters, startFlakyServer } from './flaky-server.js';

// ---------------------------------------------------------------------------------------------
// The flaky dependency and the policy
// ---------------------------------------------------------------------------------------------

/** 85 % fast answers; the rest fail in the three ways a real dependency fails. */
const FAULTS: FaultProfile = {
  error: 0.08, // fast 503
  slow: 0.05, // 200 after 300-800 ms
  hang: 0.02, // no answer at all
  slowMs: [300, 800],
  jitterMs: [1, 5],
};

const ATTEMPT_TIMEOUT_MS = 100; // one attempt; a healthy answer takes a few ms
const DEADLINE_MS = 1000; // the whole call, every attempt and pause included
const PAUSE_MS = 15; // between attempts
const MAX_TRIES = 5; // attempts in total, the first one included
const PLAIN_SAFETY_TIMEOUT_MS = 2000; // the no-retry run still needs *some* bound on hung requests

/** What the server's error responses become on the client: the error class we retry. */
class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(readonly status: number) {
    super(`service answered HTTP ${status}`);
  }
}

/** undici (Node's fetch) reports network failures as `TypeError: fetch failed`, with a `cause`. */
function isNetworkError(error: unknown): boolean {
  return error instanceof TypeError && error.message === 'fetch failed';
}

/**
 * ONE instance for the whole batch: it is meant to be shared by every call to the same dependency.
 * Its timers are shared too (one armed timer serves all in-flight attempts), and its
 * `statistics` add up every call made through it.
 */
function createBackoff(): Backoff {
  return new Backoff({
    // An attempt still running after 100 ms is abandoned: its signal (currentAttempt().signal)
    // aborts with an AttemptTimeoutError, so the fetch below is cancelled, and the call moves on
    // to the next attempt. Attempt timeouts are always retried.
    attemptTimeout: ATTEMPT_TIMEOUT_MS,
    // A hard bound on the whole call. With these numbers maxTries runs out first
    // (5 x 100 ms + 4 x 15 ms = 560 ms); the deadline is what still holds if someone raises
    // maxTries or the pause. No attempt starts, and no pause is slept, past it.
    deadline: DEADLINE_MS,
    pause: PAUSE_MS,
    // Which thrown errors are worth another attempt; anything else rejects at once. TypeError is
    // what fetch throws on network errors (connection refused/reset)...
    exceptions: [ServiceError, TypeError],
    // ...but a TypeError may also be a bug in our own code: give up at once on those.
    giveup: (error) => error instanceof TypeError && !isNetworkError(error),
    maxTries: MAX_TRIES,
  });
}

interface Row {
  id: number;
  attempt: number;
}

/** One HTTP request: a row, or a thrown ServiceError on 5xx. */
async function getRow(
  baseUrl: string,
  id: number,
  attempt: number,
  signal: AbortSignal,
): Promise<Row> {
  const response = await fetch(`${baseUrl}/rows/${id}?attempt=${attempt}`, { signal });
  // Read the body even on errors: an unread body keeps its keep-alive connection busy.
  const body = await response.text();
  if (response.status >= 500) throw new ServiceError(response.status);
  if (!response.ok) throw new Error(`unexpected HTTP ${response.status}`); // not retried
  return JSON.parse(body) as Row;
}

/**
 * The attempt function: what you would write without any retry logic, plus one line.
 * `currentAttempt()` is defined inside an attempt (after awaits too: it lives in
 * AsyncLocalStorage). Its `signal` aborts when the attempt times out, when the deadline passes or
 * when the call is cancelled: hand it to whatever the attempt starts (fetch, a db driver, a child
 * process) so abandoned work really stops.
 */
async function fetchRow(baseUrl: string, id: number): Promise<Row> {
  const { signal, attempt } = currentAttempt()!;
  return getRow(baseUrl, id, attempt, signal);
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

interface Options {
  calls: number;
  concurrency: number;
  seed: number;
  smoke: boolean;
}

const USAGE = `usage: npm run demo -- [--calls N] [--concurrency N] [--seed N] [--smoke]
  --calls N        calls per batch (default 3000; 300 with --smoke)
  --concurrency N  calls in flight at once (default 20)
  --seed N         seed of the fault injection (default 42)
  --smoke          small batch, exit 1 if the results are implausible (also: DEMO_SMOKE=1)`;

/** A command-line mistake: reported as a message and the usage, without a stack trace. */
class UsageError extends Error {}

function parseOptions(): Options | undefined {
  const parse = () =>
    parseArgs({
      options: {
        calls: { type: 'string' },
        concurrency: { type: 'string' },
        seed: { type: 'string' },
        smoke: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse().values;
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  const smoke = values.smoke || !['', '0', 'false'].includes(process.env.DEMO_SMOKE ?? '');
  const int = (name: string, value: string | undefined, fallback: number, min: number) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${name}: expected an integer >= ${min}, got ${value}\n${USAGE}`);
    return n;
  };
  return {
    calls: int('calls', values.calls, smoke ? 300 : 3000, 1),
    concurrency: int('concurrency', values.concurrency, 20, 1),
    seed: int('seed', values.seed, 42, 0),
    smoke,
  };
}

async function main(): Promise<number> {
  const options = parseOptions();
  if (options === undefined) return 0;
  const server = await startFlakyServer(options.seed, FAULTS);
  try {
    const pct = (p: number) => `${Math.round(p * 100)} %`;
    const ok = 1 - FAULTS.error - FAULTS.slow - FAULTS.hang;
    console.log(
      [
        `Flaky service  ${server.url}, seed ${options.seed}: ${pct(ok)} answer in ` +
          `${FAULTS.jitterMs.join('-')} ms, ${pct(FAULTS.error)} HTTP 503,`,
        `               ${pct(FAULTS.slow)} slow (${FAULTS.slowMs.join('-')} ms), ` +
          `${pct(FAULTS.hang)} hang (no answer)`,
        `Batch          ${options.calls} calls, ${options.concurrency} in flight, ` +
          'first with asyncbackoff, then with a plain fetch',
        `Backoff        attemptTimeout ${ATTEMPT_TIMEOUT_MS} ms, deadline ${DEADLINE_MS} ms, ` +
          `pause ${PAUSE_MS} ms, maxTries ${MAX_TRIES},`,
        '               exceptions [ServiceError, TypeError (network errors only)]\n',
      ].join('\n'),
    );

    // 0. Warm up, as a service does before taking traffic: the first fetch() loads undici and the
    //    JIT has not optimised anything yet, so the first few hundred requests are many times
    //    slower than the rest. Left in, that start-up stall would show up as attempt timeouts
    //    (and a burst of retries: a taste of how retries amplify an overload).
    await warmUp(server.url, options.concurrency);
    await server.drain();

    // 1. Through asyncbackoff. `wrap` returns a function with fetchRow's signature whose calls
    //    run under the policy; `backoff.execute(fetchRow, url, id)` would do the same per call.
    //    (In a request handler, `backoff.withSignal(signal).execute(...)` also stops the call,
    //    mid-attempt or mid-pause, when `signal` aborts: the client left, the service shuts down.)
    const backoff = createBackoff();
    const fetchRowWithRetries = backoff.wrap(fetchRow);
    const withBackoff = await runBatch({
      label: 'asyncbackoff',
      calls: options.calls,
      concurrency: options.concurrency,
      call: (id) => fetchRowWithRetries(server.url, id),
      classify,
      // `statistics` is a cheap snapshot: fine to read 10 times a second.
      live: () => backoff.statistics,
    });
    const serverWithBackoff = await server.drain();

    // 2. The same calls, one plain fetch each: no retry, no attempt timeout. Only a 2 s safety
    //    timeout (AbortSignal.timeout), or the hung requests would keep this batch running forever.
    let plainStarted = 0;
    let plainTimeouts = 0;
    const plain = await runBatch({
      label: 'plain fetch',
      calls: options.calls,
      concurrency: options.concurrency,
      call: async (id) => {
        plainStarted++;
        try {
          return await getRow(server.url, id, 1, AbortSignal.timeout(PLAIN_SAFETY_TIMEOUT_MS));
        } catch (error) {
          if (classify(error) === SAFETY_TIMEOUT) plainTimeouts++;
          throw error;
        }
      },
      classify,
      live: () => ({ attempts: plainStarted, timeouts: plainTimeouts }),
    });
    const serverPlain = await server.drain();

    const stats = backoff.statistics;
    printSummary(withBackoff, stats, serverWithBackoff, plain, plainTimeouts, serverPlain);
    printStatistics(stats);
    if (!options.smoke) return 0;
    return smokeChecks(withBackoff, stats, serverWithBackoff, plain, serverPlain);
  } finally {
    await server.close();
  }
}

/**
 * Calls outside both batches, through a throwaway Backoff with the same policy so that every code
 * path (retries, aborts, reconnections) gets compiled. The server's counters are reset afterwards.
 */
async function warmUp(baseUrl: string, concurrency: number): Promise<void> {
  const calls = Math.max(500, concurrency * 10);
  const fetchRowWithRetries = createBackoff().wrap(fetchRow);
  let next = 0;
  const worker = async () => {
    // ids past any batch; failures do not matter here
    while (next < calls) await fetchRowWithRetries(baseUrl, 1e9 + next++).catch(() => {});
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

const SAFETY_TIMEOUT = `safety timeout (${PLAIN_SAFETY_TIMEOUT_MS / 1000} s)`;

/** Names the final error of a failed call. The library's errors are told apart with instanceof. */
function classify(error: unknown): string {
  if (error instanceof ServiceError) return `HTTP ${error.status}`;
  // The last attempt timed out (and no retry was left): execute() rejects with that very error.
  if (error instanceof AttemptTimeoutError) return `attempt timeout (${error.timeout} ms)`;
  // The deadline passed before any attempt failed.
  if (error instanceof DeadlineExceededError) return 'deadline exceeded';
  // AbortSignal.timeout() aborts fetch with a DOMException named TimeoutError.
  if (error instanceof Error && error.name === 'TimeoutError') return SAFETY_TIMEOUT;
  if (isNetworkError(error)) return 'network error';
  return error instanceof Error ? error.name : String(error);
}

/** Word-wraps prose to 96 columns, indented. */
function paragraph(text: string, indent = 2): string {
  const lines: string[] = [];
  let line = '';
  // "100 ms", "16.00 %": never split a number from its unit
  for (const word of text.replace(/(\d) (ms|%|s\b)/g, '$1\u0000$2').split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > 96) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.map((l) => ' '.repeat(indent) + l.replaceAll('\u0000', ' ')).join('\n');
}

const ms = (value: number) => (Number.isNaN(value) ? '-' : `${value.toFixed(1)} ms`);
const rate = (part: number, whole: number) =>
  whole === 0 ? '-' : `${((part * 100) / whole).toFixed(2)} %`;

/** Prints rows of cells, aligned in columns: numbers right-aligned, the `left` columns left-aligned. */
function printTable(rows: readonly (readonly string[])[], left: readonly number[] = [0]): void {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  for (const row of rows) {
    const cells = row.map((cell, i) =>
      left.includes(i) ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!),
    );
    console.log(`  ${cells.join('   ')}`.trimEnd());
  }
}

function printSummary(
  backoff: BatchResult,
  stats: BackoffStatistics,
  serverBackoff: ServerCounters,
  plain: BatchResult,
  plainTimeouts: number,
  serverPlain: ServerCounters,
): void {
  const failed = (r: BatchResult) => r.calls - r.succeeded;
  const kinds = [...new Set([...backoff.failures.keys(), ...plain.failures.keys()])].sort();
  const row = (label: string, a: string | number, b: string | number) => [
    label,
    String(a),
    String(b),
  ];
  const latency = (p: number) =>
    row(`latency p${p}`, ms(percentile(backoff.latencies, p)), ms(percentile(plain.latencies, p)));
  const throughput = (r: BatchResult) => `${Math.round((r.calls * 1000) / r.wallMs)} calls/s`;

  console.log('\nSummary\n');
  printTable([
    ['', 'asyncbackoff', 'plain fetch'],
    ['', '------------', '-----------'],
    row('calls', backoff.calls, plain.calls),
    row(
      'succeeded',
      `${backoff.succeeded} (${rate(backoff.succeeded, backoff.calls)})`,
      `${plain.succeeded} (${rate(plain.succeeded, plain.calls)})`,
    ),
    row('failed', failed(backoff), failed(plain)),
    ...kinds.map((kind) =>
      row(`  ${kind}`, backoff.failures.get(kind) ?? 0, plain.failures.get(kind) ?? 0),
    ),
    row('attempts', stats.attempts, plain.calls),
    row('retries', stats.retries, 0),
    row('timeouts (1)', stats.timeouts, plainTimeouts),
    latency(50),
    latency(99),
    row(
      'latency max',
      ms(backoff.latencies.at(-1) ?? Number.NaN),
      ms(plain.latencies.at(-1) ?? Number.NaN),
    ),
    row(
      'wall time',
      `${(backoff.wallMs / 1000).toFixed(2)} s`,
      `${(plain.wallMs / 1000).toFixed(2)} s`,
    ),
    row('throughput', throughput(backoff), throughput(plain)),
    row(
      'event-loop delay p99/max (4)',
      `${backoff.loopDelayMs.p99.toFixed(0)} / ${backoff.loopDelayMs.max.toFixed(0)} ms`,
      `${plain.loopDelayMs.p99.toFixed(0)} / ${plain.loopDelayMs.max.toFixed(0)} ms`,
    ),
    row('server: requests', serverBackoff.requests, serverPlain.requests),
    row('server: 503s sent', serverBackoff.errors, serverPlain.errors),
    row(
      'server: slow / hung',
      `${serverBackoff.slow} / ${serverBackoff.hung}`,
      `${serverPlain.slow} / ${serverPlain.hung}`,
    ),
    row('server: aborted (2)', serverBackoff.aborted, serverPlain.aborted),
    row('server: still working (3)', serverBackoff.inFlight, serverPlain.inFlight),
  ]);
  console.log(`
  (1) asyncbackoff: attempts that ran past attemptTimeout (${ATTEMPT_TIMEOUT_MS} ms), each retried
      while tries and time were left. plain fetch: calls cut by the ${PLAIN_SAFETY_TIMEOUT_MS / 1000} s safety timeout.
  (2) requests the client abandoned before the answer; the server saw the connection close and
      stopped working on them. With asyncbackoff that is every timed-out attempt: the attempt's
      signal aborted its fetch.
  (3) requests still open on the server after the batch (abandoned work left running): should be 0.
  (4) how late this process's event loop ran; the client and the server share it. When it nears
      the attempt timeout, the machine is too busy and some timeouts are the client's own lag.`);

  // Every slow or hung request must time out (300 ms > 100 ms); any other timeout means the answer
  // was there but this process read it too late.
  const causedByService = serverBackoff.slow + serverBackoff.hung;
  const causedByLag = Math.max(0, stats.timeouts - causedByService);
  console.log(
    `\n${paragraph(
      `In short: asyncbackoff turned ${failed(plain)} failed calls into ${failed(backoff)} and cut ` +
        `p99 latency from ${ms(percentile(plain.latencies, 99))} to ` +
        `${ms(percentile(backoff.latencies, 99))}, for ${stats.retries} extra requests ` +
        `(+${rate(stats.retries, backoff.calls)}). Of its ${stats.timeouts} attempt timeouts, ` +
        `${Math.min(stats.timeouts, causedByService)} hit a slow or hung request.`,
    )}`,
  );
  if (causedByLag > 0.1 * stats.timeouts)
    console.log(
      `\n${paragraph(
        `Note: ${causedByLag} attempt timeouts were not the service's fault: this process ran too ` +
          `late to send the requests or read the answers (event-loop delay p99 ` +
          `${backoff.loopDelayMs.p99.toFixed(0)} ms), because the machine is busy or too many calls ` +
          `are in flight. Retries add load to an overloaded process: try a smaller --concurrency, ` +
          `or see the \`budget\` option (retry budgets).`,
      )}`,
    );
}

/** `backoff.statistics`: counters of the instance, shared by every call made through it. */
function printStatistics(stats: BackoffStatistics): void {
  const meaning: Record<keyof BackoffStatistics, string> = {
    attempts: 'attempts started',
    done: 'attempts finished, any outcome',
    errors: 'attempts failed (errors and timeouts)',
    cancels: 'attempts stopped by the deadline or a cancellation',
    sumTime: 'ms spent inside attempts, summed',
    timeouts: 'attempts that ran past attemptTimeout',
    retries: 'retries scheduled',
    giveUps: 'calls that failed finally',
    sleptTime: 'ms slept in pauses, summed',
    budgetRefusals: 'retries refused by a retry budget (none configured)',
    successes: 'calls that succeeded',
    lateResults: 'abandoned attempts that fulfilled afterwards',
    breakerRefusals: 'attempts an open circuit breaker refused or held',
  };
  console.log('\nbackoff.statistics\n');
  printTable(
    Object.entries(stats).map(([key, value]) => [
      key,
      String(Math.round(value as number)),
      meaning[key as keyof BackoffStatistics] ?? '',
    ]),
    [0, 2],
  );
}

/** For CI: results a working library cannot produce make the demo exit 1. */
function smokeChecks(
  backoff: BatchResult,
  stats: BackoffStatistics,
  serverBackoff: ServerCounters,
  plain: BatchResult,
  serverPlain: ServerCounters,
): number {
  const checks: [string, boolean][] = [
    [
      'asyncbackoff succeeds more often than a plain fetch',
      backoff.succeeded / backoff.calls > plain.succeeded / plain.calls,
    ],
    ['something was retried', stats.retries > 0],
    ['some attempts timed out', stats.timeouts > 0],
    [
      'timed-out attempts were cancelled on the server',
      serverBackoff.aborted > 0 && serverBackoff.aborted <= stats.timeouts + stats.cancels,
    ],
    [
      `no call took much longer than the deadline (${DEADLINE_MS} ms)`,
      (backoff.latencies.at(-1) ?? 0) < DEADLINE_MS + 500,
    ],
    [
      'every call is counted once (successes + giveUps = calls)',
      stats.successes === backoff.succeeded && stats.successes + stats.giveUps === backoff.calls,
    ],
    [
      'no abandoned work left on the server',
      serverBackoff.inFlight === 0 && serverPlain.inFlight === 0,
    ],
  ];
  console.log('\nSmoke checks\n');
  for (const [name, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'}  ${name}`);
  return checks.every(([, ok]) => ok) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------

main().then(
  (code) => {
    process.exitCode = code;
    // Nothing should be left running now: the server is closed, the Backoff's shared timers are
    // released right after its last call settled. If something still holds the event loop open,
    // say what and fail instead of hanging. (unref: this timer itself does not keep us alive.)
    setTimeout(() => {
      console.error('demo: still running 5 s after the end:', process.getActiveResourcesInfo());
      process.exit(1);
    }, 5000).unref();
  },
  (error: unknown) => {
    console.error(error instanceof UsageError ? error.message : error);
    process.exitCode = 1;
  },
);
