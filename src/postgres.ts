/**
 * `asyncbackoff/postgres`: PostgreSQL calls that behave under a `Backoff` — an error classifier
 * (`isTransientPgError`), one query or one transaction under the current attempt (`query`,
 * `transaction`), and a session advisory lock for `withLock` (`advisoryLock`).
 *
 * No runtime dependency: `pg` (node-postgres) is described by the structural types below, so any
 * pool with `connect()` handing out clients with `query`, `release` and an `'error'` event works.
 *
 * What every call here guarantees, whatever happens to the attempt:
 * - an abort during `pool.connect()` is honoured at once; a client that arrives later goes back
 *   to the pool unused;
 * - the server gets a statement timeout from the attempt's remaining time (an integer ≥ 1, never
 *   0 or Infinity), scoped so it never reaches the next user of the connection;
 * - on abort, the running statement is cancelled with PostgreSQL's own CancelRequest, sent on a
 *   connection of its own for that backend (no pool slot, no queueing behind the very queries it
 *   cancels), and the client is destroyed instead of returned: a late cancel can never hit a
 *   backend that was handed to someone else;
 * - a client `'error'` while checked out (a terminated backend, a lost socket) becomes the
 *   failure of the call in progress, never an unhandled `'error'` event.
 */
import { connect as netConnect } from 'node:net';
import {
  currentAttempt,
  isTransientNetworkError,
  LockLostError,
  serverTimeout,
} from 'asyncbackoff';
// Pure helpers, bundled into this entry (as in asyncbackoff/redis): no state shared with the core.
import { checkOptions, describe } from './validate.js';

/** What a query resolves with (the part of pg's `QueryResult` used here). */
export interface PgResult<R = any> {
  rows: R[];
  rowCount: number | null;
  command: string;
}

/** A checked-out client, structurally (pg's `PoolClient`). */
export interface PgPoolClient {
  /** Runs one statement, with `$1`, `$2`, … bound to `values`. */
  query(text: string, values?: any[]): Promise<PgResult>;
  /** Back to the pool; with a truthy argument the pool destroys it instead. */
  release(destroy?: boolean | Error): void;
  /** Listens for the client's `'error'` event (a backend terminated under it, say). */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Stops listening for `'error'`. */
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
  /** The backend's process id and cancel key (pg sets them from BackendKeyData). */
  readonly processID?: number | null | undefined;
  readonly secretKey?: number | Uint8Array | null | undefined;
  /** Where the client is connected: a host name, or a Unix socket directory starting with `/`. */
  readonly host?: string | undefined;
  readonly port?: number | undefined;
}

/** A pool, structurally (pg's `Pool`). */
export interface PgPool {
  /**
   * Checks a client out of the pool. pg's callback form is what the adapter calls (see
   * `checkout`); a pool that ignores the callback and returns a promise works too.
   */
  connect(
    callback: (
      error: Error | undefined | null,
      client: PgPoolClient | undefined,
      done?: unknown,
    ) => void,
  ): unknown;
}

// ---------------------------------------------------------------------------------------------
// Classifying errors

/** SQLSTATEs (outside class 08) after which the same statement may succeed if tried again. */
const TRANSIENT_SQLSTATES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown (a terminated backend, a server shutting down)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '53300', // too_many_connections
  '55P03', // lock_not_available (lock_timeout, NOWAIT)
]);

/** pg's own errors for a lost or unusable connection; they carry no code. */
const TRANSIENT_MESSAGES: ReadonlySet<string> = new Set([
  'Connection terminated unexpectedly',
  'Client has encountered a connection error and is not queryable',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
]);

const MAX_CAUSE_DEPTH = 8;

function pgTransient(error: unknown, depth: number): boolean {
  if (depth > MAX_CAUSE_DEPTH || typeof error !== 'object' || error === null) return false;
  const { code, message, cause, errors } = error as {
    code?: unknown;
    message?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof code === 'string') {
    if (code.length === 5 && (code.startsWith('08') || TRANSIENT_SQLSTATES.has(code))) return true;
  } else if (typeof message === 'string' && TRANSIENT_MESSAGES.has(message)) return true;
  if (Array.isArray(errors))
    for (const inner of errors) if (pgTransient(inner, depth + 1)) return true;
  return cause !== undefined && cause !== error && pgTransient(cause, depth + 1);
}

