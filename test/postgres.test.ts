/**
 * asyncbackoff/postgres with a fake pool: what each call sends, when the client goes back or is
 * destroyed, the CancelRequest on abort (received by a local TCP listener), and the error
 * classifier. The real-server behaviour is in test/integration/postgres-*.test.ts.
 */
import { EventEmitter, getEventListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttemptTimeoutError,
  Backoff,
  currentAttempt,
  isTransientNetworkError,
  LockLostError,
} from 'asyncbackoff';
import {
  advisoryLock,
  isTransientPgError,
  type PgPool,
  type PgResult,
  query,
  transaction,
} from 'asyncbackoff/postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type InstalledClock, installFakeClock, nextMacrotask } from './support/clock.js';

// The structural types accept node-postgres itself.
const _typed: PgPool = new pg.Pool({ max: 1 });
void _typed;

const ok = (rows: unknown[] = [], command = 'SELECT'): PgResult => ({
  rows,
  rowCount: rows.length,
  command,
});

function pgError(code: string, message = `error ${code}`): Error & { code: string } {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

type Handler = (text: string, values: unknown[] | undefined) => Promise<PgResult>;

class FakeClient extends EventEmitter {
  processID: number | null = 4321;
  secretKey: number | null = -123456789;
  host = '127.0.0.1';
  port = 0;
  readonly statements: string[] = [];
  readonly values: (unknown[] | undefined)[] = [];
  readonly released: unknown[] = [];
  handler: Handler = async () => ok();

  query(text: string, values?: unknown[]): Promise<PgResult> {
    this.statements.push(text);
    this.values.push(values);
    return this.handler(text, values);
  }

  release(destroy?: boolean | Error): void {
    this.released.push(destroy);
  }
}

class FakePool {
  readonly clients: FakeClient[] = [];
  /** Set to make connect() wait: resolve it with the client (or reject). */
  hold: { resolve: (c: FakeClient) => void; reject: (e: unknown) => void } | undefined;
  holdNext = false;
  connectError: unknown;
  handler: Handler | undefined;
  cancelPort = 0;

  make(): FakeClient {
    const client = new FakeClient();
    client.port = this.cancelPort;
    if (this.handler) client.handler = this.handler;
    this.clients.push(client);
    return client;
  }

  connect(): Promise<FakeClient> {
    if (this.connectError !== undefined) return Promise.reject(this.connectError);
    if (this.holdNext)
      return new Promise((resolve, reject) => {
        this.hold = { resolve, reject };
      });
    return Promise.resolve(this.make());
  }
}

/** A never-settling statement that rejects with `error` when `settle` is called. */
function pending() {
  let settle!: (error: unknown) => void;
  const promise = new Promise<PgResult>((_, reject) => {
    settle = reject;
  });
  return { promise, settle };
}

// CancelRequests arrive here: each is the raw packet.
let cancelServer: Server;
let cancelPort = 0;
const cancels: Buffer[] = [];
const cancelWaiters: (() => void)[] = [];
beforeAll(async () => {
  cancelServer = createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => {
      cancels.push(Buffer.concat(chunks));
      for (const wake of cancelWaiters.splice(0)) wake();
      socket.end();
    });
  });
  await new Promise<void>((resolve) => cancelServer.listen(0, '127.0.0.1', resolve));
  cancelPort = (cancelServer.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((resolve) => cancelServer.close(resolve));
});
const nextCancel = () =>
  new Promise<void>((resolve) => {
    cancelWaiters.push(resolve);
  });

let clock: InstalledClock;
let pool: FakePool;
beforeEach(() => {
  clock = installFakeClock();
  pool = new FakePool();
  pool.cancelPort = cancelPort;
  cancels.length = 0;
});
afterEach(() => {
  clock.uninstall();
});

describe('isTransientPgError', () => {
  it.each([
    '08000',
    '08003',
    '08006',
    '08001',
    '08004',
    '08P01',
    '40001',
    '40P01',
    '57P01',
    '57P02',
    '57P03',
    '53300',
    '55P03',
  ])('%s is transient', (code) => {
    expect(isTransientPgError(pgError(code))).toBe(true);
    expect(isTransientPgError(new Error('wrapped', { cause: pgError(code) }))).toBe(true);
  });

  it.each([
    '23505', // unique_violation
    '23503', // foreign_key_violation
    '42601', // syntax_error
    '42P01', // undefined_table
    '57014', // query_canceled
    '22023', // invalid_parameter_value
    '53200', // out_of_memory: not in the list
    '25P02', // in_failed_sql_transaction
  ])('%s is not', (code) => {
    expect(isTransientPgError(pgError(code))).toBe(false);
  });

  it("recognises pg's connection errors (no code) and network errors", () => {
    for (const message of [
      'Connection terminated unexpectedly',
      'Client has encountered a connection error and is not queryable',
      'Connection terminated due to connection timeout',
      'timeout exceeded when trying to connect',
    ])
      expect(isTransientPgError(new Error(message))).toBe(true);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
    });
    expect(isTransientNetworkError(refused)).toBe(true);
    expect(isTransientPgError(refused)).toBe(true);
    expect(isTransientPgError(new AggregateError([new Error('x'), refused]))).toBe(true);
  });

  it('is false for everything else', () => {
    for (const value of [
      new Error('Connection terminated'), // our own end(): not the dependency's fault
      new Error('boom'),
      'ECONNRESET',
      null,
      undefined,
      42,
    ])
      expect(isTransientPgError(value)).toBe(false);
    const loop: Error & { cause?: unknown } = new Error('loop');
    loop.cause = loop;
    expect(isTransientPgError(loop)).toBe(false);
  });

  it('duck-types: anything with a transient SQLSTATE code counts, as pg errors are plain objects to it', () => {
    expect(isTransientPgError({ code: '08006' })).toBe(true);
  });

  it('looks inside an AggregateError for a transient SQLSTATE', () => {
    expect(isTransientPgError(new AggregateError([pgError('23505'), pgError('40P01')]))).toBe(true);
    expect(isTransientPgError(new AggregateError([pgError('23505'), pgError('42601')]))).toBe(
      false,
    );
  });
});

