import { Backoff, exponential } from 'asyncbackoff';
import { type AdvisoryLease, advisoryLock, isTransientPgError } from 'asyncbackoff/postgres';
import pg from 'pg';

export const pool = new pg.Pool({ max: 10 });
pool.on('error', (error) => console.warn(`idle PostgreSQL client lost: ${error.message}`));

/** One instance for every lock the service takes: their statistics add up in one place. */
export const locks = new Backoff({
  deadline: 10_000, // waited 10 s and still busy: LockUnavailableError
  attemptTimeout: 500, // one try at the lock (a round trip to PostgreSQL) gets 500 ms
  pause: exponential({ initial: 2, max: 20, jitter: 'full' }), // waiters spread out, never in step
  retryOn: isTransientPgError, // a restart is worth another try; a syntax error is not
});

/**
 * Runs `body` while this process holds the session advisory lock `name`. The session is checked
 * every 2 s while `body` runs; `signal` aborts if it is gone.
 */
export function withAdvisoryLock<R>(
  name: string,
  body: (lease: AdvisoryLease, signal: AbortSignal) => Promise<R>,
): Promise<R> {
  return locks.withLock(advisoryLock(pool, name), body);
}
