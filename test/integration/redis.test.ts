/**
 * Redis (node-redis v5) through the public API: taking a cluster lock with `SET key value NX PX`,
 * retried until the holder lets go, bounded by a deadline.
 *
 * Needs REDIS_URL (`eval "$(.ci/services.sh start)"`); without it the suite is skipped, except
 * under CI where its absence is an error.
 */
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { asyncretry, Backoff, currentAttempt, DeadlineExceededError } from '../../src/index.js';

const url = process.env.REDIS_URL;
if (!url) {
  const message =
    'Redis integration tests need REDIS_URL: run `eval "$(.ci/services.sh start)"` first';
  if (process.env.CI) throw new Error(message);
  console.warn(`[skipped] ${message}`);
}

class LockBusyError extends Error {
  override name = 'LockBusyError';
  constructor(readonly key: string) {
    super(`lock ${key} is held by someone else`);
  }
}

/** Deletes the lock only if `token` still owns it. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!url)('Redis cluster lock', () => {
  let redis: ReturnType<typeof createClient>;
  const keys: string[] = [];
  const timers: NodeJS.Timeout[] = [];

  function lockKey(): string {
    const key = `asyncbackoff:it:lock:${randomUUID()}`;
    keys.push(key);
    return key;
  }

  /** One attempt at the lock: resolves with our token, or throws LockBusyError. */
  async function tryLock(key: string, token: string, ttl = 1000): Promise<string> {
    const reply = await redis.set(key, token, {
      condition: 'NX',
      expiration: { type: 'PX', value: ttl },
    });
    if (reply !== 'OK') throw new LockBusyError(key);
    return token;
  }

  async function release(key: string, token: string): Promise<boolean> {
    return (await redis.eval(RELEASE, { keys: [key], arguments: [token] })) === 1;
  }

  beforeAll(async () => {
    redis = createClient({ url: url! });
    redis.on('error', () => {}); // reported through the commands that fail
    await redis.connect();
  });

  afterEach(() => {
    for (const timer of timers.splice(0)) clearTimeout(timer);
  });

  afterAll(async () => {
    if (redis?.isOpen) {
      if (keys.length > 0) await redis.del(keys);
      await redis.close();
    }
  });

  it('asyncretry takes the lock once the holder releases it', async () => {
    const key = lockKey();
    await tryLock(key, 'holder');
    timers.push(setTimeout(() => void release(key, 'holder'), 200));

    const lockRetry = asyncretry(100, { exceptions: [LockBusyError], pause: 25, deadline: 1500 });
    const acquire = lockRetry(tryLock);

    const started = performance.now();
    const token = await acquire(key, 'me');
    const elapsed = performance.now() - started;

    expect(token).toBe('me');
    expect(await redis.get(key)).toBe('me');
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1000);
    expect(lockRetry.backoff.statistics.attempts).toBeGreaterThan(1);
    expect(lockRetry.backoff.statistics.successes).toBe(1);
    expect(await release(key, 'me')).toBe(true);
  });

  it('takes the lock after a crashed holder’s lock expires (PX)', async () => {
    const key = lockKey();
    await tryLock(key, 'crashed', 300); // never released
    const backoff = new Backoff({ exceptions: [LockBusyError], pause: 50, deadline: 2000 });

    const started = performance.now();
    await expect(backoff.execute(tryLock, key, 'me')).resolves.toBe('me');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(await redis.pTTL(key)).toBeGreaterThan(0);
  });

  it('rejects with the last LockBusyError when the deadline passes while the lock is held', async () => {
    const key = lockKey();
    await tryLock(key, 'holder', 5000);
    const backoff = new Backoff({ exceptions: [LockBusyError], pause: 25, deadline: 300 });

    const started = performance.now();
    const error = await backoff.execute(tryLock, key, 'me').then(
      () => undefined,
      (reason: unknown) => reason,
    );
    const elapsed = performance.now() - started;

    expect(error).toBeInstanceOf(LockBusyError);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1000);
    expect(await redis.get(key)).toBe('holder');
    expect(backoff.statistics.attempts).toBeGreaterThan(1);
  });

  it('a blocking wait for the release is cut by the deadline (DeadlineExceededError) and its connection dropped', async () => {
    const key = lockKey();
    const released = `${key}:released`;
    keys.push(released);
    await tryLock(key, 'holder', 5000);
    const waiter = redis.duplicate();
    waiter.on('error', () => {});
    const backoff = new Backoff({ deadline: 300 });

    const started = performance.now();
    const error = await backoff
      .execute(async () => {
        await waiter.connect();
        // Abort the blocked BLPOP by dropping its connection: Redis has no per-command cancel.
        currentAttempt()!.signal.addEventListener('abort', () => waiter.destroy(), { once: true });
        await waiter.blPop(released, 5);
        return tryLock(key, 'me');
      })
      .then(
        () => undefined,
        (reason: unknown) => reason,
      );
    const elapsed = performance.now() - started;

    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ name: 'DeadlineExceededError', timeout: 300 });
    expect(elapsed).toBeLessThan(1000);
    expect(waiter.isOpen).toBe(false);
    await sleep(20);
    // The server no longer has a client blocked on the key.
    const clients = await redis.clientList();
    expect(clients.some((client) => client.cmd === 'blpop')).toBe(false);
  });
});
