/**
 * asyncbackoff/postgres on a real server, timeouts on a saturated pool: `SELECT pg_sleep(10)`
 * through `query()` under a 200 ms attempt timeout, more callers than clients, while bystanders
 * run short queries on the same pool and on a second one. Within 500 ms of each timeout
 * pg_stat_activity shows no such query; no bystander is ever cancelled (57014); no client leaks.
 */
import { randomUUID } from 'node:crypto';
import { AttemptTimeoutError, Backoff } from 'asyncbackoff';
import { query } from 'asyncbackoff/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, activeTagged, missingPgEnv, sleep } from './support/pg.js';

describe.skipIf(missingPgEnv.length > 0)('PostgreSQL: cancelling on a saturated pool', () => {
  let admin: Admin;
  beforeAll(() => {
    admin = new Admin();
  });
  afterAll(async () => {
    await admin?.end();
  });

  it('every timed-out pg_sleep is gone from the server within 500 ms, and nobody else is cancelled', async () => {
    const pool = new pg.Pool({ max: 4, application_name: 'asyncbackoff-saturated' });
    const other = new pg.Pool({ max: 2, application_name: 'asyncbackoff-bystander' });
    pool.on('error', () => {});
    other.on('error', () => {});
    const sleeper = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    const bystander = new Backoff({ attemptTimeout: 5_000, maxTries: 1 });

    // Bystanders: short queries on the same pool (through query()) and on another pool.
    let running = true;
    const bystanderErrors: unknown[] = [];
    let bystanderQueries = 0;
    const bystanders = [
      ...Array.from({ length: 2 }, async () => {
        while (running) {
          try {
            await bystander.execute(() => query(pool, 'SELECT 1 AS ok'));
            bystanderQueries++;
          } catch (error) {
            bystanderErrors.push(error);
          }
        }
      }),
      (async () => {
        while (running) {
          try {
            await other.query('SELECT 1 AS ok');
            bystanderQueries++;
          } catch (error) {
            bystanderErrors.push(error);
          }
          await sleep(1);
        }
      })(),
    ];

    const rounds = 3;
    const callers = 8;
    const gone: number[] = [];
    let seenRunning = 0;
    const started = performance.now();
    for (let round = 0; round < rounds; round++) {
      const tags = Array.from(
        { length: callers },
        () => `sleep_${randomUUID().replaceAll('-', '')}`,
      );
      const calls = tags.map((tag) =>
        sleeper
          .execute(() => query(pool, `SELECT pg_sleep(10) /* ${tag} */`))
          .then(
            () => ({ tag, error: undefined as unknown, at: performance.now() }),
            (error: unknown) => ({ tag, error, at: performance.now() }),
          ),
      );
      // While they run, the server does have some of them sleeping (the check below is not vacuous).
      await sleep(120);
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE state = 'active' AND query LIKE '%pg_sleep(10) /* sleep_%' AND pid <> pg_backend_pid()`,
      );
      seenRunning = Math.max(seenRunning, rows[0]!.n);
      const outcomes = await Promise.all(calls);
      for (const { tag, error, at } of outcomes) {
        expect(error).toBeInstanceOf(AttemptTimeoutError);
        while ((await activeTagged(admin, tag)) > 0) {
          if (performance.now() - at > 500)
            throw new Error(`${tag} still running 500 ms after its timeout`);
          await sleep(5);
        }
        gone.push(performance.now() - at);
      }
    }
    running = false;
    await Promise.all(bystanders);

    // Nothing left checked out or waiting: abandoned connects got their clients back.
    await expect.poll(() => pool.waitingCount, { timeout: 2_000 }).toBe(0);
    await expect.poll(() => pool.totalCount - pool.idleCount, { timeout: 2_000 }).toBe(0);
    const canceled = bystanderErrors.filter((e) => (e as { code?: string }).code === '57014');
    console.log(
      `[pg-cancel] ${rounds * callers} timeouts in ${Math.round(performance.now() - started)} ms, ` +
        `${seenRunning} sleeping on the server at once, gone after p100 ${Math.round(Math.max(...gone))} ms; ` +
        `bystanders: ${bystanderQueries} queries, ${bystanderErrors.length} errors, ${canceled.length} cancelled`,
    );
    expect(seenRunning).toBeGreaterThanOrEqual(3);
    expect(canceled).toEqual([]);
    expect(bystanderErrors).toEqual([]);
    expect(bystanderQueries).toBeGreaterThan(0);
    await pool.end();
    await other.end();
  });

  it('a cancellation with no time limit (no server-side timeout to fall back on) still stops the statement at once', async () => {
    // The server's statement_timeout would stop a timed-out pg_sleep by itself; a cancelled
    // unbounded attempt has none, so only the CancelRequest can end it early.
    const pool = new pg.Pool({ max: 2 });
    pool.on('error', () => {});
    const unbounded = new Backoff({ maxTries: 1 });
    const tags = Array.from({ length: 3 }, () => `cancel_${randomUUID().replaceAll('-', '')}`);
    const controller = new AbortController();
    const view = unbounded.withSignal(controller.signal);
    const calls = tags.map((tag) =>
      view.execute(() => query(pool, `SELECT pg_sleep(10) /* ${tag} */`)).catch((e: unknown) => e),
    );
    await expect.poll(() => activeTagged(admin, 'cancel_'), { interval: 10 }).toBe(2);
    const reason = new Error('request aborted');
    controller.abort(reason);
    const at = performance.now();
    for (const outcome of await Promise.all(calls)) expect(outcome).toBe(reason);
    for (const tag of tags)
      await expect.poll(() => activeTagged(admin, tag), { interval: 5, timeout: 500 }).toBe(0);
    console.log(
      `[pg-cancel] cancelled unbounded statements gone after ${Math.round(performance.now() - at)} ms`,
    );
    await pool.end();
  });
});
