import { Backoff, circuitBreaker, exponential, rerunFailed } from 'asyncbackoff';
import { isTransientPgError, query } from 'asyncbackoff/postgres';
import pg from 'pg';

interface Order {
  id: number;
  total: number;
}

export const pool = new pg.Pool({ max: 20, application_name: 'order-import' });
pool.on('error', (error) => console.warn(`idle PostgreSQL client lost: ${error.message}`));

// 'wait': while the database is down, attempts wait for it (each within its execution's deadline)
// instead of burning their tries, and the batch pulls no new items.
export const breaker = circuitBreaker({ whenOpen: 'wait' });

export const importer = new Backoff({
  attemptTimeout: 2_000,
  deadline: 30_000,
  pause: exponential({ initial: 50, max: 2_000, jitter: 'full' }),
  retryOn: isTransientPgError,
  breaker,
});

// Idempotent: an insert whose COMMIT was lost with the connection may run twice.
const insertOrder = (order: Order) =>
  query(pool, 'INSERT INTO orders (id, total) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [
    order.id,
    order.total,
  ]);

export async function importOrders(orders: Order[]) {
  // 50 at once; every item's outcome, in input order, whatever happens to the others.
  const outcomes = await importer.map(orders, insertOrder, { concurrency: 50, settled: true });
  // Items whose 30 s ran out (an outage longer than that) are tried once more, and only those.
  if (outcomes.every((outcome) => outcome.status === 'fulfilled')) return outcomes;
  return rerunFailed(importer, outcomes, insertOrder);
}