describe('query', () => {
  it('outside an attempt: one statement, the client back to the pool, no timeout set', async () => {
    pool.handler = async (text) => ok([{ text }]);
    const result = await query(pool, 'SELECT $1::int AS n', [1]);
    const client = pool.clients[0]!;
    expect(result.rows).toEqual([{ text: 'SELECT $1::int AS n' }]);
    expect(client.statements).toEqual(['SELECT $1::int AS n']);
    expect(client.values).toEqual([[1]]);
    expect(client.released).toEqual([undefined]);
    expect(client.listenerCount('error')).toBe(0);
  });

  it('in a bounded attempt: a statement timeout from the remaining time, reset before release', async () => {
    const backoff = new Backoff({ attemptTimeout: 250 });
    const result = await backoff.execute(() => query(pool, 'SELECT 1'));
    const client = pool.clients[0]!;
    expect(result.command).toBe('SELECT');
    expect(client.statements).toEqual([
      'SET statement_timeout = 250',
      'SELECT 1',
      'RESET statement_timeout',
    ]);
    expect(client.values).toEqual([undefined, undefined, undefined]);
    expect(client.released).toEqual([undefined]);
    expect(client.listenerCount('error')).toBe(0);
  });

  it('in an unbounded attempt: no statement timeout', async () => {
    const backoff = new Backoff({ maxTries: 2 });
    await backoff.execute(() => query(pool, 'SELECT 1'));
    expect(pool.clients[0]!.statements).toEqual(['SELECT 1']);
  });

  it('the timeout is what is left after waiting for a client, rounded down, at least 1', async () => {
    const backoff = new Backoff({ deadline: 1_000, attemptTimeout: 300 });
    pool.holdNext = true;
    const run = backoff.execute(() => query(pool, 'SELECT 1'));
    await clock.tickAsync(100);
    clock.tick(0.5);
    pool.hold!.resolve(pool.make());
    await run;
    expect(pool.clients[0]!.statements[0]).toBe('SET statement_timeout = 199');
  });

  it('an SQL error rejects as is; the timeout is still reset and the client goes back', async () => {
    const unique = pgError('23505', 'duplicate key');
    pool.handler = async (text) => {
      if (text.startsWith('INSERT')) throw unique;
      return ok();
    };
    const backoff = new Backoff({ attemptTimeout: 500, retryAll: true, maxTries: 1 });
    await expect(backoff.execute(() => query(pool, 'INSERT INTO t VALUES (1)'))).rejects.toBe(
      unique,
    );
    const client = pool.clients[0]!;
    expect(client.statements.at(-1)).toBe('RESET statement_timeout');
    expect(client.released).toEqual([undefined]);
  });

  it('an abort while waiting for a client wins at once; a client that arrives later goes back unused', async () => {
    pool.holdNext = true;
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    const outcome = backoff.execute(() => query(pool, 'SELECT 1')).catch((error: unknown) => error);
    await clock.tickAsync(200);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    const late = pool.make();
    pool.hold!.resolve(late);
    await clock.tickAsync(0);
    expect(late.statements).toEqual([]);
    expect(late.released).toEqual([undefined]);
    expect(late.listenerCount('error')).toBe(0);
  });

  it('a connect that fails after the abort is not an unhandled rejection', async () => {
    pool.holdNext = true;
    const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const outcome = backoff.execute(() => query(pool, 'SELECT 1')).catch((error: unknown) => error);
    await clock.tickAsync(100);
    await outcome;
    pool.hold!.reject(new Error('connect ECONNREFUSED'));
    await nextMacrotask();
  });

  it('a connect error is the attempt failure', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    pool.connectError = refused;
    await expect(new Backoff({ maxTries: 1 }).execute(() => query(pool, 'SELECT 1'))).rejects.toBe(
      refused,
    );
  });

  it('an abort while the statement runs: rejects at once, cancels that backend on a connection of its own, destroys the client', async () => {
    const statement = pending();
    pool.handler = async (text) => (text === 'SELECT pg_sleep(10)' ? statement.promise : ok());
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    const outcome = backoff
      .execute(() => query(pool, 'SELECT pg_sleep(10)'))
      .catch((error: unknown) => error);
    const cancelled = nextCancel();
    await clock.tickAsync(200);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    const client = pool.clients[0]!;
    expect(client.released).toEqual([true]);
    expect(client.statements).toEqual(['SET statement_timeout = 200', 'SELECT pg_sleep(10)']);
    await cancelled;
    expect(cancels).toHaveLength(1);
    const packet = cancels[0]!;
    expect(packet.length).toBe(16);
    expect(packet.readInt32BE(0)).toBe(16);
    expect(packet.readInt32BE(4)).toBe(80877102);
    expect(packet.readInt32BE(8)).toBe(4321);
    expect(packet.readInt32BE(12)).toBe(-123456789);
    // The cancelled statement's late rejection is handled.
    statement.settle(pgError('57014', 'canceling statement due to user request'));
    await nextMacrotask();
    expect(client.released).toEqual([true]);
  });

  it('without a backend key (another driver) the client is still destroyed on abort', async () => {
    const statement = pending();
    pool.handler = async (text) => (text === 'SELECT pg_sleep(10)' ? statement.promise : ok());
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const outcome = backoff
      .execute(() => {
        const run = query(pool, 'SELECT pg_sleep(10)');
        pool.clients[0]!.processID = null;
        return run;
      })
      .catch((error: unknown) => error);
    await clock.tickAsync(50);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    expect(pool.clients[0]!.released).toEqual([true]);
    expect(cancels).toHaveLength(0);
  });

  it("a client 'error' during checkout is the attempt's failure, not an unhandled event", async () => {
    const statement = pending();
    pool.handler = async (text) => (text === 'SELECT 1' ? statement.promise : ok());
    const backoff = new Backoff({ attemptTimeout: 1_000, maxTries: 1 });
    const outcome = backoff.execute(() => query(pool, 'SELECT 1')).catch((error: unknown) => error);
    await clock.tickAsync(1);
    const terminated = pgError('57P01', 'terminating connection due to administrator command');
    const client = pool.clients[0]!;
    client.emit('error', terminated);
    expect(await outcome).toBe(terminated);
    expect(isTransientPgError(await outcome)).toBe(true);
    // Broken: destroyed, never reset or returned.
    expect(client.statements).toEqual(['SET statement_timeout = 1000', 'SELECT 1']);
    expect(client.released).toEqual([true]);
    statement.settle(terminated);
    // A second error from the dying connection is still handled.
    client.emit('error', new Error('Connection terminated unexpectedly'));
    await nextMacrotask();
  });

  it("pg's callback form: an 'error' in the same turn as the checkout is already ours (no uncaught 'error' event)", async () => {
    // As pg-pool does: the callback runs inside the socket read that completed the connection,
    // and an ErrorResponse later in that read is emitted before any microtask runs.
    const terminated = pgError('57P01', 'terminating connection due to administrator command');
    const callbackPool = {
      connect(callback: (error: Error | undefined, client: FakeClient | undefined) => void): void {
        const client = pool.make();
        callback(undefined, client);
        expect(client.listenerCount('error')).toBe(1);
        client.emit('error', terminated);
      },
    };
    const outcome = query(callbackPool, 'SELECT 1').catch((error: unknown) => error);
    expect(await outcome).toBe(terminated);
    expect(pool.clients[0]!.released).toEqual([true]);
    expect(pool.clients[0]!.statements).toEqual([]);
  });

  it('a pool that answers through both the callback and a promise is taken once', async () => {
    const client = pool.make();
    const both = {
      connect(callback: (error: undefined, client: FakeClient) => void) {
        callback(undefined, client);
        return Promise.resolve(client);
      },
    };
    expect((await query(both, 'SELECT 1')).command).toBe('SELECT');
    expect(client.released).toEqual([undefined]);
  });

  it("the server's statement timeout at the attempt's end rejects with the attempt's own error", async () => {
    pool.handler = (text) =>
      text === 'SELECT pg_sleep(1)'
        ? new Promise((_, reject) =>
            setTimeout(
              () => reject(pgError('57014', 'canceling statement due to statement timeout')),
              198,
            ),
          )
        : Promise.resolve(ok());
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    const outcome = backoff
      .execute(() => query(pool, 'SELECT pg_sleep(1)'))
      .catch((error: unknown) => error);
    await clock.tickAsync(200);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
  });

  it('a 57014 well before the attempt ends (someone cancelled it) rejects as is', async () => {
    const cancelled = pgError('57014', 'canceling statement due to user request');
    pool.handler = (text) =>
      text === 'SELECT pg_sleep(1)'
        ? new Promise((_, reject) => setTimeout(() => reject(cancelled), 50))
        : Promise.resolve(ok());
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    const outcome = backoff
      .execute(() => query(pool, 'SELECT pg_sleep(1)'))
      .catch((error: unknown) => error);
    await clock.tickAsync(60);
    expect(await outcome).toBe(cancelled);
    expect(pool.clients[0]!.released).toEqual([undefined]);
  });

  it('a client whose timeout could not be reset is destroyed, the result stands', async () => {
    pool.handler = async (text) => {
      if (text.startsWith('RESET')) throw new Error('Connection terminated unexpectedly');
      return ok([{ n: 1 }]);
    };
    const result = await new Backoff({ attemptTimeout: 100 }).execute(() =>
      query(pool, 'SELECT 1 AS n'),
    );
    expect(result.rows).toEqual([{ n: 1 }]);
    expect(pool.clients[0]!.released).toEqual([true]);
  });

  it('an attempt already aborted starts nothing', async () => {
    const controller = new AbortController();
    const backoff = new Backoff({ signal: controller.signal });
    const outcome = backoff
      .execute(async () => {
        controller.abort(new Error('shutdown'));
        return query(pool, 'SELECT 1');
      })
      .catch((error: unknown) => error);
    expect(await outcome).toMatchObject({ message: 'shutdown' });
    expect(pool.clients).toHaveLength(0);
  });

  it('a client with a byte-array secret key (protocol 3.2) gets a CancelRequest with that key', async () => {
    const statement = pending();
    pool.handler = async (text) => (text === 'SELECT pg_sleep(10)' ? statement.promise : ok());
    const key = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const outcome = backoff
      .execute(() => {
        const run = query(pool, 'SELECT pg_sleep(10)');
        (pool.clients[0] as unknown as { secretKey: Uint8Array }).secretKey = key;
        return run;
      })
      .catch((error: unknown) => error);
    const cancelled = nextCancel();
    await clock.tickAsync(100);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    await cancelled;
    const packet = cancels[0]!;
    expect(packet.length).toBe(44);
    expect(packet.readInt32BE(0)).toBe(44);
    expect(packet.readInt32BE(4)).toBe(80877102);
    expect(packet.readInt32BE(8)).toBe(4321);
    expect([...packet.subarray(12)]).toEqual([...key]);
    expect(pool.clients[0]!.released).toEqual([true]);
    statement.settle(pgError('57014'));
  });

  it('a client without a usable secret key is destroyed on abort, with no CancelRequest', async () => {
    const statement = pending();
    pool.handler = async (text) => (text === 'SELECT pg_sleep(10)' ? statement.promise : ok());
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const outcome = backoff
      .execute(() => {
        const run = query(pool, 'SELECT pg_sleep(10)');
        pool.clients[0]!.secretKey = null;
        return run;
      })
      .catch((error: unknown) => error);
    await clock.tickAsync(50);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    expect(pool.clients[0]!.released).toEqual([true]);
    await nextMacrotask();
    expect(cancels).toHaveLength(0);
    statement.settle(pgError('57014'));
  });

  it("a client with no host is cancelled through 'localhost'", async () => {
    const statement = pending();
    pool.handler = async (text) => (text === 'SELECT pg_sleep(10)' ? statement.promise : ok());
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 1 });
    const outcome = backoff
      .execute(() => {
        const run = query(pool, 'SELECT pg_sleep(10)');
        pool.clients[0]!.host = '';
        return run;
      })
      .catch((error: unknown) => error);
    const cancelled = nextCancel();
    await clock.tickAsync(50);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    await cancelled;
    expect(cancels[0]!.readInt32BE(8)).toBe(4321);
    statement.settle(pgError('57014'));
  });

  it('a client on a Unix socket directory is cancelled through <dir>/.s.PGSQL.<port>, port 5432 by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asyncbackoff-pg-'));
    const received: Buffer[] = [];
    let arrived!: () => void;
    const done = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const unixServer = createServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('end', () => {
        received.push(Buffer.concat(chunks));
        socket.end();
        arrived();
      });
    });
    await new Promise<void>((resolve) => unixServer.listen(join(dir, '.s.PGSQL.5432'), resolve));
    try {
      const statement = pending();
      pool.handler = async (text) => (text === 'SELECT pg_sleep(10)' ? statement.promise : ok());
      const backoff = new Backoff({ attemptTimeout: 50, maxTries: 1 });
      const outcome = backoff
        .execute(() => {
          const run = query(pool, 'SELECT pg_sleep(10)');
          const client = pool.clients[0]! as unknown as { host: string; port: unknown };
          client.host = dir;
          client.port = undefined;
          return run;
        })
        .catch((error: unknown) => error);
      await clock.tickAsync(50);
      expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
      await done;
      expect(received).toHaveLength(1);
      expect(received[0]!.readInt32BE(8)).toBe(4321);
      expect(received[0]!.readInt32BE(12)).toBe(-123456789);
      statement.settle(pgError('57014'));
    } finally {
      await new Promise((resolve) => unixServer.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a client whose query() throws synchronously: the call rejects with that error', async () => {
    const bad = new TypeError('Client was passed a null or undefined query');
    pool.handler = () => {
      throw bad;
    };
    await expect(query(pool, 'SELECT 1')).rejects.toBe(bad);
    expect(pool.clients[0]!.released).toEqual([undefined]);
  });

  it('a pool whose callback gives neither an error nor a client fails the call', async () => {
    const empty = {
      connect(callback: (error: null, client: undefined) => void): void {
        callback(null, undefined);
      },
    };
    await expect(query(empty, 'SELECT 1')).rejects.toThrow('pool.connect() gave no client');
  });

  it('a pool whose promise rejects with nothing fails the call with an error that says so', async () => {
    const silent = { connect: () => Promise.reject(undefined) };
    await expect(query(silent, 'SELECT 1')).rejects.toThrow('pool.connect() failed');
  });

  it('a pool whose connect() throws fails the call with that error', async () => {
    const broken = new Error('pool is ended');
    const throwing = {
      connect(): never {
        throw broken;
      },
    };
    await expect(query(throwing, 'SELECT 1')).rejects.toBe(broken);
  });

  it('checks its arguments', async () => {
    await expect(query(null as never, 'SELECT 1')).rejects.toThrow(
      /query: 'pool' must be a pool with a connect\(\) method, got null/,
    );
    await expect(query(pool, 42 as never)).rejects.toThrow(
      /query: 'text' must be a string, got 42/,
    );
    await expect(query(pool, 'SELECT $1', 'x' as never)).rejects.toThrow(
      /query: 'values' must be an array, got 'x'/,
    );
    await expect(query(pool, 42 as never)).rejects.toBeInstanceOf(TypeError);
    await expect(query(undefined as never, 'SELECT 1')).rejects.toThrow(
      /query: 'pool' must be a pool with a connect\(\) method, got undefined/,
    );
  });
});

