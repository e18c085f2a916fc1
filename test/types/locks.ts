/**
 * Compile-time tests of `withLock` and `asyncbackoff/redis` (type-checked by `npm run typecheck`,
 * never run): the lease type flows from `lock.acquire` into `body`, the result from `body`, and
 * `redisLock` accepts node-redis v4 and v5 and ioredis clients and clusters as they are typed.
 */
import { Cluster, Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { createClient as createClientV4, createCluster as createClusterV4 } from 'redis-v4';
import { expectTypeOf } from 'vitest';
import { Backoff, type Lock } from '../../src/index.js';
import {
  isTransientRedisError,
  type RedisLease,
  type RedisLock,
  redisLock,
} from '../../src/redis.js';

const backoff = new Backoff({ deadline: 1000 });

interface Session {
  readonly id: number;
  close(): void;
}
declare const sessions: Lock<Session>;

// The lease type is inferred from the lock into the body; the result from the body.
expectTypeOf(
  backoff.withLock(sessions, (lease, signal) => {
    expectTypeOf(lease).toEqualTypeOf<Session>();
    expectTypeOf(signal).toEqualTypeOf<AbortSignal>();
    return lease.id;
  }),
).toEqualTypeOf<Promise<number>>();
expectTypeOf(backoff.withLock(sessions, async (lease) => String(lease.id))).toEqualTypeOf<
  Promise<string>
>();
expectTypeOf(backoff.withLock(sessions, async () => {})).toEqualTypeOf<Promise<void>>();

// ...from an object literal lock, whose acquire resolves with a lease or undefined (busy).
const literal = {
  acquire: async (_signal: AbortSignal): Promise<{ token: string } | undefined> => undefined,
  release: async (_lease: { token: string }) => {},
};
backoff.withLock(literal, (lease) => {
  expectTypeOf(lease).toEqualTypeOf<{ token: string }>();
});

// the lease is not `any`, and not `undefined`
backoff.withLock(sessions, (lease) => {
  // @ts-expect-error a Session has no `token`
  lease.token;
});
// @ts-expect-error a lock needs release
backoff.withLock({ acquire: async () => 1 }, () => {});
// @ts-expect-error the body's lease is a Session, not a string
backoff.withLock(sessions, (lease: string) => lease);
// @ts-expect-error renew must resolve with a boolean
backoff.withLock({ ...literal, ttl: 10, renew: async () => 'yes' }, () => {});

// redisLock: every client shape, and the lease type reaches the body
const v5 = createClient();
const v5cluster = createCluster({ rootNodes: [] });
const v4 = createClientV4();
const v4cluster = createClusterV4({ rootNodes: [] });
const io = new Redis({ lazyConnect: true });
const ioCluster = new Cluster([]);
for (const client of [v5, v5cluster, v4, v4cluster, io, ioCluster]) {
  const lock = redisLock(client, 'lock:jobs', { ttl: 1000 });
  expectTypeOf(lock).toEqualTypeOf<RedisLock>();
  expectTypeOf(
    backoff.withLock(lock, (lease) => {
      expectTypeOf(lease).toEqualTypeOf<RedisLease>();
      expectTypeOf(lease.fencingToken).toEqualTypeOf<number>();
      return lease.token;
    }),
  ).toEqualTypeOf<Promise<string>>();
}
// @ts-expect-error not a Redis client
redisLock({ get: async () => 'x' }, 'lock', { ttl: 1000 });
// @ts-expect-error ttl is required
redisLock(v5, 'lock', {});
// @ts-expect-error the key is a string
redisLock(v5, 1, { ttl: 1000 });

expectTypeOf(isTransientRedisError).toEqualTypeOf<(error: unknown) => boolean>();
