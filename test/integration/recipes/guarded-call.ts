import { Backoff, circuitBreaker, exponential } from 'asyncbackoff';
import { isTransientPgError, query } from 'asyncbackoff/postgres';
import pg from 'pg';

interface User {
  id: string;
  name: string;
}

export const pool = new pg.Pool({ max: 10 });
// Idle clients that lose their connection are reported here (the pool replaces them). A client
// that is checked out is query()'s: its failure becomes the failure of that query.
pool.on('error', (error) => console.warn(`idle PostgreSQL client lost: ${error.message}`));

// While PostgreSQL is down, calls fail at once with BrokenCircuitError instead of piling up on it;
// every 500 ms one call is let through to see whether it is back.
export const breaker = circuitBreaker({ whenOpen: 'fail', halfOpenAfter: 500 });

// Each try 250 ms (the server is given the same limit), all of them 1 s; only errors that another
// try may fix are retried: connection loss, a restart, a serialization failure, a deadlock, ...
export const db = new Backoff({
  attemptTimeout: 250,
  deadline: 1_000,
  maxTries: 3,
  pause: exponential({ initial: 50, max: 400, jitter: 'full' }),
  retryOn: isTransientPgError,
  breaker,
});

export const findUser = db.wrap(async (id: string) => {
  const { rows } = await query<User>(pool, 'SELECT id, name FROM users WHERE id = $1', [id]);
  return rows[0];
});
