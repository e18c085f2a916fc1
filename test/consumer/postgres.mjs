// asyncbackoff/postgres from the packed package, in ESM and CommonJS: the subpath resolves, its
// self-import of the core finds the installed package (query() sees the attempt a Backoff of the
// core runs, so the server is given its time limit), and the classifier works. The pool is a
// stand-in that records statements (the real server is the integration tests' business).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { Backoff, circuitBreaker } from 'asyncbackoff';
import { isTransientPgError, query, transaction } from 'asyncbackoff/postgres';

function fakePool() {
  const statements = [];
  const released = [];
  return {
    statements,
    released,
    async connect() {
      const client = new EventEmitter();
      client.query = async (text) => {
        statements.push(text);
        return { rows: [{ n: 1 }], rowCount: 1, command: text === 'COMMIT' ? 'COMMIT' : 'SELECT' };
      };
      client.release = (destroy) => released.push(destroy);
      return client;
    },
  };
}

const require = createRequire(import.meta.url);
for (const [format, api] of [
  ['ESM', { Backoff, circuitBreaker, isTransientPgError, query, transaction }],
  ['CJS', { ...require('asyncbackoff'), ...require('asyncbackoff/postgres') }],
]) {
  const pool = fakePool();
  const backoff = new api.Backoff({
    attemptTimeout: 300,
    retryOn: api.isTransientPgError,
    breaker: api.circuitBreaker({ whenOpen: 'wait' }),
  });
  const result = await backoff.execute(() => api.query(pool, 'SELECT 1 AS n'));
  assert.deepEqual(result.rows, [{ n: 1 }]);
  assert.match(pool.statements[0], /^SET statement_timeout = (29\d|300)$/, format);
  assert.deepEqual(pool.statements.slice(1), ['SELECT 1 AS n', 'RESET statement_timeout']);
  assert.equal(
    await backoff.execute(() =>
      api.transaction(pool, async (tx) => (await tx.query('SELECT 2')).rows.length),
    ),
    1,
  );
  assert.deepEqual(pool.released, [undefined, undefined]);
  assert.equal(api.isTransientPgError(Object.assign(new Error('x'), { code: '40001' })), true);
  assert.equal(api.isTransientPgError(Object.assign(new Error('x'), { code: '23505' })), false);
  console.log(`${format}: asyncbackoff/postgres ok`);
}