describe('transaction', () => {
  it('BEGIN with the server-side timeouts in one round trip, the statements, COMMIT, release', async () => {
    pool.handler = async (text) => ok([], text === 'COMMIT' ? 'COMMIT' : 'SELECT');
    const backoff = new Backoff({ attemptTimeout: 400 });
    const value = await backoff.execute(() =>
      transaction(
        pool,
        async (tx, signal) => {
          expect(signal.aborted).toBe(false);
          await tx.query('UPDATE a SET v = v - $1', [5]);
          await tx.query('UPDATE b SET v = v + $1', [5]);
          return 'done';
        },
        { isolation: 'serializable' },
      ),
    );
    const client = pool.clients[0]!;
    expect(value).toBe('done');
    expect(client.statements).toEqual([
      'BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL statement_timeout = 400; SET LOCAL idle_in_transaction_session_timeout = 400',
      'UPDATE a SET v = v - $1',
      'UPDATE b SET v = v + $1',
      'COMMIT',
    ]);
    expect(client.released).toEqual([undefined]);
    expect(client.listenerCount('error')).toBe(0);
  });

  it('outside an attempt: a plain BEGIN; read only and isolation options', async () => {
    pool.handler = async (text) => ok([], text === 'COMMIT' ? 'COMMIT' : 'SELECT');
    await transaction(pool, async () => 1, { isolation: 'repeatable read', readOnly: true });
    expect(pool.clients[0]!.statements).toEqual([
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
      'COMMIT',
    ]);
  });

  it('fn throws: ROLLBACK, the client goes back, the error is what fn threw', async () => {
    const mine = new Error('business rule');
    await expect(
      transaction(pool, async (tx) => {
        await tx.query('SELECT 1');
        throw mine;
      }),
    ).rejects.toBe(mine);
    const client = pool.clients[0]!;
    expect(client.statements).toEqual(['BEGIN', 'SELECT 1', 'ROLLBACK']);
    expect(client.released).toEqual([undefined]);
  });

  it('a COMMIT the server turned into a ROLLBACK rejects, with the failed statement as cause', async () => {
    const failed = pgError('23505', 'duplicate key');
    pool.handler = async (text) => {
      if (text.startsWith('INSERT')) throw failed;
      return ok([], text === 'COMMIT' ? 'ROLLBACK' : 'SELECT');
    };
    const outcome = await transaction(pool, async (tx) => {
      await tx.query('INSERT INTO t VALUES (1)').catch(() => undefined); // swallowed by fn
      return 'ok?';
    }).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/COMMIT rolled back/);
    expect((outcome as Error).cause).toBe(failed);
  });

  it('a serialization failure at COMMIT rejects with it (the policy retries it)', async () => {
    const conflict = pgError('40001', 'could not serialize access');
    let commits = 0;
    pool.handler = async (text) => {
      if (text === 'COMMIT' && ++commits === 1) throw conflict;
      return ok([], text === 'COMMIT' ? 'COMMIT' : 'SELECT');
    };
    const seen: unknown[] = [];
    const backoff = new Backoff({
      retryAll: true,
      giveup: (error) => !isTransientPgError(error),
      maxTries: 3,
      onRetry: ({ error }) => {
        seen.push(error);
      },
    });
    await expect(backoff.execute(() => transaction(pool, async () => 'v'))).resolves.toBe('v');
    expect(seen).toEqual([conflict]);
    expect(pool.clients).toHaveLength(2);
    expect(pool.clients[0]!.released).toEqual([undefined]);
  });

  it('an abort while fn waits on something else: rejects at once, the open transaction is destroyed', async () => {
    const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    let fnSignal: AbortSignal | undefined;
    let late: Promise<unknown> | undefined;
    const outcome = backoff
      .execute(() =>
        transaction(pool, async (tx, signal) => {
          fnSignal = signal;
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          late = tx.query('SELECT 1').catch((error: unknown) => error);
        }),
      )
      .catch((error: unknown) => error);
    await clock.tickAsync(100);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    expect(fnSignal!.aborted).toBe(true);
    const client = pool.clients[0]!;
    expect(client.released).toEqual([true]);
    await clock.tickAsync(1_000);
    expect(await late).toMatchObject({ message: 'transaction: the transaction has ended' });
    expect(client.statements).not.toContain('SELECT 1');
    expect(client.statements).not.toContain('COMMIT');
  });

  it("a client 'error' aborts fn's signal and is the failure", async () => {
    const backoff = new Backoff({ maxTries: 1 });
    const terminated = pgError('57P01');
    let fnSignal: AbortSignal | undefined;
    const outcome = backoff
      .execute(() =>
        transaction(pool, async (_tx, signal) => {
          fnSignal = signal;
          await new Promise(() => {});
        }),
      )
      .catch((error: unknown) => error);
    await clock.tickAsync(0);
    pool.clients[0]!.emit('error', terminated);
    expect(await outcome).toBe(terminated);
    expect(fnSignal!.reason).toBe(terminated);
    expect(pool.clients[0]!.released).toEqual([true]);
  });

  it('an abort while two statements of the transaction run: one CancelRequest, the client destroyed once', async () => {
    const statements = [pending(), pending()];
    pool.handler = async (text) =>
      text === 'SELECT 1'
        ? statements[0]!.promise
        : text === 'SELECT 2'
          ? statements[1]!.promise
          : ok();
    const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const outcome = backoff
      .execute(() =>
        transaction(pool, async (tx) => {
          await Promise.all([tx.query('SELECT 1'), tx.query('SELECT 2')]);
        }),
      )
      .catch((error: unknown) => error);
    const cancelled = nextCancel();
    await clock.tickAsync(100);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    await cancelled;
    await nextMacrotask();
    expect(cancels).toHaveLength(1);
    const client = pool.clients[0]!;
    expect(client.released).toEqual([true]);
    expect(client.statements).not.toContain('ROLLBACK');
    for (const statement of statements) statement.settle(pgError('57014'));
  });

  it("a statement timeout whose ROLLBACK outlasts the attempt rejects with the attempt's own error", async () => {
    const rollback = pending();
    pool.handler = (text) =>
      text === 'SELECT pg_sleep(1)'
        ? new Promise((_, reject) =>
            setTimeout(
              () => reject(pgError('57014', 'canceling statement due to statement timeout')),
              198,
            ),
          )
        : text === 'ROLLBACK'
          ? rollback.promise
          : Promise.resolve(ok());
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    const outcome = backoff
      .execute(() =>
        transaction(pool, async (tx) => {
          await tx.query('SELECT pg_sleep(1)');
        }),
      )
      .catch((error: unknown) => error);
    const cancelled = nextCancel();
    await clock.tickAsync(200);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    const client = pool.clients[0]!;
    expect(client.statements.at(-1)).toBe('ROLLBACK');
    expect(client.released).toEqual([true]);
    await cancelled;
    rollback.settle(pgError('57014'));
  });

  it("the server's idle-in-transaction timeout at the attempt's end rejects with the attempt's own error", async () => {
    // The server counts its idle timeout from the end of the last statement: with fn busy elsewhere,
    // the session can end (FATAL 25P03) a hair before the attempt's own timer runs.
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 2, retryOn: isTransientPgError });
    let runs = 0;
    const outcome = backoff
      .execute(() =>
        transaction(pool, async (tx) => {
          runs++;
          await tx.query('SELECT 1');
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }),
      )
      .catch((error: unknown) => error);
    await clock.tickAsync(198);
    pool.clients[0]!.emit(
      'error',
      pgError('25P03', 'terminating connection due to idle-in-transaction timeout'),
    );
    await clock.tickAsync(2);
    expect(runs).toBe(2); // the first attempt's timeout was retried, as a timeout is
    expect(pool.clients[0]!.released).toEqual([true]);
    await clock.tickAsync(200);
    const error = await outcome;
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    expect(error).toMatchObject({ attempt: 2 });
  });

  it('an idle-in-transaction timeout well before the attempt ends (the server was set so) rejects as is', async () => {
    const idle = pgError('25P03', 'terminating connection due to idle-in-transaction timeout');
    const outcome = new Backoff({ attemptTimeout: 200, maxTries: 1 })
      .execute(() =>
        transaction(pool, async (tx) => {
          await tx.query('SELECT 1');
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }),
      )
      .catch((error: unknown) => error);
    await clock.tickAsync(50);
    pool.clients[0]!.emit('error', idle);
    await clock.tickAsync(0);
    expect(await outcome).toBe(idle);
    expect(pool.clients[0]!.released).toEqual([true]);
  });

  it("a cancellation from inside fn, even a synchronous one, wins over fn's value: no COMMIT", async () => {
    const shutdown = new AbortController();
    const backoff = new Backoff({ signal: shutdown.signal, maxTries: 1 });
    let fnSignal: AbortSignal | undefined;
    const outcome = backoff
      .execute(() =>
        transaction(pool, (_tx, signal) => {
          fnSignal = signal;
          shutdown.abort(new Error('shutdown'));
          return 'value';
        }),
      )
      .catch((error: unknown) => error);
    expect(await outcome).toMatchObject({ message: 'shutdown' });
    expect(fnSignal!.aborted).toBe(true);
    const client = pool.clients[0]!;
    expect(client.statements).not.toContain('COMMIT');
    expect(client.released).toEqual([true]);
  });

  it('checks its arguments', async () => {
    await expect(transaction(pool, 'fn' as never)).rejects.toThrow(
      /transaction: 'fn' must be a function, got 'fn'/,
    );
    await expect(
      transaction(pool, async () => 1, { isolation: 'snapshot' as never }),
    ).rejects.toThrow(
      /'isolation' must be 'read committed', 'repeatable read' or 'serializable', got 'snapshot'/,
    );
    await expect(transaction(pool, async () => 1, { readOnly: 1 as never })).rejects.toThrow(
      /'readOnly' must be a boolean, got 1/,
    );
    await expect(transaction(pool, async () => 1, { level: 1 } as never)).rejects.toThrow(
      /transaction: unknown option 'level'/,
    );
    await expect(transaction(pool, async () => 1, null as never)).rejects.toThrow(
      /transaction: options must be an object, got null/,
    );
    await expect(transaction(pool, async (tx) => tx.query(1 as never))).rejects.toThrow(
      /transaction: tx.query: 'text' must be a string/,
    );
  });
});