/**
 * Whether `error` (or an error in its `cause` chain) is a PostgreSQL failure another try may
 * fix: SQLSTATE class 08 (connection exceptions), 40001 (serialization failure), 40P01
 * (deadlock), 57P01/57P02/57P03 (terminated backend, crash, server starting or shutting down),
 * 53300 (too many connections), 55P03 (lock not available); a transient network error
 * (`isTransientNetworkError`: ECONNREFUSED, ECONNRESET, …); pg's "Connection terminated
 * unexpectedly", "Client has encountered a connection error and is not queryable" and its
 * connection timeouts. Never a constraint violation, a syntax error, a cancelled statement
 * (57014) or anything else about the statement itself.
 *
 * @example
 * ```ts
 * const db = new Backoff({ deadline: 5_000, retryOn: isTransientPgError });
 * ```
 */
export function isTransientPgError(error: unknown): boolean {
  return pgTransient(error, 0) || isTransientNetworkError(error);
}

// ---------------------------------------------------------------------------------------------
// A checked-out client under a signal

/** How long the CancelRequest connection may take before it is dropped. */
const CANCEL_SOCKET_TIMEOUT = 5_000;
const CANCEL_REQUEST_CODE = 80877102;

/**
 * Sends PostgreSQL's CancelRequest for `client`'s backend on a connection of its own (the way
 * libpq's PQcancel does), so that it never waits for a pool slot. Returns whether it was sent.
 */
