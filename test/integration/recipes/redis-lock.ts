import { Backoff, exponential } from 'asyncbackoff';
import {
  isTransientRedisError,
  type RedisLease,
  type RedisLockClient,
  redisLock,
} from 'asyncbackoff/redis';

/** One instance for every lock the service takes: their statistics add up in one place. */
export const locks = new Backoff({
  deadline: 10_000, // waited 10 s and still busy: LockUnavailableError
  attemptTimeout: 500, // one try at the lock (a round trip to Redis) gets 500 ms
  pause: exponential({ initial: 2, max: 20, jitter: 'full' }), // waiters spread out, never in step
  retryOn: isTransientRedisError, // a restart or failover is worth another try; WRONGTYPE is not
});

/**
 * Runs `body` while holding the lock `name`. Its lease lives 2 s in Redis and is renewed every
 * 667 ms while `body` runs; `signal` aborts if the lease is lost.
 */
export function withRedisLock<R>(
  redis: RedisLockClient,
  name: string,
  body: (lease: RedisLease, signal: AbortSignal) => Promise<R>,
): Promise<R> {
  return locks.withLock(redisLock(redis, `lock:${name}`, { ttl: 2_000 }), body);
}