describe('advisoryLock', () => {
  const signal = () => new AbortController().signal;

  it('acquire: pg_try_advisory_lock on a client of its own; release: unlock, then the client goes back', async () => {
    pool.handler = async () => ok([{ ok: true }]);
    const lock = advisoryLock(pool, 42);
    expect(lock.ttl).toBe(6_000);
    const lease = (await lock.acquire(signal()))!;
    expect(lease).toMatchObject({ key: 42, backendPid: 4321 });
    const client = pool.clients[0]!;
    expect(client.statements).toEqual(['SELECT pg_try_advisory_lock($1::bigint) AS ok']);
    expect(client.values).toEqual([['42']]);
    expect(client.released).toEqual([]);
    await expect(lock.renew!(lease, signal())).resolves.toBe(true);
    await lock.release(lease);
    expect(client.statements.slice(1)).toEqual([
      'SELECT 1',
      'SELECT pg_advisory_unlock($1::bigint) AS ok',
    ]);
    expect(client.released).toEqual([undefined]);
    await lock.release(lease); // twice is harmless
    expect(client.released).toEqual([undefined]);
    await expect(lock.renew!(lease, signal())).resolves.toBe(false);
  });

  it('string keys are hashed by the server; bigint keys are passed as text', async () => {
    pool.handler = async () => ok([{ ok: true }]);
    await advisoryLock(pool, 'nightly').acquire(signal());
    await advisoryLock(pool, -(2n ** 63n)).acquire(signal());
    expect(pool.clients[0]!.statements).toEqual([
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
    ]);
    expect(pool.clients[0]!.values).toEqual([['nightly']]);
    expect(pool.clients[1]!.values).toEqual([['-9223372036854775808']]);
  });

  it('busy: undefined, and the client goes back at once', async () => {
    pool.handler = async () => ok([{ ok: false }]);
    await expect(advisoryLock(pool, 1).acquire(signal())).resolves.toBeUndefined();
    expect(pool.clients[0]!.released).toEqual([undefined]);
  });

  it('an acquisition abandoned while its statement runs cancels it and destroys the client', async () => {
    const statement = pending();
    pool.handler = async () => statement.promise;
    const controller = new AbortController();
    const outcome = advisoryLock(pool, 7)
      .acquire(controller.signal)
      .catch((error: unknown) => error);
    await clock.tickAsync(0);
    const cancelled = nextCancel();
    controller.abort(new Error('attempt timed out'));
    expect(await outcome).toMatchObject({ message: 'attempt timed out' });
    expect(pool.clients[0]!.released).toEqual([true]);
    await cancelled;
    expect(cancels[0]!.readInt32BE(8)).toBe(4321);
    statement.settle(pgError('57014'));
  });

  it('an unlock that fails destroys the client (which frees the lock) and rejects with the error', async () => {
    const lost = new Error('Connection terminated unexpectedly');
    pool.handler = async (text) => {
      if (text.includes('unlock')) throw lost;
      return ok([{ ok: true }]);
    };
    const lock = advisoryLock(pool, 3);
    const lease = (await lock.acquire(signal()))!;
    await expect(lock.release(lease)).rejects.toBe(lost);
    expect(pool.clients[0]!.released).toEqual([true]);
  });

  it('a lease shows only what AdvisoryLease declares (logging it does not dump the client)', async () => {
    pool.handler = async () => ok([{ ok: true, pid: 77 }]);
    const lock = advisoryLock(pool, 5);
    const lease = (await lock.acquire(signal()))!;
    expect(Object.keys(lease).sort()).toEqual(['backendPid', 'key']);
    expect(JSON.stringify(lease)).not.toContain('statements');
    await lock.release(lease);
    await lock.release(lease); // once released, a second release does nothing
    expect(pool.clients[0]!.released).toEqual([undefined]);
  });

  it('an unlock that returns false destroys the client and rejects with LockLostError', async () => {
    pool.handler = async (text) => ok([{ ok: !text.includes('unlock') }]);
    const lock = advisoryLock(pool, 3);
    const lease = (await lock.acquire(signal()))!;
    await expect(lock.release(lease)).rejects.toBeInstanceOf(LockLostError);
    expect(pool.clients[0]!.released).toEqual([true]);
  });

  it('a session that died while held: renew says lost, release rejects with LockLostError', async () => {
    pool.handler = async () => ok([{ ok: true }]);
    const lock = advisoryLock(pool, 'k', { checkEvery: 500 });
    expect(lock.ttl).toBe(1_500);
    const lease = (await lock.acquire(signal()))!;
    const terminated = pgError('57P01');
    pool.clients[0]!.emit('error', terminated);
    await expect(lock.renew!(lease, signal())).resolves.toBe(false);
    const error = await lock.release(lease).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockLostError);
    expect((error as Error).cause).toBe(terminated);
    expect(pool.clients[0]!.released).toEqual([true]);
  });

  it('a renewal whose caller stops waiting leaves the session alone', async () => {
    let hold: (() => void) | undefined;
    pool.handler = async (text) => {
      if (text === 'SELECT 1') await new Promise<void>((resolve) => (hold = resolve));
      return ok([{ ok: true }]);
    };
    const lock = advisoryLock(pool, 9);
    const lease = (await lock.acquire(signal()))!;
    const controller = new AbortController();
    const renewal = lock.renew!(lease, controller.signal).catch((error: unknown) => error);
    await clock.tickAsync(0);
    controller.abort(new Error('body done'));
    expect(await renewal).toMatchObject({ message: 'body done' });
    expect(pool.clients[0]!.released).toEqual([]);
    hold!();
    await lock.release(lease);
    expect(pool.clients[0]!.released).toEqual([undefined]);
    expect(cancels).toHaveLength(0);
  });

  it('checkEvery: null means no ttl and no renew (withLock does not renew)', () => {
    const lock = advisoryLock(pool, 1, { checkEvery: null });
    expect(lock.ttl).toBeUndefined();
    expect(lock.renew).toBeUndefined();
    expect('renew' in lock).toBe(false);
  });

  it('acquire with a signal already aborted rejects with its reason and takes no client', async () => {
    const controller = new AbortController();
    controller.abort(new Error('too late'));
    await expect(advisoryLock(pool, 5).acquire(controller.signal)).rejects.toMatchObject({
      message: 'too late',
    });
    expect(pool.clients).toHaveLength(0);
  });

  it('a lease from a client that does not report its backend pid has backendPid undefined', async () => {
    pool.handler = async () => {
      pool.clients[0]!.processID = null;
      return ok([{ ok: true }]);
    };
    const lock = advisoryLock(pool, 8);
    const lease = (await lock.acquire(signal()))!;
    expect(lease.key).toBe(8);
    expect(lease.backendPid).toBeUndefined();
    await lock.release(lease);
  });

  it('a session that breaks during a renewal: renew says lost instead of rejecting', async () => {
    const check = pending();
    pool.handler = async (text) => (text === 'SELECT 1' ? check.promise : ok([{ ok: true }]));
    const lock = advisoryLock(pool, 10);
    const lease = (await lock.acquire(signal()))!;
    const renewal = lock.renew!(lease, signal());
    await clock.tickAsync(0);
    pool.clients[0]!.emit('error', pgError('57P01'));
    await expect(renewal).resolves.toBe(false);
    await expect(lock.release(lease)).rejects.toBeInstanceOf(LockLostError);
    expect(pool.clients[0]!.released).toEqual([true]);
    check.settle(pgError('57P01'));
  });

  it('a renewal that fails on a sound session rejects with the error', async () => {
    const failure = pgError('53200', 'out of memory');
    pool.handler = async (text) => {
      if (text === 'SELECT 1') throw failure;
      return ok([{ ok: true }]);
    };
    const lock = advisoryLock(pool, 11);
    const lease = (await lock.acquire(signal()))!;
    await expect(lock.renew!(lease, signal())).rejects.toBe(failure);
  });

  it('checkEvery: undefined is the default (a 6 s ttl)', () => {
    expect(advisoryLock(pool, 1, { checkEvery: undefined }).ttl).toBe(6_000);
    expect(advisoryLock(pool, 1, {}).ttl).toBe(6_000);
  });

  it('checks its arguments', async () => {
    expect(() => advisoryLock({} as never, 1)).toThrow(/advisoryLock: 'pool' must be a pool/);
    expect(() => advisoryLock(pool, 1.5)).toThrow(RangeError);
    expect(() => advisoryLock(pool, 2 ** 60)).toThrow(/'key' must be a safe integer/);
    expect(() => advisoryLock(pool, 2n ** 63n)).toThrow(/fit in a signed 64-bit integer/);
    expect(() => advisoryLock(pool, null as never)).toThrow(
      /advisoryLock: 'key' must be an integer, a bigint or a string, got null/,
    );
    expect(() => advisoryLock(pool, (() => 1) as never)).toThrow(/got a function$/);
    expect(() => advisoryLock(pool, function keyOf() {} as never)).toThrow(
      /got a function \(keyOf\)$/,
    );
    expect(() => advisoryLock(pool, [1] as never)).toThrow(/got an array$/);
    expect(() => advisoryLock(pool, 1, 'often' as never)).toThrow(
      /advisoryLock: options must be an object, got 'often' \(a string\)/,
    );
    expect(() => advisoryLock(pool, 1, [] as never)).toThrow(TypeError);
    expect(() => advisoryLock(pool, 1, { checkEvery: 0 })).toThrow(/'checkEvery' must be > 0/);
    expect(() => advisoryLock(pool, 1, { checkEvery: '1s' as never })).toThrow(TypeError);
    expect(() => advisoryLock(pool, 1, { ttl: 5 } as never)).toThrow(
      /advisoryLock: unknown option 'ttl'/,
    );
    const lock = advisoryLock(pool, 1);
    await expect(lock.acquire('x' as never)).rejects.toThrow(
      /advisoryLock.acquire: 'signal' must be an AbortSignal/,
    );
    await expect(lock.release({ key: 1, backendPid: 1 })).rejects.toThrow(
      /advisoryLock.release: 'lease' must be a lease this lock's acquire\(\) returned/,
    );
    pool.handler = async () => ok([{ ok: true }]);
    const foreign = (await advisoryLock(pool, 1).acquire(signal()))!;
    await expect(lock.renew!(foreign, signal())).rejects.toBeInstanceOf(TypeError);
  });
});

