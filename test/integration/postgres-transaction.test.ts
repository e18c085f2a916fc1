/**
 * asyncbackoff/postgres `transaction()` on a real server: an attempt timeout while fn is busy
 * elsewhere (the server's idle-in-transaction timeout races the attempt's own timer) always
 * rejects with the attempt's `AttemptTimeoutError` and is retried; an attempt timeout during a
 * statement rolls the transaction back and frees its row locks at once; no session is left idle
 * in a transaction.
 */
import { AttemptTimeoutError, Backoff } from 'asyncbackoff';
import { isTransientPgError, transaction } from 'asyncbackoff/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, missingPgEnv, sleep } from './support/pg.js';

describe.skipIf(missingPgEnv.length > 0)('PostgreSQL: transaction() at the attempt’s end', () => {
  const table = `asyncbackoff_tx_${process.pid}`;
  let admin: Admin;
  beforeAll(async () => {
    admin = new Admin();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL)`);
    await admin.query(`INSERT INTO ${table} VALUES (1, 0)`);
  });
  afterAll(async () => {
    await admin?.query(`DROP TABLE IF EXISTS ${table}`);
    await admin?.end();
  });

  async function idleInTransaction(applicationName: string): Promise<number> {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = $1 AND state LIKE 'idle in transaction%'`,
      [applicationName],
    );
    return rows[0]!.n;
  }

  it('fn busy past the attempt: every execution rejects with AttemptTimeoutError after its retry, never 25P03', async () => {
    const name = 'asyncbackoff-tx-idle';
    const pool = new pg.Pool({ max: 15, application_name: name }); // one client each: no wait for connect()
    pool.on('error', () => {}); // sessions the server ends while idle in the pool
    const backoff = new Backoff({ attemptTimeout: 300, maxTries: 2, retryOn: isTransientPgError });
    const runs: number[] = [];
    const outcomes = await Promise.all(
      Array.from({ length: 15 }, (_, k) => {
        runs[k] = 0;
        return backoff
          .execute(() =>
            transaction(pool, async (tx) => {
              runs[k]!++;
              await tx.query(`SELECT v FROM ${table} WHERE id = 1`);
              await sleep(400); // work elsewhere, not listening to the signal
            }),
          )
          .then(
            () => 'fulfilled',
            (error: unknown) =>
              error instanceof AttemptTimeoutError
                ? `AttemptTimeoutError ${error.attempt}`
                : `${(error as { code?: string }).code ?? String(error)}`,
          );
      }),
    );
    expect(outcomes).toEqual(Array.from({ length: 15 }, () => 'AttemptTimeoutError 2'));
    expect(runs).toEqual(Array.from({ length: 15 }, () => 2));
    await sleep(450); // the abandoned fns finish their sleep
    expect(await idleInTransaction(name)).toBe(0);
    await pool.end();
  });

  it('a timeout during a statement rolls back: the row is unchanged and its lock is free at once', async () => {
    const name = 'asyncbackoff-tx-rollback';
    const pool = new pg.Pool({ max: 2, application_name: name });
    pool.on('error', () => {});
    const backoff = new Backoff({ attemptTimeout: 300, maxTries: 1 });
    const outcome = await backoff
      .execute(() =>
        transaction(pool, async (tx) => {
          await tx.query(`UPDATE ${table} SET v = v + 1 WHERE id = 1`);
          await tx.query('SELECT pg_sleep(10)');
        }),
      )
      .catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(AttemptTimeoutError);
    // Another session takes the row lock without waiting (lock_timeout 500 ms would fail it).
    const started = performance.now();
    const other = await admin.query<{ v: number }>(
      `SET lock_timeout = 500; UPDATE ${table} SET v = v WHERE id = 1 RETURNING v`,
    );
    expect(performance.now() - started).toBeLessThan(400);
    const result = (other as unknown as pg.QueryResult<{ v: number }>[]).at(-1)!;
    expect(result.rows).toEqual([{ v: 0 }]);
    expect(await idleInTransaction(name)).toBe(0);
    await pool.end();
  });
});
