/**
 * Two or more builds of asyncbackoff side by side in one process: rounds of each alternate, so
 * the load of a shared machine falls on all of them alike. Prints the median ns per execution of
 * each build and its ratio to the first. This is how an engine change's before/after figure is
 * taken (the benches compare against peers, not against an earlier build).
 *
 * Build each version's `dist/` and copy it aside, e.g. in a worktree of the earlier commit:
 *
 *   git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)
 *   node --import tsx benchmarks/ab.ts fail /tmp/before/dist dist
 *
 * Modes: `plain` (no limits), `nocontext` (`context: false`), `bounded` (`attemptTimeout` and
 * `deadline`), `fail` (fails once with a new Error, then succeeds; pause 0) and `failBounded`
 * (the same with an `attemptTimeout`).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median } from './support.js';

const MODES = {
  plain: {},
  nocontext: { context: false },
  bounded: { attemptTimeout: 1000, deadline: 5000 },
  fail: { exceptions: [Error], maxTries: 3, pause: 0 },
  failBounded: { exceptions: [Error], maxTries: 3, pause: 0, attemptTimeout: 1000 },
} as const;
const ROUNDS = 21;

const [mode, ...dists] = process.argv.slice(2);
if (!(mode !== undefined && mode in MODES) || dists.length < 2) {
  console.error(`usage: ab.ts <${Object.keys(MODES).join('|')}> <dist> <dist> [<dist>...]`);
  process.exit(2);
}
const options = MODES[mode as keyof typeof MODES];
const failing = mode.startsWith('fail');
const n = failing ? 10_000 : 50_000;

type Execute = (fn: () => Promise<number>) => Promise<number>;
const builds: Execute[] = await Promise.all(
  dists.map(async (dist) => {
    const { Backoff } = await import(pathToFileURL(resolve(dist, 'index.js')).href);
    const backoff = new Backoff(options);
    return (fn: () => Promise<number>) => backoff.execute(fn);
  }),
);

const succeed = async () => 1;
/** Throws before its first await, as most failing calls do: the error's stack is captured then. */
function failOnce(): () => Promise<number> {
  let left = 1;
  return async () => {
    if (left-- > 0) throw new Error('transient');
    return 1;
  };
}

const samples = builds.map((): number[] => []);
for (let round = 0; round < ROUNDS; round++)
  for (const [k, execute] of builds.entries()) {
    const t0 = process.hrtime.bigint();
    if (failing) for (let i = 0; i < n; i++) await execute(failOnce());
    else for (let i = 0; i < n; i++) await execute(succeed);
    samples[k]!.push(Number(process.hrtime.bigint() - t0) / n);
  }

const medians = samples.map(median);
console.log(`${mode} on Node ${process.version}, median ns per execution of ${ROUNDS} rounds:`);
for (const [k, dist] of dists.entries())
  console.log(
    `  ${medians[k]!.toFixed(0).padStart(7)}  ×${(medians[k]! / medians[0]!).toFixed(3)}  ${dist}`,
  );