/** A statement that never settles until `resolve` or `reject` is called. */
function deferred() {
  let resolve!: (result: PgResult) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<PgResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Records how `promise` settled, so a test can tell "settled by now" from "still pending". */
function track(promise: Promise<unknown>) {
  const state: { settled: boolean; value?: unknown; error?: unknown } = { settled: false };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

const abortListeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

describe('isTransientPgError: what counts as a SQLSTATE, causes and cycles', () => {
  it('a code that merely starts with 08 is not a class-08 SQLSTATE (a SQLSTATE has 5 characters)', () => {
    expect(isTransientPgError({ code: '08006' })).toBe(true);
    for (const code of ['08', '0800', '080060', '08006 '])
      expect(isTransientPgError({ code })).toBe(false);
  });

  it('a cause that is not transient makes nothing transient', () => {
    expect(isTransientPgError(new Error('wrapped', { cause: pgError('23505') }))).toBe(false);
    expect(isTransientPgError(new Error('wrapped', { cause: new Error('boom') }))).toBe(false);
    expect(isTransientPgError(new Error('wrapped', { cause: 'ECONNRESET' }))).toBe(false);
  });

  it('ends on a cause cycle of two errors and on an AggregateError that contains itself', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isTransientPgError(a)).toBe(false);
    const aggregate = new AggregateError([], 'all failed') as AggregateError & {
      errors: unknown[];
    };
    aggregate.errors.push(aggregate, pgError('23505'));
    expect(isTransientPgError(aggregate)).toBe(false);
  });

  it('follows causes and aggregates exactly as deep as isTransientNetworkError does', () => {
    const depths: boolean[] = [];
    for (let n = 0; n <= 12; n++) {
      let pgCause: unknown = pgError('40001');
      let pgAggregate: unknown = pgError('40001');
      let netCause: unknown = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      for (let i = 0; i < n; i++) {
        pgCause = new Error(`wrap ${i}`, { cause: pgCause });
        pgAggregate = new AggregateError([pgAggregate]);
        netCause = new Error(`wrap ${i}`, { cause: netCause });
      }
      const expected = isTransientNetworkError(netCause);
      expect(isTransientPgError(pgCause)).toBe(expected);
      expect(isTransientPgError(pgAggregate)).toBe(expected);
      depths.push(expected);
    }
    // Both ends are exercised: near errors are found, very deep ones are not.
    expect(depths[0]).toBe(true);
    expect(depths.at(-1)).toBe(false);
  });
});

