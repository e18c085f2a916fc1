// asyncbackoff/redis from the packed package, in ESM and CommonJS: the subpath resolves, its
// self-import of the core finds the installed package (one copy of the error classes), and
// withLock drives a redisLock end to end. The client is a stand-in that answers the three scripts
// as Redis would (the real servers are the integration tests' business).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Backoff, LockUnavailableError } from 'asyncbackoff';
import { isTransientRedisError, redisLock } from 'asyncbackoff/redis';

function fakeRedis() {
  const keys = new Map();
  let fence = 0;
  return {
    keys,
    async eval(script, { keys: [key], arguments: [token] }) {
      if (script.includes("'NX'")) {
        if (keys.has(key)) return null;
        keys.set(key, token);
        return ++fence;
      }
      if (keys.get(key) !== token) return 0;
      if (script.includes("'DEL'")) keys.delete(key);
      return 1;
    },
  };
}

for (const [format, api] of [
  ['ESM', { Backoff, LockUnavailableError, isTransientRedisError, redisLock }],
  [
    'CJS',
    {
      ...createRequire(import.meta.url)('asyncbackoff'),
      ...createRequire(import.meta.url)('asyncbackoff/redis'),
    },
  ],
]) {
  const redis = fakeRedis();
  const backoff = new api.Backoff({ deadline: 200, pause: 10 });
  const lock = api.redisLock(redis, 'jobs', { ttl: 1000 });
  assert.equal(lock.fencingKey, '{jobs}:fencing');
  const fence = await backoff.withLock(lock, async (lease, signal) => {
    assert.equal(redis.keys.get('jobs'), lease.token);
    assert.equal(signal.aborted, false);
    // Busy while held: a second caller runs out of time with LockUnavailableError.
    await assert.rejects(
      backoff.withLock(api.redisLock(redis, 'jobs', { ttl: 1000 }), async () => {}),
      (error) => error instanceof LockUnavailableError && error instanceof api.LockUnavailableError,
    );
    return lease.fencingToken;
  });
  assert.equal(fence, 1);
  assert.equal(redis.keys.size, 0, 'released');
  assert.equal(
    api.isTransientRedisError(Object.assign(new Error('read'), { code: 'ECONNRESET' })),
    true,
  );
  assert.equal(api.isTransientRedisError(new Error('WRONGTYPE Operation against a key')), false);
  console.log(`redis subpath (${format}): ok`);
}
