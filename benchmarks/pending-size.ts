/**
 * What one pending execution keeps alive: heap bytes per execution whose attempt never settles,
 * for asyncbackoff's `attemptTimeout` and `deadline` rows and the context floor of the precision
 * bench. In an incident these are what the young-generation collector copies while the verdicts
 * fall due, so this figure drives the GC share of the precision rows. Deterministic up to a few
 * bytes (no timing).
 *
 * Run: `node --import tsx benchmarks/pending-size.ts` (builds nothing: reads dist/, as the benches do).
 */
import { boundedRows, exposeGc } from './support.js';

const N = 10_000;
/** Far enough out that no verdict falls due while measuring. */
const BOUND = 1_000_000;

const gc = exposeGc();

/** Heap bytes per pending execution started by `start` (its caller's handler included). */
function bytesPerPending(start: () => Promise<unknown>): number {
  const keep: Promise<unknown>[] = [];
  const handled = () => {};
  for (let i = 0; i < 100; i++) keep.push(start().catch(handled)); // warm-up: maps and code settle
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i++) keep.push(start().catch(handled));
  gc();
  gc();
  const bytes = (process.memoryUsage().heapUsed - before) / N;
  keep.length = 0;
  return bytes;
}

const rows = await boundedRows(BOUND);
console.log(`node ${process.version}: heap bytes per pending execution (N = ${N})`);
for (const [name, start] of rows)
  console.log(`${bytesPerPending(start).toFixed(0).padStart(6)}  ${name}`);
// The pending executions' timers would keep the process alive for BOUND ms.
process.exit(0);