describe('query: how the pool answers', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['an object without then', {}],
  ])(
    'a pool that answers its callback later and returns %s from connect() works',
    async (_, returned) => {
      const client = pool.make();
      const later = {
        connect(callback: (error: undefined, client: FakeClient) => void): unknown {
          setTimeout(() => callback(undefined, client), 10);
          return returned;
        },
      };
      const run = query(later, 'SELECT 1');
      await clock.tickAsync(10);
      expect((await run).command).toBe('SELECT');
      expect(client.statements).toEqual(['SELECT 1']);
      expect(client.released).toEqual([undefined]);
    },
  );

  it('a pool whose connect() returns a callable thenable is answered through its then', async () => {
    const client = pool.make();
    const thenable = Object.assign(() => undefined, {
      // biome-ignore lint/suspicious/noThenProperty: a thenable that is a function is the point of the test
      then(resolve: (client: FakeClient) => void) {
        resolve(client);
      },
    });
    const state = track(query({ connect: () => thenable }, 'SELECT 1'));
    await clock.tickAsync(0);
    expect(state.settled).toBe(true);
    expect((state.value as PgResult).command).toBe('SELECT');
    expect(client.released).toEqual([undefined]);
  });

  it('a callback that passes an error fails the call, even with a client beside it', async () => {
    const failure = new Error('connect failed');
    const client = pool.make();
    const both = {
      connect(callback: (error: Error, client: FakeClient) => void): void {
        callback(failure, client);
      },
    };
    await expect(query(both, 'SELECT 1')).rejects.toBe(failure);
    expect(client.statements).toEqual([]);
  });

  it('a statement without values is sent as query(text) alone, with values as query(text, values)', async () => {
    const client = pool.make();
    const arities: number[] = [];
    const send = client.query.bind(client);
    client.query = (...args: [string, unknown[]?]) => {
      arities.push(args.length);
      return send(...args);
    };
    const single = { connect: () => Promise.resolve(client) };
    await new Backoff({ attemptTimeout: 100 }).execute(() => query(single, 'SELECT 1'));
    await query(single, 'SELECT $1::int', [1]);
    expect(client.statements).toEqual([
      'SET statement_timeout = 100',
      'SELECT 1',
      'RESET statement_timeout',
      'SELECT $1::int',
    ]);
    expect(arities).toEqual([1, 1, 1, 2]);
  });
});

describe("query: a 57014 at the attempt's end", () => {
  const sleepThenFail = (ms: number, error: unknown) => (text: string) =>
    text === 'SELECT pg_sleep(1)'
      ? new Promise<PgResult>((_, reject) => setTimeout(() => reject(error), ms))
      : Promise.resolve(ok());

  it("any other error in the attempt's last milliseconds rejects as is, at once", async () => {
    const unique = pgError('23505', 'duplicate key');
    pool.handler = sleepThenFail(198, unique);
    const backoff = new Backoff({ attemptTimeout: 200, retryAll: true, maxTries: 1 });
    let run!: Promise<unknown>;
    const outcome = track(
      backoff.execute(() => {
        run = query(pool, 'SELECT pg_sleep(1)');
        return run;
      }),
    );
    await clock.tickAsync(198);
    expect(outcome).toMatchObject({ settled: true, error: unique });
    await expect(run).rejects.toBe(unique);
  });

  it('outside any attempt a 57014 rejects as is', async () => {
    const cancelled = pgError('57014', 'canceling statement due to statement timeout');
    pool.handler = async () => {
      throw cancelled;
    };
    await expect(query(pool, 'SELECT 1')).rejects.toBe(cancelled);
    expect(pool.clients[0]!.released).toEqual([undefined]);
  });

  it('inside an attempt, a statement that rejects with null rejects with null', async () => {
    pool.handler = (text) => (text === 'SELECT 1' ? Promise.reject(null) : Promise.resolve(ok()));
    let run!: Promise<unknown>;
    await new Backoff({ attemptTimeout: 100, maxTries: 1 })
      .execute(() => {
        run = query(pool, 'SELECT 1');
        return run;
      })
      .catch(() => undefined);
    await expect(run).rejects.toBeNull();
  });

  it("a 57014 with exactly 5 ms left is still the attempt's own timeout", async () => {
    pool.handler = sleepThenFail(
      195,
      pgError('57014', 'canceling statement due to statement timeout'),
    );
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    const outcome = backoff
      .execute(() => query(pool, 'SELECT pg_sleep(1)'))
      .catch((error: unknown) => error);
    await clock.tickAsync(200);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
  });

  it("the query's own promise settles at the attempt's abort, with its error, leaving no timer or listener", async () => {
    pool.handler = sleepThenFail(
      198,
      pgError('57014', 'canceling statement due to statement timeout'),
    );
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    let state!: ReturnType<typeof track>;
    let signal!: AbortSignal;
    const outcome = backoff
      .execute(() => {
        signal = currentAttempt()!.signal;
        const run = query(pool, 'SELECT pg_sleep(1)');
        state = track(run);
        return run;
      })
      .catch((error: unknown) => error);
    await clock.tickAsync(200);
    expect(state.settled).toBe(true);
    expect(state.error).toBeInstanceOf(AttemptTimeoutError);
    expect(await outcome).toBe(state.error);
    expect(clock.countTimers()).toBe(0);
    expect(abortListeners(signal)).toBe(0);
  });

  it('a query left running by an attempt that succeeded: its late 57014 stands once the slack has passed, no listener left', async () => {
    const cancelled = pgError('57014', 'canceling statement due to statement timeout');
    pool.handler = sleepThenFail(198, cancelled);
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    let state!: ReturnType<typeof track>;
    let signal!: AbortSignal;
    await expect(
      backoff.execute(() => {
        signal = currentAttempt()!.signal;
        state = track(query(pool, 'SELECT pg_sleep(1)'));
        return 'answered';
      }),
    ).resolves.toBe('answered');
    await clock.tickAsync(198);
    expect(state.settled).toBe(false); // the attempt's abort could still be due
    await clock.tickAsync(20);
    expect(signal.aborted).toBe(false);
    expect(state).toMatchObject({ settled: true, error: cancelled });
    expect(abortListeners(signal)).toBe(0);
    expect(pool.clients[0]!.statements.at(-1)).toBe('RESET statement_timeout');
    expect(pool.clients[0]!.released).toEqual([undefined]);
  });
});

