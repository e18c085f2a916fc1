/**
 * What a verdict allocates: heap bytes allocated per execution while N executions whose attempts
 * never settle time out together (the verdicts and the callers' rejection handlers), for
 * asyncbackoff's `attemptTimeout` and `deadline` rows and the context floor of the precision
 * bench. In an incident this decides whether a scavenge lands among the verdicts, where it delays
 * every verdict still waiting. It runs itself again with a young generation large enough that
 * nothing is collected while it measures, so the heap's growth is what was allocated. Moves by
 * some tens of bytes between runs (no timing).
 *
 * Run: `node --import tsx benchmarks/verdict-alloc.ts [--node 24]` (builds nothing: reads dist/,
 * as the benches do).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeFromArgv } from './callgrind.js';
import { boundedRows, exposeGc, median } from './support.js';

const N = 10_000;
const BOUND = 30;
const RUNS = 5;
const SEMI_SPACE = '--max-semi-space-size=256';

if (!process.execArgv.includes(SEMI_SPACE)) {
  // Heap sizes are fixed when the process starts: run again with the young generation set (and,
  // with `--node 24`, on that Node).
  const child = spawnSync(
    nodeFromArgv(process.argv),
    [...process.execArgv, SEMI_SPACE, '--min-semi-space-size=256', fileURLToPath(import.meta.url)],
    { stdio: 'inherit' },
  );
  process.exit(child.status ?? 1);
}

const gc = exposeGc();

/** Heap bytes allocated per execution from the end of the starts to the last rejection handler. */
async function bytesPerVerdict(start: () => Promise<unknown>): Promise<number> {
  const runs: number[] = [];
  for (let run = 0; run <= RUNS; run++) {
    gc();
    let left = N;
    let done!: () => void;
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    const handled = () => {
      if (--left === 0) done();
    };
    for (let i = 0; i < N; i++) start().then(undefined, handled);
    const before = process.memoryUsage().heapUsed;
    await all;
    // The first run warms maps and code up.
    if (run > 0) runs.push((process.memoryUsage().heapUsed - before) / N);
  }
  return median(runs);
}

const rows = await boundedRows(BOUND);
console.log(
  `node ${process.version}: heap bytes allocated per verdict (N = ${N} timing out at once, median of ${RUNS} runs)`,
);
for (const [name, start] of rows)
  console.log(`${(await bytesPerVerdict(start)).toFixed(0).padStart(6)}  ${name}`);
