/**
 * `withLock(redisLock(...))` on a real Redis, through the README's recipe
 * (test/integration/recipes/redis-lock.ts): worker processes contending for one lock, a Redis
 * restart, a holder SIGKILLed inside its section, a stalled Redis (phantom locks), a lost lease,
 * and the three clients (node-redis 5 and 4, ioredis).
 *
 * Needs REDIS_URL from `eval "$(.ci/services.sh start)"` (the fault injection acts on that server
 * only); without it the suite is skipped, except under CI where its absence is an error.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { createClient as createClientV4 } from 'redis-v4';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Backoff, LockLostError } from '../../src/index.js';
import { isTransientRedisError, type RedisLockClient, redisLock } from '../../src/redis.js';
import { locks, withRedisLock } from './recipes/redis-lock.js';
import {
  overlaps,
  percentile,
  redisFault,
  runWorkers,
  type Section,
} from './support/lock-scenario.js';

const url = process.env.REDIS_URL;
if (!url) {
  const message =
    'Redis lock scenarios need REDIS_URL: run `eval "$(.ci/services.sh start)"` first';
  if (process.env.CI) throw new Error(message);
  console.warn(`[skipped] ${message}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (ns: bigint) => Number(ns) / 1e6;

/** Prints a scenario's figures (they go into the closing note of the issue). */
function report(name: string, figures: Record<string, unknown>): void {
  console.info(`[lock scenario] ${name}: ${JSON.stringify(figures)}`);
}