describe('advisoryLock: the signal, the session and the messages', () => {
  const signal = () => new AbortController().signal;

  it('an acquisition abandoned while waiting for a client rejects at once, keeps no listener, and the late client goes back unused', async () => {
    pool.holdNext = true;
    const controller = new AbortController();
    const state = track(advisoryLock(pool, 1).acquire(controller.signal));
    await clock.tickAsync(0);
    expect(abortListeners(controller.signal)).toBe(1);
    controller.abort(new Error('attempt timed out'));
    await clock.tickAsync(0);
    expect(state.settled).toBe(true);
    expect(state.error).toMatchObject({ message: 'attempt timed out' });
    expect(abortListeners(controller.signal)).toBe(0);
    const late = pool.make();
    pool.hold!.resolve(late);
    await clock.tickAsync(0);
    expect(late.statements).toEqual([]);
    expect(late.released).toEqual([undefined]);
    expect(late.listenerCount('error')).toBe(0);
  });

  it('acquire leaves no listener on its signal: held, busy, failed statement, failed connect', async () => {
    const held = new AbortController();
    pool.handler = async () => ok([{ ok: true }]);
    const lock = advisoryLock(pool, 1);
    const lease = (await lock.acquire(held.signal))!;
    expect(abortListeners(held.signal)).toBe(0);
    await lock.release(lease);

    const busy = new AbortController();
    pool.handler = async () => ok([{ ok: false }]);
    await expect(lock.acquire(busy.signal)).resolves.toBeUndefined();
    expect(abortListeners(busy.signal)).toBe(0);

    const failing = new AbortController();
    const failure = pgError('42501', 'permission denied');
    pool.handler = async () => {
      throw failure;
    };
    await expect(lock.acquire(failing.signal)).rejects.toBe(failure);
    expect(abortListeners(failing.signal)).toBe(0);

    const refused = new AbortController();
    pool.connectError = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    await expect(lock.acquire(refused.signal)).rejects.toBe(pool.connectError);
    expect(abortListeners(refused.signal)).toBe(0);
  });

  it("aborting a finished renewal's signal leaves the session alone", async () => {
    pool.handler = async () => ok([{ ok: true }]);
    const lock = advisoryLock(pool, 2);
    const lease = (await lock.acquire(signal()))!;
    const controller = new AbortController();
    await expect(lock.renew!(lease, controller.signal)).resolves.toBe(true);
    expect(abortListeners(controller.signal)).toBe(0);
    controller.abort(new Error('body done'));
    const client = pool.clients[0]!;
    expect(client.released).toEqual([]);
    await lock.release(lease);
    expect(client.statements.at(-1)).toBe('SELECT pg_advisory_unlock($1::bigint) AS ok');
    expect(client.released).toEqual([undefined]);
  });

  it('renew with a signal already aborted rejects with its reason and sends nothing', async () => {
    pool.handler = async () => ok([{ ok: true }]);
    const lock = advisoryLock(pool, 3);
    const lease = (await lock.acquire(signal()))!;
    const controller = new AbortController();
    controller.abort(new Error('stopped'));
    await expect(lock.renew!(lease, controller.signal)).rejects.toMatchObject({
      message: 'stopped',
    });
    expect(pool.clients[0]!.statements).toEqual(['SELECT pg_try_advisory_lock($1::bigint) AS ok']);
    expect(pool.clients[0]!.released).toEqual([]);
  });

  it('renew while the release is unlocking says lost and sends nothing', async () => {
    const unlock = deferred();
    pool.handler = async (text) => (text.includes('unlock') ? unlock.promise : ok([{ ok: true }]));
    const lock = advisoryLock(pool, 4);
    const lease = (await lock.acquire(signal()))!;
    const releasing = lock.release(lease);
    await clock.tickAsync(0);
    await expect(lock.renew!(lease, signal())).resolves.toBe(false);
    expect(pool.clients[0]!.statements).not.toContain('SELECT 1');
    unlock.resolve(ok([{ ok: true }]));
    await releasing;
    expect(pool.clients[0]!.released).toEqual([undefined]);
  });

  it('the first connection error is the one a release reports; the message names the string key', async () => {
    pool.handler = async () => ok([{ ok: true }]);
    const lock = advisoryLock(pool, 'nightly');
    const lease = (await lock.acquire(signal()))!;
    const first = pgError('57P01', 'terminating connection due to administrator command');
    pool.clients[0]!.emit('error', first);
    pool.clients[0]!.emit('error', new Error('Connection terminated unexpectedly'));
    const error = await lock.release(lease).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockLostError);
    expect((error as Error).message).toBe(
      "advisory lock 'nightly': the session holding it ended before the release",
    );
    expect((error as Error).cause).toBe(first);
  });

  it('an unlock that returns false: the LockLostError message names the integer key', async () => {
    pool.handler = async (text) => ok([{ ok: !text.includes('unlock') }]);
    for (const key of [3, 5n]) {
      const lock = advisoryLock(pool, key);
      const lease = (await lock.acquire(signal()))!;
      await expect(lock.release(lease)).rejects.toThrow(
        new LockLostError(`advisory lock ${key}: it was not held by its session at the release`),
      );
    }
  });

  it('a string key is unlocked through the same hash', async () => {
    pool.handler = async () => ok([{ ok: true }]);
    const lock = advisoryLock(pool, 'nightly');
    await lock.release((await lock.acquire(signal()))!);
    expect(pool.clients[0]!.statements).toEqual([
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
      'SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS ok',
    ]);
    expect(pool.clients[0]!.values).toEqual([['nightly'], ['nightly']]);
  });

  it('a lock or unlock statement that returns no row: busy, and not held at the release', async () => {
    pool.handler = async () => ok([]);
    await expect(advisoryLock(pool, 6).acquire(signal())).resolves.toBeUndefined();
    expect(pool.clients[0]!.released).toEqual([undefined]);
    pool.handler = async (text) => ok(text.includes('unlock') ? [] : [{ ok: true }]);
    const lock = advisoryLock(pool, 6);
    const lease = (await lock.acquire(signal()))!;
    await expect(lock.release(lease)).rejects.toBeInstanceOf(LockLostError);
    expect(pool.clients[1]!.released).toEqual([true]);
  });

  it('integer keys: the whole signed 64-bit range and nothing outside it', async () => {
    pool.handler = async () => ok([{ ok: true }]);
    await advisoryLock(pool, 2n ** 63n - 1n).acquire(signal());
    expect(pool.clients[0]!.values).toEqual([['9223372036854775807']]);
    expect(() => advisoryLock(pool, -(2n ** 63n) - 1n)).toThrow(
      new RangeError(
        "advisoryLock: 'key' must fit in a signed 64-bit integer, got -9223372036854775809 (a bigint)",
      ),
    );
    expect(() => advisoryLock(pool, 2n ** 63n)).toThrow(RangeError);
  });

  it('checkEvery: up to a third of the largest timer (its ttl is then exactly that timer), and the message says so', () => {
    const largest = 2_147_483_647;
    expect(advisoryLock(pool, 1, { checkEvery: largest / 3 }).ttl).toBe(largest);
    for (const checkEvery of [0, Math.floor(largest / 3) + 1])
      expect(() => advisoryLock(pool, 1, { checkEvery })).toThrow(
        new RangeError(
          `advisoryLock: 'checkEvery' must be > 0 and <= 715827882 ms, got ${checkEvery}`,
        ),
      );
  });

  it("renew's argument error names renew", async () => {
    pool.handler = async () => ok([{ ok: true }]);
    const foreign = (await advisoryLock(pool, 1).acquire(signal()))!;
    await expect(advisoryLock(pool, 1).renew!(foreign, signal())).rejects.toThrow(
      /^advisoryLock\.renew: 'lease' must be a lease this lock's acquire\(\) returned, got an object/,
    );
  });
});

