/**
 * 10,000 idempotent inserts through the README's "batches through an outage" recipe
 * (recipes/batch-outage.ts: one Backoff with `retryOn: isTransientPgError`, full-jitter
 * exponential pauses, a `'wait'` circuit breaker and a 30 s deadline; `map` with concurrency 50
 * over a pool of 20), while a fault injector terminates 2 of the pool's backends every 200 ms and
 * restarts the server once. No crash, exactly 10,000 rows, no duplicates, no final failure; and
 * unrelated queries on a second pool are never cancelled (57014).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, checkServerControl, missingPgEnv, server, sleep } from './support/pg.js';

const ROWS = 10_000;

describe.skipIf(missingPgEnv.length > 0)('PostgreSQL: a batch through an outage', () => {
  let admin: Admin;
  beforeAll(async () => {
    await checkServerControl();
    admin = new Admin();
    await admin.query('DROP TABLE IF EXISTS orders');
    await admin.query('CREATE TABLE orders (id int PRIMARY KEY, total int NOT NULL)');
  });
  afterAll(async () => {
    await server('pg-start'); // whatever happened above, leave the server up
    await admin?.query('DROP TABLE IF EXISTS orders');
    await admin?.end();
  });

  it('10,000 inserts, 2 backends terminated every 200 ms and a restart: every row once, no failure', async () => {
    const recipe = await import('./recipes/batch-outage.js');
    const orders = Array.from({ length: ROWS }, (_, i) => ({ id: i + 1, total: i % 997 }));

    // Unrelated queries on a pool of their own, all along.
    const bystanders = new pg.Pool({ max: 2, application_name: 'bystander' });
    bystanders.on('error', () => {});
    const bystanderErrors: string[] = [];
    let bystanderQueries = 0;
    let running = true;
    const bystanding = (async () => {
      while (running) {
        try {
          await bystanders.query('SELECT 1');
          bystanderQueries++;
        } catch (error) {
          bystanderErrors.push((error as { code?: string }).code ?? (error as Error).message);
        }
        await sleep(2);
      }
    })();

    // The fault injector: 2 of the importer's backends every 200 ms, one restart.
    let terminated = 0;
    let restartedAt = Number.NaN;
    let restartMs = Number.NaN;
    const started = performance.now();
    const injecting = (async () => {
      while (running) {
        await sleep(200);
        if (!running) break;
        if (Number.isNaN(restartedAt) && performance.now() - started >= 600) {
          restartedAt = performance.now() - started;
          await server('pg-restart');
          restartMs = performance.now() - started - restartedAt;
          continue;
        }
        const { rows } = await admin.query<{ ok: boolean }>(
          `SELECT pg_terminate_backend(pid) AS ok FROM (
             SELECT pid FROM pg_stat_activity WHERE application_name = 'order-import'
             ORDER BY random() LIMIT 2) victims`,
        );
        terminated += rows.filter((row) => row.ok).length;
      }
    })();

    const outcomes = await recipe.importOrders(orders);
    const wall = performance.now() - started;
    running = false;
    await Promise.all([injecting, bystanding]);

    const { rows } = await admin.query<{ rows: number; ids: number }>(
      'SELECT count(*)::int AS rows, count(DISTINCT id)::int AS ids FROM orders',
    );
    const stats = recipe.importer.statistics;
    const breaker = recipe.breaker.stats;
    const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
    const cancelled = bystanderErrors.filter((code) => code === '57014');
    console.log(
      `[pg-outage] rows ${rows[0]!.rows}, duplicates ${rows[0]!.rows - rows[0]!.ids}, final failures ${failed.length}, ` +
        `attempts ${stats.attempts}, retries ${stats.retries}, timeouts ${stats.timeouts}, give-ups ${stats.giveUps}, ` +
        `breaker: opened ${breaker.opened}, half-opened ${breaker.halfOpened}, closed ${breaker.closed}, held ${stats.breakerRefusals}; ` +
        `backends terminated ${terminated}, restart at ${Math.round(restartedAt)} ms (took ${Math.round(restartMs)} ms); ` +
        `wall ${Math.round(wall)} ms; bystanders ${bystanderQueries} queries, ${bystanderErrors.length} errors ` +
        `(${[...new Set(bystanderErrors)].join(', ') || 'none'}), ${cancelled.length} cancelled`,
    );

    expect(outcomes).toHaveLength(ROWS);
    expect(failed).toEqual([]);
    expect(stats.giveUps).toBe(0); // not even before the rerun: nothing needed one
    expect(rows[0]).toEqual({ rows: ROWS, ids: ROWS });
    // The faults did happen, during the batch.
    expect(restartedAt).toBeLessThan(wall);
    expect(terminated).toBeGreaterThan(0);
    expect(stats.retries).toBeGreaterThan(0);
    expect(breaker.opened).toBeGreaterThanOrEqual(1);
    expect(cancelled).toEqual([]);
    expect(bystanderQueries).toBeGreaterThan(0);
    await recipe.pool.end();
    await bystanders.end();
  }, 90_000);
});