describe.skipIf(!url)('withLock(redisLock) on a real Redis', () => {
  let redis: ReturnType<typeof createClient>;
  const names: string[] = [];

  function lockName(): string {
    const name = `asyncbackoff:it:${randomUUID()}`;
    names.push(name);
    return name;
  }

  /** The counter and the set of sections written under the lock (atomically, by the workers). */
  async function counts(name: string) {
    const [counter, written] = await Promise.all([
      redis.get(`${name}:counter`),
      redis.sCard(`${name}:sections`),
    ]);
    return { counter: Number(counter ?? 0), written };
  }

  beforeAll(async () => {
    redis = createClient({ url: url! });
    redis.on('error', () => {});
    await redis.connect();
  });

  afterEach(async () => {
    // A failed scenario must not leave Redis stalled or down for the next one.
    redisFault('redis-resume');
    redisFault('redis-restart');
    for (let i = 0; i < 100 && !redis.isReady; i++) await sleep(20);
  });

  afterAll(async () => {
    if (redis?.isOpen) {
      for (const name of names) {
        const keys = await redis.keys(`*${name}*`);
        if (keys.length > 0) await redis.del(keys);
      }
      await redis.close();
    }
  });

  function expectExclusive(
    sections: readonly (Pick<Section, 'start' | 'end' | 'worker'> & { i?: number })[],
  ): void {
    const found = overlaps(sections);
    expect(found.map(([a, b]) => `${a.worker}:${a.i} / ${b.worker}:${b.i}`)).toEqual([]);
  }

  it('8 workers × 200 increments: no overlapping section, counter = sections completed, no acquisition failure', async () => {
    const name = lockName();
    const run = await runWorkers({
      url: url!,
      client: 'node-redis',
      recipe: 'new',
      name,
      workers: 8,
      count: 200,
    });
    const { counter, written } = await counts(name);
    const completed = run.summaries.reduce((n, s) => n + (s?.completed ?? 0), 0);
    const waits = run.sections.map((section) => section.wait);
    report('8 × 200 (node-redis 5)', {
      completed,
      counter,
      elapsedMs: Math.round(run.elapsed),
      waitP50: percentile(waits, 50),
      waitP99: percentile(waits, 99),
      waitMax: Math.max(...waits),
    });
    expect(run.errors).toEqual([]);
    expect(completed).toBe(1600);
    expect(run.sections).toHaveLength(1600);
    expect(counter).toBe(1600);
    expect(written).toBe(1600);
    expectExclusive(run.sections);
    // Every acquisition got a larger fencing token than the one before it.
    const fences = [...run.sections]
      .sort((a, b) => (a.start < b.start ? -1 : 1))
      .map((s) => s.fence);
    expect(fences).toEqual([...fences].sort((a, b) => a - b));
    expect(new Set(fences).size).toBe(1600);
  });

  it.each(['ioredis', 'node-redis-v4'] as const)(
    'the same with %s (4 workers × 50)',
    async (client) => {
      const name = lockName();
      const run = await runWorkers({
        url: url!,
        client,
        recipe: 'new',
        name,
        workers: 4,
        count: 50,
      });
      const { counter, written } = await counts(name);
      expect(run.errors).toEqual([]);
      expect(run.sections).toHaveLength(200);
      expect(counter).toBe(200);
      expect(written).toBe(200);
      expectExclusive(run.sections);
    },
  );

  it('Redis stopped for 2 s and restarted mid-run: exclusion holds, counter correct, no acquisition failure', async () => {
    const name = lockName();
    let stoppedAt = 0n;
    let restartedAt = 0n;
    let fault: Promise<void> | undefined;
    const run = await runWorkers({
      url: url!,
      client: 'node-redis',
      recipe: 'new',
      name,
      workers: 8,
      count: 100,
      // Worker 5 is inside its 30th section, between its read and its write, when Redis stops.
      pause: { worker: 5, at: 30 },
      onInside: () => {
        fault = (async () => {
          redisFault('redis-stop');
          stoppedAt = process.hrtime.bigint();
          await sleep(2000);
          restartedAt = process.hrtime.bigint();
          redisFault('redis-restart');
        })();
      },
    });
    await fault;
    const { counter, written } = await counts(name);
    const completed = run.summaries.reduce((n, s) => n + (s?.completed ?? 0), 0);
    const acquireFailures = run.summaries.reduce((n, s) => n + (s?.acquireFailures ?? 0), 0);
    const bodyErrors = run.errors.filter((error) => error.phase === 'body');
    const during = run.sections.filter((s) => s.start > stoppedAt && s.start < restartedAt);
    const firstAfter = run.sections
      .filter((s) => s.start >= restartedAt)
      .map((s) => s.start)
      .sort((a, b) => (a < b ? -1 : 1))[0]!;
    report('Redis restart (8 × 100, node-redis 5)', {
      completed,
      counter,
      written,
      outageMs: Math.round(ms(restartedAt - stoppedAt)),
      firstSectionAfterRestartMs: Math.round(ms(firstAfter - restartedAt)),
      bodyErrors: bodyErrors.map((e) => e.name),
      acquireErrors: run.errors.filter((e) => e.phase === 'acquire').map((e) => e.name),
      elapsedMs: Math.round(run.elapsed),
    });
    expect(stoppedAt).toBeGreaterThan(0n);
    expect(during).toEqual([]);
    expect(acquireFailures).toBe(0);
    expect(completed).toBe(800);
    expect(written).toBe(800);
    expect(counter).toBe(800);
    expectExclusive(run.sections);
    // Whatever failed inside a section during the outage is a transient Redis error or the lease
    // lost meanwhile (its renewal could not answer), never anything else.
    for (const error of bodyErrors)
      expect(['SocketClosedUnexpectedlyError', 'LockLostError', 'AbortError']).toContain(
        error.name,
      );
  });

  it('a holder SIGKILLed inside its section: the others proceed within ttl + 500 ms, counter correct', async () => {
    const name = lockName();
    const run = await runWorkers({
      url: url!,
      client: 'node-redis',
      recipe: 'new',
      name,
      workers: 8,
      count: 100,
      kill: { worker: 3, at: 20 },
    });
    const { counter, written } = await counts(name);
    const killed = run.killed!;
    expect(killed).toBeDefined();
    const others = run.sections.filter((s) => s.worker !== killed.worker);
    const resumed = others
      .filter((s) => s.start > killed.start)
      .map((s) => s.start)
      .sort((a, b) => (a < b ? -1 : 1))[0]!;
    const afterKill = ms(resumed - killed.at);
    report('SIGKILL of a holder (8 × 100, ttl 2000)', {
      resumedAfterKillMs: Math.round(afterKill),
      completed: run.sections.length,
      counter,
    });
    expect(run.errors).toEqual([]);
    // Nobody entered while the victim held the lock, and the lock came back within ttl + 500 ms.
    expectExclusive([
      ...run.sections,
      { worker: killed.worker, start: killed.start, end: killed.at },
    ]);
    expect(afterKill).toBeGreaterThan(0);
    expect(afterKill).toBeLessThanOrEqual(2000 + 500);
    // The victim completed 20 sections and died in its 21st, which never wrote.
    expect(run.sections.filter((s) => s.worker === killed.worker)).toHaveLength(20);
    expect(run.sections).toHaveLength(7 * 100 + 20);
    expect(counter).toBe(720);
    expect(written).toBe(720);
  });

  describe.each([
    ['node-redis 5', () => createClient({ url: url! })],
    ['ioredis', () => new Redis(url!, { lazyConnect: true })],
  ] as const)('phantom locks (%s)', (_client, make) => {
    it('an acquisition abandoned by its attempt timeout during a stall leaves the lock free or held by the live caller within 500 ms of Redis answering', async () => {
      const client = make();
      client.on('error', () => {});
      await client.connect();
      const name = lockName();
      const key = `lock:${name}`;
      const before = locks.statistics.lateResults;
      try {
        redisFault('redis-pause');
        const live: { lease?: { token: string } } = {};
        const holding = withRedisLock(client as RedisLockClient, name, async (taken) => {
          live.lease = taken;
          await sleep(300);
        });
        // Attempts time out every 500 ms while Redis is stalled; their SET NX wait in its socket.
        await sleep(1300);
        redisFault('redis-resume');
        const resumed = performance.now();
        const seen: { at: number; value: string | null }[] = [];
        while (performance.now() - resumed < 800) {
          seen.push({ at: performance.now() - resumed, value: await redis.get(key) });
          await sleep(10);
        }
        await holding;
        const late = seen.filter((s) => s.at >= 500);
        report(`phantom lock (${_client})`, {
          lateResults: locks.statistics.lateResults - before,
          firstFreeOrLiveMs: Math.round(
            seen.find((s) => s.value === null || s.value === live.lease?.token)?.at ?? -1,
          ),
        });
        expect(live.lease).toBeDefined();
        expect(late.length).toBeGreaterThan(0);
        for (const s of late) expect([null, live.lease!.token]).toContain(s.value);
        // The stalled attempts' late answers came back, the lease among them was released.
        expect(locks.statistics.lateResults - before).toBeGreaterThan(0);
        expect(await redis.get(key)).toBeNull();
      } finally {
        redisFault('redis-resume');
        if (client instanceof Redis) client.disconnect();
        else await client.close();
      }
    });
  });

  it('a lease deleted under the holder: the renewal finds it gone, the body is aborted with LockLostError', async () => {
    const name = lockName();
    const key = `lock:${name}`;
    let bodySignal: AbortSignal | undefined;
    const started = performance.now();
    const error = await withRedisLock(redis, name, async (_lease, signal) => {
      bodySignal = signal;
      await redis.del(key); // an operator, an eviction, or a failover to a replica that missed it
      await new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(LockLostError);
    expect(bodySignal?.reason).toBe(error);
    // Found at the first renewal, ttl / 3 in.
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(1200);
  });

  it('release and renewal act only on their own token; fencing tokens grow across expiries', async () => {
    const key = `lock:${lockName()}`;
    const lock = redisLock(redis, key, { ttl: 100 });
    const first = (await lock.acquire())!;
    expect(await lock.acquire()).toBeUndefined(); // busy
    await sleep(150); // expired
    const second = (await lock.acquire())!;
    expect(second.fencingToken).toBe(first.fencingToken + 1);
    expect(await lock.renew(first)).toBe(false);
    await lock.release(first);
    expect(await redis.get(key)).toBe(second.token);
    expect(await lock.renew(second)).toBe(true);
    expect(await redis.pTTL(key)).toBeGreaterThan(50);
    await lock.release(second);
    expect(await redis.get(key)).toBeNull();
    expect(await redis.get(lock.fencingKey)).toBe(String(second.fencingToken));
  });

  it('node-redis 5 drops an acquisition still queued when its attempt times out (Redis down), so none runs late', async () => {
    const client = createClient({ url: url! });
    client.on('error', () => {});
    await client.connect();
    const name = lockName();
    const key = `lock:${name}`;
    try {
      redisFault('redis-stop');
      // Until the client has seen its connection close, a command would go to the dead socket.
      for (let i = 0; i < 100 && client.isReady; i++) await sleep(10);
      expect(client.isReady).toBe(false);
      const backoff = new Backoff({
        attemptTimeout: 200,
        maxTries: 3,
        retryOn: isTransientRedisError,
      });
      const outcome = await backoff
        .withLock(redisLock(client, key, { ttl: 5000 }), async () => 'taken')
        .catch((reason: unknown) => reason);
      expect((outcome as Error).name).toBe('AttemptTimeoutError');
      expect(backoff.statistics).toMatchObject({ attempts: 3, timeouts: 3 });
      redisFault('redis-restart');
      for (let i = 0; i < 100 && !client.isReady; i++) await sleep(20);
      await sleep(100);
      // The queued SET NX were removed by the abort: nothing took the lock after the restart.
      expect(await redis.get(key)).toBeNull();
    } finally {
      redisFault('redis-restart');
      await client.close().catch(() => {});
    }
  });

  it('the errors real clients throw at a Redis restart are transient', async () => {
    const v5 = createClient({ url: url! });
    const v4 = createClientV4({ url: url! });
    const io = new Redis(url!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    for (const client of [v5, v4, io]) client.on('error', () => {});
    await Promise.all([v5.connect(), v4.connect(), io.connect()]);
    const describeError = (e: unknown) =>
      e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    try {
      // In flight when the server goes away: blocked on an empty list, then shut down.
      const list = `${lockName()}:empty`;
      const inFlight = [
        v5.blPop(list, 5).catch((e: unknown) => e),
        v4.blPop(list, 5).catch((e: unknown) => e),
        io.blpop(list, 5).catch((e: unknown) => e),
      ];
      await sleep(100);
      redisFault('redis-stop');
      const errors = await Promise.all(inFlight);
      // Sent while it is down: ioredis gives up after maxRetriesPerRequest reconnections.
      const offline = await io.get('x').catch((e: unknown) => e);
      report('client errors at a restart', {
        inFlight: errors.map(describeError),
        offline: describeError(offline),
      });
      for (const error of [...errors, offline]) {
        expect(error).toBeInstanceOf(Error);
        expect(isTransientRedisError(error)).toBe(true);
      }
    } finally {
      redisFault('redis-restart');
      io.disconnect();
      await Promise.all([v5.close().catch(() => {}), v4.disconnect().catch(() => {})]);
    }
  });
});