describe('transaction: ending it', () => {
  const committing = async (text: string) => ok([], text === 'COMMIT' ? 'COMMIT' : 'SELECT');

  it("a bad pool's error names transaction", async () => {
    await expect(transaction(null as never, async () => 1)).rejects.toThrow(
      /^transaction: 'pool' must be a pool with a connect\(\) method, got null$/,
    );
  });

  it('a cancellation between the checkout and the BEGIN: nothing is sent and the client goes back', async () => {
    const shutdown = new AbortController();
    const client = pool.make();
    const cancelling = {
      connect(callback: (error: undefined, client: FakeClient) => void): void {
        callback(undefined, client);
        shutdown.abort(new Error('shutdown'));
      },
    };
    const backoff = new Backoff({ signal: shutdown.signal, attemptTimeout: 1_000, maxTries: 1 });
    let fnCalls = 0;
    let run!: Promise<unknown>;
    const outcome = backoff
      .execute(() => {
        run = transaction(cancelling, async () => ++fnCalls);
        return run;
      })
      .catch((error: unknown) => error);
    expect(await outcome).toMatchObject({ message: 'shutdown' });
    await expect(run).rejects.toMatchObject({ message: 'shutdown' });
    expect(fnCalls).toBe(0);
    expect(client.statements).toEqual([]);
    expect(client.released).toEqual([undefined]);
  });

  it('a stray tx.query once fn has resolved (during the COMMIT) is refused, not sent', async () => {
    let stray: Promise<unknown> | undefined;
    let txOf: { query(text: string): Promise<unknown> } | undefined;
    pool.handler = async (text) => {
      if (text === 'COMMIT') stray = txOf!.query('SELECT late').catch((error: unknown) => error);
      return committing(text);
    };
    await expect(
      transaction(pool, async (tx) => {
        txOf = tx;
        return 'v';
      }),
    ).resolves.toBe('v');
    expect(await stray).toMatchObject({ message: 'transaction: the transaction has ended' });
    expect(pool.clients[0]!.statements).toEqual(['BEGIN', 'COMMIT']);
  });

  it('a COMMIT turned into a ROLLBACK is the end: no ROLLBACK after it, and the client goes back', async () => {
    pool.handler = async (text) => {
      if (text.startsWith('INSERT')) throw pgError('23505', 'duplicate key');
      return ok([], text === 'COMMIT' ? 'ROLLBACK' : 'SELECT');
    };
    await expect(
      transaction(pool, async (tx) => {
        await tx.query('INSERT INTO t VALUES (1)').catch(() => undefined);
      }),
    ).rejects.toThrow('transaction: COMMIT rolled back: a statement in the transaction had failed');
    const client = pool.clients[0]!;
    expect(client.statements).toEqual(['BEGIN', 'INSERT INTO t VALUES (1)', 'COMMIT']);
    expect(client.released).toEqual([undefined]);
  });

  it("a ROLLBACK that fails destroys the client; a late client 'error' no longer reaches fn's signal", async () => {
    const mine = new Error('business rule');
    pool.handler = async (text) => {
      if (text === 'ROLLBACK') throw pgError('XX000', 'internal error');
      return ok();
    };
    let fnSignal!: AbortSignal;
    await expect(
      transaction(pool, async (_tx, signal) => {
        fnSignal = signal;
        throw mine;
      }),
    ).rejects.toBe(mine);
    const client = pool.clients[0]!;
    expect(client.statements).toEqual(['BEGIN', 'ROLLBACK']);
    expect(client.released).toEqual([true]);
    client.emit('error', new Error('Connection terminated unexpectedly'));
    expect(fnSignal.aborted).toBe(false);
  });

  it("leaves no abort listener on the attempt's signal", async () => {
    pool.handler = committing;
    const counts = await new Backoff({ attemptTimeout: 1_000 }).execute(async () => {
      const { signal } = currentAttempt()!;
      const before = abortListeners(signal);
      await transaction(pool, async (tx) => tx.query('SELECT 1'));
      await transaction(pool, async () => {
        throw new Error('rolled back');
      }).catch(() => undefined);
      return [before, abortListeners(signal)];
    });
    expect(counts[1]).toBe(counts[0]);
  });

  it("keeps no listener on fn's signal once fn resolved, rejected or was abandoned", async () => {
    pool.handler = committing;
    const signals: AbortSignal[] = [];
    await transaction(pool, async (_tx, signal) => {
      signals.push(signal);
    });
    await transaction(pool, async (_tx, signal) => {
      signals.push(signal);
      throw new Error('rolled back');
    }).catch(() => undefined);
    const outcome = new Backoff({ attemptTimeout: 100, maxTries: 1 })
      .execute(() =>
        transaction(pool, (_tx, signal) => {
          signals.push(signal);
          return new Promise<never>(() => {});
        }),
      )
      .catch((error: unknown) => error);
    await clock.tickAsync(100);
    expect(await outcome).toBeInstanceOf(AttemptTimeoutError);
    expect(signals).toHaveLength(3);
    expect(signals[2]!.aborted).toBe(true);
    expect(signals.map(abortListeners)).toEqual([0, 0, 0]);
  });

  it("a 57014 whose ROLLBACK outlasts the attempt: the transaction's own promise settles at the abort", async () => {
    const rollback = pending();
    pool.handler = (text) =>
      text === 'SELECT pg_sleep(1)'
        ? new Promise((_, reject) =>
            setTimeout(
              () => reject(pgError('57014', 'canceling statement due to statement timeout')),
              198,
            ),
          )
        : text === 'ROLLBACK'
          ? rollback.promise
          : Promise.resolve(ok());
    const backoff = new Backoff({ attemptTimeout: 200, maxTries: 1 });
    let state!: ReturnType<typeof track>;
    const outcome = backoff
      .execute(() => {
        const run = transaction(pool, async (tx) => {
          await tx.query('SELECT pg_sleep(1)');
        });
        state = track(run);
        return run;
      })
      .catch((error: unknown) => error);
    const cancelled = nextCancel();
    await clock.tickAsync(200);
    expect(state.settled).toBe(true);
    expect(state.error).toBeInstanceOf(AttemptTimeoutError);
    expect(await outcome).toBe(state.error);
    await cancelled;
    rollback.settle(pgError('57014'));
  });
});

describe('the CancelRequest connection (node:net stubbed)', () => {
  class StubSocket extends EventEmitter {
    timeout: { ms: number; onTimeout: () => void } | undefined;
    destroyed = false;
    written: Buffer | undefined;
    unrefed = false;
    constructor(readonly options: unknown) {
      super();
    }
    setTimeout(ms: number, onTimeout: () => void): this {
      this.timeout = { ms, onTimeout };
      return this;
    }
    destroy(): this {
      this.destroyed = true;
      return this;
    }
    end(data?: Buffer): this {
      this.written = data;
      return this;
    }
    unref(): this {
      this.unrefed = true;
      return this;
    }
  }

  /** A fresh asyncbackoff/postgres whose `node:net` connect() hands out stub sockets. */
  async function withStubbedNet() {
    const sockets: StubSocket[] = [];
    vi.resetModules();
    vi.doMock('node:net', async (importOriginal) => ({
      ...(await importOriginal<typeof import('node:net')>()),
      connect: (options: unknown) => {
        const socket = new StubSocket(options);
        sockets.push(socket);
        return socket;
      },
    }));
    const adapter = await import('asyncbackoff/postgres');
    const core = await import('asyncbackoff');
    return { adapter, core, sockets };
  }

  afterEach(() => {
    vi.doUnmock('node:net');
    vi.resetModules();
  });

  it("connects to the client's host and port (localhost and 5432 when absent), drops the socket after 5 s, handles its errors", async () => {
    const { adapter, sockets } = await withStubbedNet();
    const cases: [string | undefined, number | undefined, { host: string; port: number }][] = [
      ['db.internal', 6543, { host: 'db.internal', port: 6543 }],
      ['', 6543, { host: 'localhost', port: 6543 }],
      [undefined, undefined, { host: 'localhost', port: 5432 }],
    ];
    for (const [host, port, expected] of cases) {
      const statement = pending();
      const client = Object.assign(new FakeClient(), { host, port });
      client.handler = async () => statement.promise;
      const controller = new AbortController();
      const outcome = adapter
        .advisoryLock({ connect: () => Promise.resolve(client) }, 1)
        .acquire(controller.signal)
        .catch((error: unknown) => error);
      await clock.tickAsync(0);
      controller.abort(new Error('attempt timed out'));
      expect(await outcome).toMatchObject({ message: 'attempt timed out' });
      expect(client.released).toEqual([true]);
      const socket = sockets.at(-1)!;
      expect(socket.options).toEqual(expected);
      expect(socket.unrefed).toBe(true);
      expect(() => socket.emit('error', new Error('connect ECONNREFUSED'))).not.toThrow();
      socket.emit('connect');
      expect(socket.written!.readInt32BE(4)).toBe(80877102);
      expect(socket.written!.readInt32BE(8)).toBe(4321);
      expect(socket.timeout?.ms).toBe(5_000);
      expect(socket.destroyed).toBe(false);
      socket.timeout!.onTimeout();
      expect(socket.destroyed).toBe(true);
      statement.settle(pgError('57014'));
    }
    expect(sockets).toHaveLength(cases.length);
  });

  it('a statement still running on a client that went back to the pool is never cancelled, nor the client destroyed', async () => {
    const { adapter, core, sockets } = await withStubbedNet();
    const stray = pending();
    pool.handler = async (text) =>
      text === 'SELECT slow' ? stray.promise : ok([], text === 'COMMIT' ? 'COMMIT' : 'SELECT');
    let strayOutcome: Promise<unknown> | undefined;
    const backoff = new core.Backoff({ attemptTimeout: 100, maxTries: 1 });
    const outcome = backoff
      .execute(async () => {
        await adapter.transaction(pool, async (tx) => {
          strayOutcome = tx.query('SELECT slow').catch((error: unknown) => error);
          return 'committed';
        });
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      })
      .catch((error: unknown) => error);
    await clock.tickAsync(100);
    expect(await outcome).toBeInstanceOf(core.AttemptTimeoutError);
    expect(await strayOutcome).toBeInstanceOf(core.AttemptTimeoutError);
    const client = pool.clients[0]!;
    expect(client.statements).toEqual([
      'BEGIN; SET LOCAL statement_timeout = 100; SET LOCAL idle_in_transaction_session_timeout = 100',
      'SELECT slow',
      'COMMIT',
    ]);
    expect(client.released).toEqual([undefined]);
    expect(sockets).toHaveLength(0);
    stray.settle(pgError('57014'));
  });

  it('an abort while two statements run sends exactly one CancelRequest', async () => {
    const { adapter, core, sockets } = await withStubbedNet();
    const statements = [pending(), pending()];
    pool.handler = async (text) =>
      text === 'SELECT 1'
        ? statements[0]!.promise
        : text === 'SELECT 2'
          ? statements[1]!.promise
          : ok();
    const backoff = new core.Backoff({ attemptTimeout: 100, maxTries: 1 });
    const outcome = backoff
      .execute(() =>
        adapter.transaction(pool, async (tx) => {
          await Promise.all([tx.query('SELECT 1'), tx.query('SELECT 2')]);
        }),
      )
      .catch((error: unknown) => error);
    await clock.tickAsync(100);
    expect(await outcome).toBeInstanceOf(core.AttemptTimeoutError);
    expect(sockets).toHaveLength(1);
    expect(pool.clients[0]!.released).toEqual([true]);
    for (const statement of statements) statement.settle(pgError('57014'));
  });
});