function cancelBackend(client: PgPoolClient): boolean {
  const { processID, secretKey } = client;
  if (typeof processID !== 'number') return false;
  let key: Buffer;
  if (typeof secretKey === 'number') {
    key = Buffer.alloc(4);
    key.writeInt32BE(secretKey | 0, 0);
  } else if (secretKey instanceof Uint8Array) key = Buffer.from(secretKey);
  else return false;
  const packet = Buffer.alloc(12 + key.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(processID, 8);
  key.copy(packet, 12);
  const host = typeof client.host === 'string' && client.host !== '' ? client.host : 'localhost';
  const port = typeof client.port === 'number' ? client.port : 5432;
  const socket = host.startsWith('/')
    ? netConnect({ path: `${host}/.s.PGSQL.${port}` })
    : netConnect({ host, port });
  socket.setTimeout(CANCEL_SOCKET_TIMEOUT, () => socket.destroy());
  // The server closes the connection once it has read the request. If it cannot be reached, the
  // backend is gone with it (or unreachable for us anyway); the client is destroyed regardless.
  socket.on('error', () => {});
  socket.once('connect', () => socket.end(packet));
  socket.unref();
  return true;
}

/**
 * One checkout of a pool client: every statement runs through `run`, which rejects at once when
 * the signal aborts (cancelling the statement on the server and destroying the client) or when
 * the client reports an `'error'`.
 */
class Session {
  /** The first connection error the client reported while checked out. */
  broken: { error: unknown } | undefined = undefined;
  /** Released or destroyed: the client is no longer ours. */
  ended = false;
  /** The last statement error, for a COMMIT that turned into a ROLLBACK. */
  lastError: unknown = undefined;
  private readonly pending = new Set<(error: unknown) => void>();
  private readonly brokenListeners = new Set<(error: unknown) => void>();

  private readonly onError = (error: Error): void => {
    if (this.broken !== undefined) return;
    this.broken = { error };
    for (const reject of [...this.pending]) reject(error);
    for (const listener of [...this.brokenListeners]) listener(error);
  };

  constructor(readonly client: PgPoolClient) {
    client.on('error', this.onError);
  }

  /** Calls `listener` if the connection breaks while checked out; returns an unsubscribe. */
  onBroken(listener: (error: unknown) => void): () => void {
    this.brokenListeners.add(listener);
    return () => this.brokenListeners.delete(listener);
  }

  /**
   * Runs one statement. On abort it rejects at once with the abort reason and, by default,
   * cancels the statement and destroys the client; `cancel: false` leaves the statement to finish
   * (a liveness check whose caller merely stopped waiting).
   */
  run(
    text: string,
    values: unknown[] | undefined,
    signal: AbortSignal | undefined,
    cancel = true,
  ): Promise<PgResult> {
    if (this.ended)
      return Promise.reject(new Error('asyncbackoff/postgres: the client was already released'));
    if (this.broken !== undefined) return Promise.reject(this.broken.error);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<PgResult>((resolve, reject) => {
      let done = false;
      const finish = () => {
        done = true;
        this.pending.delete(fail);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (error: unknown) => {
        if (done) return;
        finish();
        reject(error);
      };
      // Removed by finish(): it never runs after the statement settled.
      const onAbort = () => {
        finish();
        if (cancel) this.abandon();
        reject(signal!.reason);
      };
      this.pending.add(fail);
      signal?.addEventListener('abort', onAbort, { once: true });
      let running: Promise<PgResult>;
      try {
        running = Promise.resolve(
          values === undefined ? this.client.query(text) : this.client.query(text, values),
        );
      } catch (error) {
        running = Promise.reject(error);
      }
      running.then(
        (result) => {
          if (done) return;
          finish();
          resolve(result);
        },
        (error: unknown) => {
          this.lastError = error;
          fail(error);
        },
      );
    });
  }

  /** The statement in flight is abandoned: cancel it on the server and never reuse the client. */
  private abandon(): void {
    if (this.ended) return;
    cancelBackend(this.client);
    this.destroy();
  }

  destroy(): void {
    if (this.ended) return;
    this.ended = true;
    // Our 'error' listener stays: whatever the dying connection still reports is handled.
    this.client.release(true);
  }

  /** Back to the pool if the connection is sound, else destroyed. */
  release(): void {
    if (this.ended) return;
    if (this.broken !== undefined) return this.destroy();
    this.ended = true;
    this.client.removeListener('error', this.onError);
    this.client.release();
  }
}

/**
 * `pool.connect()` under `signal`: an abort wins at once; a client that arrives later is released
 * unused.
 *
 * pg's callback form is used where the pool has one: its callback runs in the same turn as the
 * ReadyForQuery that completed the connection, so our `'error'` listener is on the client before
 * the rest of that socket read is parsed. Through the promise form the listener would come a
 * microtask later, and an ErrorResponse in the same read (57P01 from a backend terminated as it
 * started) would be an `'error'` event nobody listens to: an uncaught exception.
 */
function checkout(pool: PgPool, signal: AbortSignal | undefined): Promise<Session> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<Session>((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      settled = true;
      reject(signal!.reason);
    };
    const arrived = (client: PgPoolClient) => {
      signal?.removeEventListener('abort', onAbort);
      if (settled) return client.release();
      settled = true;
      resolve(new Session(client));
    };
    const failed = (error: unknown) => {
      signal?.removeEventListener('abort', onAbort);
      if (settled) return; // the attempt already ended with the abort
      settled = true;
      reject(error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // A pool may answer through the callback, the promise, or (a wrapper) both: the first wins.
    let answered = false;
    const answer = (error: unknown, client: PgPoolClient | undefined) => {
      if (answered) return;
      answered = true;
      if (error != null || client === undefined)
        failed(error ?? new Error('pool.connect() gave no client'));
      else arrived(client);
    };
    let returned: unknown;
    try {
      returned = pool.connect((error, client) => answer(error, client));
    } catch (error) {
      return answer(error, undefined);
    }
    if (isPromiseLike(returned))
      returned.then(
        (client) => answer(undefined, client as PgPoolClient),
        (error: unknown) => answer(error ?? new Error('pool.connect() failed'), undefined),
      );
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * What the server reports when a timeout it was given from the attempt's time fires:
 * `statement_timeout` (57014, query_canceled) and `idle_in_transaction_session_timeout` (25P03,
 * which also ends the session).
 */
const SERVER_TIMEOUTS: ReadonlySet<unknown> = new Set(['57014', '25P03']);

/**
 * A server-side timeout fired at (or a hair before) the attempt's own end: the attempt's abort is
 * due now. Report that, as the engine would, rather than a 57014 or 25P03 that no filter retries.
 * (The server counts its idle timeout from the end of the last statement, so with `fn` busy
 * elsewhere the session can be ended a few ms before or after the attempt's own timer runs.)
 */
async function ourTimeout(error: unknown, signal: AbortSignal | undefined): Promise<unknown> {
  const attempt = currentAttempt();
  if (
    signal === undefined ||
    attempt === undefined ||
    attempt.signal !== signal ||
    !SERVER_TIMEOUTS.has((error as { code?: unknown } | null)?.code)
  )
    return error;
  if (!signal.aborted) {
    // More than a few ms left: someone else cancelled it (pg_cancel_backend); that error stands.
    const left = attempt.remaining;
    if (left > OUR_TIMEOUT_SLACK) return error;
    await new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      // The attempt's own timer is due by then. On a busy event loop its verdict waits for the
      // check phase (the turn's I/O is read first), which comes after this timer: wait for it too.
      timer = setTimeout(() => setImmediate(done), left + OUR_TIMEOUT_SLACK);
    });
  }
  return signal.aborted ? signal.reason : error;
}
const OUR_TIMEOUT_SLACK = 5;

function checkPool(where: string, pool: unknown): asserts pool is PgPool {
  if (typeof pool !== 'object' || pool === null || typeof (pool as PgPool).connect !== 'function')
    throw new TypeError(
      `${where}: 'pool' must be a pool with a connect() method, got ${describe(pool)}`,
    );
}

function checkStatement(where: string, text: unknown, values: unknown): void {
  if (typeof text !== 'string')
    throw new TypeError(`${where}: 'text' must be a string, got ${describe(text)}`);
  if (values !== undefined && !Array.isArray(values))
    throw new TypeError(`${where}: 'values' must be an array, got ${describe(values)}`);
}

/** The attempt's signal and whether its time is bounded (the server then gets a timeout). */
function attemptBounds(): { signal: AbortSignal | undefined; bounded: boolean } {
  const attempt = currentAttempt();
  if (attempt === undefined) return { signal: undefined, bounded: false };
  attempt.signal.throwIfAborted();
  return { signal: attempt.signal, bounded: attempt.remaining !== Number.POSITIVE_INFINITY };
}

// ---------------------------------------------------------------------------------------------
// query

/**
 * Runs one statement on a client from `pool` under the current attempt (`currentAttempt()`), and
 * returns pg's result. Inside an attempt:
 *
 * - an abort while waiting for a client rejects at once with the abort reason; a client that
 *   arrives later goes back to the pool unused;
 * - the attempt's signal is checked after `connect()`;
 * - when the attempt has a time limit, the server gets `statement_timeout` = `serverTimeout()`
 *   (an integer ≥ 1 ms) for this statement only: it is `RESET` before the client goes back, and a
 *   client that could not be reset is destroyed, so it never reaches the next user;
 * - an abort while the statement runs rejects at once with the abort reason, cancels the
 *   statement on the server (a CancelRequest for that backend, on a connection of its own) and
 *   destroys the client instead of returning it;
 * - a client `'error'` while checked out rejects with that error (retriable with
 *   {@link isTransientPgError}) and destroys the client;
 * - the server's own statement timeout firing as the attempt ends rejects with the attempt's
 *   abort reason (an `AttemptTimeoutError`, ...), not with SQLSTATE 57014.
 *
 * Outside any attempt it is `pool.connect()`, one statement and `release()`, with the same
 * error handling.
 *
 * @param values parameters for `$1`, `$2`, ...
 * @throws (rejects with) pg's error as is, the abort reason, or a TypeError for bad arguments.
 *
 * @example
 * ```ts
 * const findUser = db.wrap(async (id: string) => {
 *   const { rows } = await query<User>(pool, 'SELECT * FROM users WHERE id = $1', [id]);
 *   return rows[0];
 * });
 * ```
 */
export async function query<R = any>(
  pool: PgPool,
  text: string,
  values?: unknown[],
): Promise<PgResult<R>> {
  checkPool('query', pool);
  checkStatement('query', text, values);
  const { signal, bounded } = attemptBounds();
  const session = await checkout(pool, signal);
  let reset = false;
  try {
    if (bounded) {
      // Computed after connect(): waiting for a client used part of the attempt's time.
      await session.run(`SET statement_timeout = ${serverTimeout()}`, undefined, signal);
      reset = true;
    }
    return (await session.run(text, values, signal)) as PgResult<R>;
  } catch (error) {
    throw await ourTimeout(error, signal);
  } finally {
    if (reset && !session.ended && session.broken === undefined) {
      try {
        await session.run('RESET statement_timeout', undefined, signal);
      } catch {
        // Whatever stopped the reset, the client cannot be trusted with our timeout: it goes.
        session.destroy();
      }
    }
    session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// transaction

/** Isolation levels of {@link TransactionOptions}. */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

/** Options of {@link transaction}. */
export interface TransactionOptions {
  /**
   * `BEGIN ISOLATION LEVEL …`; serialization failures (40001) of `'repeatable read'` and
   * `'serializable'` are retried by the policy with `retryOn: isTransientPgError`.
   * @defaultValue the server's `default_transaction_isolation` (normally read committed)
   */
  readonly isolation?: IsolationLevel | undefined;
  /**
   * `BEGIN … READ ONLY`.
   * @defaultValue `false`
   */
  readonly readOnly?: boolean | undefined;
}

/** What `transaction`'s function gets: statements on the transaction's client, under its guarantees. */
export interface PgTransaction {
  /** Runs one statement in the transaction; rejects once the transaction was abandoned or ended. */
  query<R = any>(text: string, values?: unknown[]): Promise<PgResult<R>>;
}

const ISOLATION: Readonly<Record<IsolationLevel, string>> = {
  'read committed': 'READ COMMITTED',
  'repeatable read': 'REPEATABLE READ',
  serializable: 'SERIALIZABLE',
};
const TRANSACTION_KEYS = ['isolation', 'readOnly'];

/** Rejects with `signal`'s reason as soon as it aborts, else settles like `promise`. */
function untilAborted<T>(promise: PromiseLike<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve(promise).then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Runs `fn` in one transaction (BEGIN … COMMIT) on a client from `pool`, under the current
 * attempt, with the guarantees of {@link query}: an abort honoured while waiting for a client
 * and while anything runs (the transaction's client is then destroyed, which rolls it back on the
 * server), a client `'error'` as the failure, and server-side timeouts from the attempt's
 * remaining time. With a time limit, `SET LOCAL statement_timeout` and `SET LOCAL
 * idle_in_transaction_session_timeout` go with the BEGIN (in one round trip), so even a frozen
 * process cannot hold the transaction's locks past the attempt, and nothing outlives the
 * transaction.
 *
 * `fn(tx, signal)` runs the transaction's statements with `tx.query`; `signal` aborts when the
 * attempt does or the connection breaks. When `fn` resolves, the transaction commits and
 * `transaction` resolves with `fn`'s value; when `fn` throws, it rolls back and rejects with what
 * `fn` threw. A COMMIT that the server turned into a ROLLBACK (a statement failed and `fn` caught
 * its error) rejects with an Error whose `cause` is that statement's error.
 *
 * Retrying is the policy's job: with `retryOn: isTransientPgError`, serialization failures and
 * deadlocks (40001, 40P01), from any statement or from COMMIT, run `fn` again in a new transaction.
 * A connection lost during COMMIT leaves its outcome unknown; make the transaction idempotent.
 *
 * @throws (rejects with) `fn`'s error, pg's error, the abort reason, or a TypeError/RangeError for
 * bad arguments.
 *
 * @example
 * ```ts
 * const transfer = db.wrap((from: number, to: number, amount: number) =>
 *   transaction(pool, async (tx) => {
 *     await tx.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, from]);
 *     await tx.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [amount, to]);
 *   }, { isolation: 'serializable' }),
 * );
 * ```
 */
export async function transaction<R>(
  pool: PgPool,
  fn: (tx: PgTransaction, signal: AbortSignal) => R | PromiseLike<R>,
  options?: TransactionOptions,
): Promise<R> {
  checkPool('transaction', pool);
  if (typeof fn !== 'function')
    throw new TypeError(`transaction: 'fn' must be a function, got ${describe(fn)}`);
  let begin = 'BEGIN';
  if (options !== undefined) {
    checkOptions('transaction', options, TRANSACTION_KEYS);
    const { isolation, readOnly } = options;
    if (isolation !== undefined) {
      if (!Object.hasOwn(ISOLATION, isolation))
        throw new TypeError(
          `transaction: 'isolation' must be 'read committed', 'repeatable read' or 'serializable', got ${describe(isolation)}`,
        );
      begin += ` ISOLATION LEVEL ${ISOLATION[isolation]}`;
    }
    if (readOnly !== undefined && typeof readOnly !== 'boolean')
      throw new TypeError(`transaction: 'readOnly' must be a boolean, got ${describe(readOnly)}`);
    if (readOnly === true) begin += ' READ ONLY';
  }

  const { signal, bounded } = attemptBounds();
  const session = await checkout(pool, signal);
  // fn's signal: the attempt's, and the connection's health.
  const controller = new AbortController();
  const forward = () => controller.abort(signal!.reason);
  signal?.addEventListener('abort', forward, { once: true });
  const unsubscribe = session.onBroken((error) => controller.abort(error));
  let ended = false;
  const tx: PgTransaction = {
    query: <T = any>(text: string, values?: unknown[]) => {
      try {
        checkStatement('transaction: tx.query', text, values);
      } catch (error) {
        return Promise.reject(error);
      }
      if (ended) return Promise.reject(new Error('transaction: the transaction has ended'));
      return session.run(text, values, signal) as Promise<PgResult<T>>;
    },
  };
  // From the BEGIN on, the client may hold an open transaction: it must end in COMMIT, ROLLBACK
  // or a destroyed client, never go back to the pool as it is.
  let open = false;
  try {
    if (bounded) {
      const ms = serverTimeout();
      begin += `; SET LOCAL statement_timeout = ${ms}; SET LOCAL idle_in_transaction_session_timeout = ${ms}`;
    }
    open = true;
    await session.run(begin, undefined, signal);
    let value: R;
    try {
      value = await untilAborted(
        new Promise<R>((resolve) => resolve(fn(tx, controller.signal))),
        controller.signal,
      );
    } finally {
      ended = true;
    }
    const commit = await session.run('COMMIT', undefined, signal);
    open = false;
    if (commit.command === 'ROLLBACK')
      throw new Error(
        'transaction: COMMIT rolled back: a statement in the transaction had failed',
        {
          cause: session.lastError,
        },
      );
    return value;
  } catch (error) {
    if (open && !session.ended && session.broken === undefined && !controller.signal.aborted) {
      try {
        await session.run('ROLLBACK', undefined, signal);
      } catch {
        session.destroy(); // an open transaction must never go back to the pool
      }
    } else if (open) session.destroy();
    throw await ourTimeout(error, signal);
  } finally {
    ended = true;
    unsubscribe();
    signal?.removeEventListener('abort', forward);
    session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// advisoryLock

/** An advisory-lock key: a 64-bit integer (number or bigint), or a string hashed by the server. */
export type AdvisoryLockKey = number | bigint | string;

/** What `advisoryLock(...).acquire` resolves with while the lock is held. */
export interface AdvisoryLease {
  /** The key, as given. */
  readonly key: AdvisoryLockKey;
  /** The PostgreSQL backend holding the lock (its session holds it), if the client reports it. */
  readonly backendPid: number | undefined;
}

/** Options of {@link advisoryLock}. */
export interface AdvisoryLockOptions {
  /**
   * While `withLock`'s body runs, check this often (ms) that the session holding the lock is
   * alive; if it is not, the body's signal aborts with a `LockLostError`. `null`: no checks.
   * (Advisory locks do not expire: the lock's `ttl` is 3 × this, so that `withLock` renews every
   * `checkEvery` ms.)
   * @defaultValue `2_000`
   */
  readonly checkEvery?: number | null | undefined;
}

/** A session advisory lock in the shape `backoff.withLock` takes. */
export interface AdvisoryLock {
  /** The lease, or `undefined` when another session holds the lock (busy: retried after the pause). */
  acquire(signal: AbortSignal): Promise<AdvisoryLease | undefined>;
  /** Unlocks, then returns the client to the pool (destroys it, which frees the lock, if unlocking fails). */
  release(lease: AdvisoryLease): Promise<void>;
  /**
   * Whether the session holding the lease is still alive (so the lock is still held). Absent with
   * `checkEvery: null`.
   */
  renew?: ((lease: AdvisoryLease, signal: AbortSignal) => Promise<boolean>) | undefined;
  /** 3 × `checkEvery`; absent with `checkEvery: null`. */
  readonly ttl?: number | undefined;
  readonly key: AdvisoryLockKey;
}

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;
const MAX_TIMER_MS = 2_147_483_647;

class Lease implements AdvisoryLease {
  declare released: boolean;
  declare readonly session: Session;
  declare readonly owner: AdvisoryLock;
  constructor(
    readonly key: AdvisoryLockKey,
    readonly backendPid: number | undefined,
    session: Session,
    owner: AdvisoryLock,
  ) {
    // The lock's own bookkeeping, not enumerable: logging a lease shows what it declares, not
    // the pg client behind it.
    Object.defineProperties(this, {
      session: { value: session },
      owner: { value: owner },
      released: { value: false, writable: true },
    });
  }
}

/**
 * A PostgreSQL session advisory lock on `key` for `backoff.withLock`: `acquire` takes a client
 * of its own from `pool` and runs `pg_try_advisory_lock` (never waits on the server: busy is
 * `undefined`, retried by the policy after its pause); the lease holds that client, and so the
 * lock, until `release`, which runs `pg_advisory_unlock` and returns the client, or destroys it
 * if unlocking fails (ending the session frees the lock). A holder that dies frees the lock at
 * once: the server ends its session when the connection drops. An acquisition abandoned by its
 * attempt (timeout, deadline, cancellation) cancels its statement and destroys its client, so it
 * can never leave a lock behind that nobody owns.
 *
 * Integer keys share PostgreSQL's single-bigint key space (`pg_try_advisory_lock(bigint)`);
 * string keys are hashed by the server with `hashtextextended(key, 0)`.
 *
 * @param pool a pg `Pool` (or anything with `connect()`); each held lock uses one of its clients.
 * @throws TypeError / RangeError for a bad pool, key or option.
 *
 * @example
 * ```ts
 * await jobs.withLock(advisoryLock(pool, 'nightly-report'), async (lease, signal) => {
 *   await buildReport(signal);
 * });
 * ```
 */
export function advisoryLock(
  pool: PgPool,
  key: AdvisoryLockKey,
  options?: AdvisoryLockOptions,
): AdvisoryLock {
  checkPool('advisoryLock', pool);
  let lockSql: string;
  let unlockSql: string;
  let values: unknown[];
  if (typeof key === 'string') {
    lockSql = 'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok';
    unlockSql = 'SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS ok';
    values = [key];
  } else if (typeof key === 'number' || typeof key === 'bigint') {
    if (typeof key === 'number' && !Number.isSafeInteger(key))
      throw new RangeError(
        `advisoryLock: 'key' must be a safe integer, a bigint or a string, got ${describe(key)}`,
      );
    const big = BigInt(key);
    if (big < INT8_MIN || big > INT8_MAX)
      throw new RangeError(
        `advisoryLock: 'key' must fit in a signed 64-bit integer, got ${describe(key)}`,
      );
    lockSql = 'SELECT pg_try_advisory_lock($1::bigint) AS ok';
    unlockSql = 'SELECT pg_advisory_unlock($1::bigint) AS ok';
    values = [big.toString()];
  } else
    throw new TypeError(
      `advisoryLock: 'key' must be an integer, a bigint or a string, got ${describe(key)}`,
    );
  let checkEvery: number | null = 2_000;
  if (options !== undefined) {
    checkOptions('advisoryLock', options, ['checkEvery']);
    const given = options.checkEvery;
    if (given === null) checkEvery = null;
    else if (given !== undefined) {
      if (typeof given !== 'number')
        throw new TypeError(
          `advisoryLock: 'checkEvery' must be a number of milliseconds or null, got ${describe(given)}`,
        );
      if (!(given > 0 && given * 3 <= MAX_TIMER_MS))
        throw new RangeError(
          `advisoryLock: 'checkEvery' must be > 0 and <= ${Math.floor(MAX_TIMER_MS / 3)} ms, got ${describe(given)}`,
        );
      checkEvery = given;
    }
  }
  const what = `advisory lock ${typeof key === 'string' ? `'${key}'` : String(key)}`;

  const own = (method: string, lease: unknown): Lease => {
    if (!(lease instanceof Lease) || lease.owner !== lock)
      throw new TypeError(
        `advisoryLock.${method}: 'lease' must be a lease this lock's acquire() returned, got ${describe(lease)}`,
      );
    return lease;
  };

  const lock: AdvisoryLock = {
    key,
    ttl: checkEvery === null ? undefined : checkEvery * 3,

    async acquire(signal: AbortSignal): Promise<AdvisoryLease | undefined> {
      if (!(signal instanceof AbortSignal))
        throw new TypeError(
          `advisoryLock.acquire: 'signal' must be an AbortSignal, got ${describe(signal)}`,
        );
      const session = await checkout(pool, signal);
      let held = false;
      try {
        const { rows } = await session.run(lockSql, values, signal);
        held = rows[0]?.ok === true;
      } catch (error) {
        session.release(); // destroyed already if aborted or broken
        throw error;
      }
      if (!held) {
        session.release();
        return undefined;
      }
      const pid = session.client.processID;
      return new Lease(key, typeof pid === 'number' ? pid : undefined, session, lock);
    },

    async release(lease: AdvisoryLease): Promise<void> {
      const held = own('release', lease);
      if (held.released) return;
      held.released = true;
      const { session } = held;
      if (session.broken !== undefined) {
        session.destroy();
        throw new LockLostError(`${what}: the session holding it ended before the release`, {
          cause: session.broken.error,
        });
      }
      let unlocked: boolean;
      try {
        const { rows } = await session.run(unlockSql, values, undefined);
        unlocked = rows[0]?.ok === true;
      } catch (error) {
        session.destroy(); // ending the session frees the lock
        throw error;
      }
      if (!unlocked) {
        session.destroy();
        throw new LockLostError(`${what}: it was not held by its session at the release`);
      }
      session.release();
    },

    renew: async (lease: AdvisoryLease, signal: AbortSignal): Promise<boolean> => {
      const held = own('renew', lease);
      if (held.released || held.session.broken !== undefined || held.session.ended) return false;
      try {
        // A session lock lives exactly as long as its session: alive means held.
        await held.session.run('SELECT 1', undefined, signal, false);
        return true;
      } catch (error) {
        if (held.session.broken !== undefined) return false;
        throw error;
      }
    },
  };
  if (checkEvery === null) {
    // withLock renews only with a ttl, and refuses a renew without one.
    delete lock.renew;
    delete (lock as { ttl?: number }).ttl;
  }
  return Object.freeze(lock);
}
