/**
 * PostgreSQL through the public API: an attempt timeout that really cancels the query on the server,
 * and a retry across a transient serialization failure.
 *
 * Needs PGHOST PGPORT PGUSER PGDATABASE (`eval "$(.ci/services.sh start)"`); without them the suite
 * is skipped, except under CI where their absence is an error.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttemptTimeoutError, Backoff, currentAttempt } from '../../src/index.js';

const required = ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE'] as const;
const missing = required.filter((name) => !process.env[name]);
if (missing.length > 0) {
  const message = `PostgreSQL integration tests need ${missing.join(', ')}: run \`eval "$(.ci/services.sh start)"\` first`;
  if (process.env.CI) throw new Error(message);
  console.warn(`[skipped] ${message}`);
}

/** SQLSTATEs used below. */
const QUERY_CANCELED = '57014';
const SERIALIZATION_FAILURE = '40001';
const UNIQUE_VIOLATION = '23505';

function sqlState(error: unknown): string | undefined {
  return error instanceof pg.DatabaseError ? error.code : undefined;
}

describe.skipIf(missing.length > 0)('PostgreSQL', () => {
  // Connection settings come from the PG* environment variables.
  let pool: pg.Pool;
  let admin: pg.Client;
  const table = `asyncbackoff_it_${process.pid}`;

  beforeAll(async () => {
    pool = new pg.Pool({ max: 4 });
    admin = new pg.Client();
    await admin.connect();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL)`);
  });

  afterAll(async () => {
    await admin?.query(`DROP TABLE IF EXISTS ${table}`);
    await admin?.end();
    await pool?.end();
  });

  /** Runs `text` on `client`; when `signal` aborts, cancels it on the server from `admin`. */
  async function cancellableQuery<R extends pg.QueryResultRow>(
    client: pg.PoolClient,
    text: string,
    signal: AbortSignal,
  ): Promise<pg.QueryResult<R>> {
    const {
      rows: [backend],
    } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    signal.throwIfAborted();
    const cancel = () => {
      admin.query('SELECT pg_cancel_backend($1)', [backend!.pid]).catch(() => {});
    };
    signal.addEventListener('abort', cancel, { once: true });
    try {
      return await client.query<R>(text);
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  async function activeQueriesTagged(tag: string): Promise<number> {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%' || $1 || '%'`,
      [tag],
    );
    return rows[0]!.n;
  }

  async function waitUntilNoActive(tag: string, within = 1000): Promise<void> {
    const until = Date.now() + within;
    while ((await activeQueriesTagged(tag)) > 0) {
      if (Date.now() > until) throw new Error(`query ${tag} still active after ${within} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('an attempt timeout cancels the slow query on the server, the next attempt succeeds', async () => {
    const tag = `slow_${randomUUID().replaceAll('-', '')}`;
    const cancelled: unknown[] = [];
    const backoff = new Backoff({ attemptTimeout: 250, deadline: 2000, maxTries: 2 });

    const started = performance.now();
    const value = await backoff.execute(async (seconds: number) => {
      const { signal, attempt } = currentAttempt()!;
      const client = await pool.connect();
      try {
        const sleep = attempt === 1 ? seconds : 0;
        const { rows } = await cancellableQuery<{ attempt: number }>(
          client,
          `SELECT pg_sleep(${sleep}), ${attempt} AS attempt /* ${tag} */`,
          signal,
        );
        return rows[0]!.attempt;
      } catch (error) {
        cancelled.push(error);
        throw error;
      } finally {
        client.release();
      }
    }, 10);
    const elapsed = performance.now() - started;

    expect(value).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(240);
    expect(elapsed).toBeLessThan(1500);
    expect(backoff.statistics).toMatchObject({ attempts: 2, timeouts: 1, successes: 1 });

    // The first attempt's query was cancelled by the server, not left sleeping for 10 s.
    await waitUntilNoActive(tag);
    await expect.poll(() => cancelled.length).toBe(1);
    expect(sqlState(cancelled[0])).toBe(QUERY_CANCELED);
  });

  it('rejects with AttemptTimeoutError when every attempt times out, leaving no query behind', async () => {
    const tag = `hang_${randomUUID().replaceAll('-', '')}`;
    const backoff = new Backoff({ attemptTimeout: 300, maxTries: 2 });

    const run = backoff.execute(async () => {
      const client = await pool.connect();
      try {
        await cancellableQuery(
          client,
          `SELECT pg_sleep(10) /* ${tag} */`,
          currentAttempt()!.signal,
        );
      } finally {
        client.release();
      }
    });

    const outcome = run.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    // The probe sees the query while it sleeps, so "gone" below is not vacuous.
    await expect.poll(() => activeQueriesTagged(tag), { interval: 10, timeout: 280 }).toBe(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    expect(error).toMatchObject({ name: 'AttemptTimeoutError', attempt: 2, timeout: 300 });
    await waitUntilNoActive(tag);
  });

  it('retries a transaction across a serialization failure', async () => {
    await admin.query(`INSERT INTO ${table} (id, v) VALUES (1, 0)`);
    const retried: unknown[] = [];
    const backoff = new Backoff({
      exceptions: [pg.DatabaseError],
      giveup: (error) => sqlState(error) !== SERIALIZATION_FAILURE,
      pause: 10,
      maxTries: 3,
      deadline: 2000,
      onRetry: (event) => {
        retried.push(event.error);
      },
    });

    const increment = backoff.wrap(async (id: number): Promise<number> => {
      const { attempt } = currentAttempt()!;
      const client = await pool.connect();
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await client.query(`SELECT v FROM ${table} WHERE id = $1`, [id]); // takes the snapshot
        // A concurrent writer commits after our snapshot, on the first attempt only.
        if (attempt === 1) await admin.query(`UPDATE ${table} SET v = v + 100 WHERE id = $1`, [id]);
        const { rows } = await client.query<{ v: number }>(
          `UPDATE ${table} SET v = v + 1 WHERE id = $1 RETURNING v`,
          [id],
        );
        await client.query('COMMIT');
        return rows[0]!.v;
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    });

    await expect(increment(1)).resolves.toBe(101);
    expect(retried).toHaveLength(1);
    expect(sqlState(retried[0])).toBe(SERIALIZATION_FAILURE);
    expect(backoff.statistics).toMatchObject({ attempts: 2, successes: 1 });
  });

  it('gives up at once on a non-transient error and rejects with that very error', async () => {
    await admin.query(`INSERT INTO ${table} (id, v) VALUES (2, 0)`);
    let attempts = 0;
    const backoff = new Backoff({
      exceptions: [pg.DatabaseError],
      giveup: (error) => sqlState(error) !== SERIALIZATION_FAILURE,
      maxTries: 5,
    });
    let thrown: unknown;
    const insert = async () => {
      attempts++;
      try {
        await pool.query(`INSERT INTO ${table} (id, v) VALUES (2, 1)`);
      } catch (error) {
        thrown = error;
        throw error;
      }
    };

    const error = await backoff.execute(insert).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(attempts).toBe(1);
    expect(error).toBe(thrown);
    expect(sqlState(error)).toBe(UNIQUE_VIOLATION);
  });
});
