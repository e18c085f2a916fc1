/**
 * A/B of precision.bench.ts's rows in the bench's own children, without the rest of the suite: one
 * child per row (`precision.bench.ts --row=<row>`), sent the requests a sequence names, interleaved
 * across the rows as the bench does; prints each idle run's p99 lateness at the sequence's largest N.
 * Written to tell apart what the bench's order of runs does from what its child process does (see
 * benchmarks/README, "Run to run at N = 10,000"). Not part of `npm run bench`; no target.
 *
 * Run: `node --import tsx benchmarks/precision-rows.ts [--rows=attemptTimeout,deadline,contextFloor]
 *   [--sequence=1000i:6,1000b:6,10000i:6]`
 * A sequence step is `<N><i|b>:<runs>` (i = idle, b = busy neighbour). Extra node flags for the
 * children: `--child-flags="--max-semi-space-size=32"`.
 */
import { fileURLToPath } from 'node:url';
import { median, option, quantile, startWorker } from './support.js';

const rows = (option('rows') ?? 'attemptTimeout,deadline,contextFloor').split(',');
const sequence = (option('sequence') ?? '10000i:6').split(',').map((step) => {
  const match = /^(\d+)([ib]):(\d+)$/.exec(step);
  if (match === null) throw new Error(`--sequence: '${step}' is not <N><i|b>:<runs>`);
  return { n: Number(match[1]), load: match[2] === 'b' ? 'busy' : 'idle', runs: Number(match[3]) };
});
const childFlags = (option('child-flags') ?? '').split(' ').filter((flag) => flag !== '');
const biggest = Math.max(...sequence.map((step) => step.n));

const script = fileURLToPath(new URL('./precision.bench.ts', import.meta.url));
const workers = await Promise.all(
  rows.map((row) => startWorker(script, [`--row=${row}`], childFlags)),
);
const p99s = rows.map((): number[] => []);
try {
  for (const { n, load, runs } of sequence)
    for (let run = 0; run < runs; run++)
      for (let k = 0; k < rows.length; k++) {
        const answer = JSON.parse(await workers[k]!.request(`${n} ${load}`)) as { late: number[] };
        if (n === biggest && load === 'idle')
          p99s[k]!.push(quantile(Float64Array.from(answer.late).sort(), 0.99));
      }
} finally {
  for (const worker of workers) worker.stop();
}
console.log(`Node ${process.version}, sequence ${option('sequence') ?? '10000i:6'}`);
console.log(
  `p99 (ms) of each idle run at N = ${biggest.toLocaleString('en-US')}, then the median:`,
);
for (let k = 0; k < rows.length; k++) {
  const values = p99s[k]!;
  console.log(
    `${rows[k]!.padEnd(16)} ${values.map((v) => v.toFixed(2)).join(' ')}  median ${median(values).toFixed(2)}`,
  );
}
