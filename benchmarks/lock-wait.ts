/**
 * Lock wait, before and after: 8 worker processes × 200 read-modify-write increments of one Redis
 * counter under one lock, through the README's old recipe (`@asyncretry(20, { exceptions:
 * [LockBusy], pause: 100 })` around `SET NX PX`) and its new one (`withLock(redisLock(...))`,
 * test/integration/recipes/redis-lock.ts). Reports lock wait p50/p99/max, the lock's idle gaps
 * between holders, missed increments and overlapping sections.
 *
 *   eval "$(.ci/services.sh start)"
 *   npx tsx benchmarks/lock-wait.ts [--runs 3] [--workers 8] [--count 200]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import {
  idleGaps,
  overlaps,
  percentile,
  runWorkers,
} from '../test/integration/support/lock-scenario.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    workers: { type: 'string', default: '8' },
    count: { type: 'string', default: '200' },
  },
});
const url = process.env.REDIS_URL;
if (!url) throw new Error('REDIS_URL is not set: run `eval "$(.ci/services.sh start)"` first');
const runs = Number(values.runs);
const workers = Number(values.workers);
const count = Number(values.count);

const redis = createClient({ url });
redis.on('error', () => {});
await redis.connect();

const round = (n: number) => Math.round(n * 10) / 10;

for (const recipe of ['old', 'new'] as const) {
  for (let run = 1; run <= runs; run++) {
    const name = `asyncbackoff:bench:${randomUUID()}`;
    const result = await runWorkers({
      url,
      client: 'node-redis',
      recipe,
      name,
      workers,
      count,
      timeout: 120_000,
    });
    const waits = result.sections.map((s) => s.wait);
    const gaps = idleGaps(result.sections);
    const counter = Number((await redis.get(`${name}:counter`)) ?? 0);
    const missed = result.summaries.reduce((n, s) => n + (s?.skipped ?? 0), 0);
    console.log(
      JSON.stringify({
        recipe,
        run,
        sections: result.sections.length,
        missed,
        counter,
        overlaps: overlaps(result.sections).length,
        waitP50: round(percentile(waits, 50)),
        waitP99: round(percentile(waits, 99)),
        waitMax: round(Math.max(...waits)),
        idleP99: round(percentile(gaps, 99)),
        idleMax: round(Math.max(...gaps)),
        elapsedMs: Math.round(result.elapsed),
      }),
    );
    const keys = await redis.keys(`*${name}*`);
    if (keys.length > 0) await redis.del(keys);
  }
}
await redis.close();
