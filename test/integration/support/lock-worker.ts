/**
 * One worker process of the lock scenarios (test/integration/redis-lock.test.ts) and of the
 * lock-wait benchmark (benchmarks/lock-wait.ts): `count` read-modify-write increments of a Redis
 * counter, each under the lock, through the README's recipe (`new`) or the recipe it replaced
 * (`old`). Run as `node --import tsx lock-worker.ts '<json config>'`; prints one JSON line per
 * event on stdout:
 *
 *   { type: 'ready' }
 *   { type: 'section', i, start, end, wait, fence }      start/end: process.hrtime ns (one clock
 *                                                        for every process on the machine)
 *   { type: 'holding', i, start }                        the victim is inside its section, hanging
 *   { type: 'inside', i, start }                         inside section `pauseAt`, for 300 ms
 *   { type: 'error', i, phase: 'acquire' | 'body', name, message }
 *   { type: 'done', completed, failed, ... }
 */
import { randomUUID } from 'node:crypto';
import { asyncretry, LockUnavailableError } from 'asyncbackoff';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { createClient as createClientV4 } from 'redis-v4';
import { withRedisLock } from '../recipes/redis-lock.js';

export interface WorkerConfig {
  url: string;
  client: 'node-redis' | 'node-redis-v4' | 'ioredis';
  recipe: 'new' | 'old';
  /** The lock's name; the counter is `${name}:counter`, the written sections `${name}:sections`. */
  name: string;
  id: number;
  count: number;
  /** Hang inside section `hangAt` (holding the lock) until killed. */
  hangAt?: number;
  /** Announce section `pauseAt` (`inside`) and wait 300 ms in it before writing, once. */
  pauseAt?: number;
  /** Give up on an increment after this many failed tries (a scenario that cannot proceed ends). */
  maxTriesPerIncrement?: number;
}

const config = JSON.parse(process.argv[2]!) as WorkerConfig;
const counterKey = `${config.name}:counter`;
const fenceKey = `{${config.name}}:counter-fence`;
const sectionsKey = `${config.name}:sections`;

const emit = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);
const hrnow = () => process.hrtime.bigint().toString();

/**
 * The guarded resource's side of fencing: the write is refused when a later lease has written
 * already. The counter, the fence and the set of written sections change together, or not at all.
 */
const FENCED_WRITE = `local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) < seen then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1`;

/** The old recipe's write: no fence (it has none), but still counter and section together. */
const PLAIN_WRITE = `redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1`;

interface Commands {
  client: Parameters<typeof withRedisLock>[0];
  get(key: string, signal?: AbortSignal): Promise<string | null>;
  script(script: string, keys: string[], args: string[], signal?: AbortSignal): Promise<unknown>;
  setNx(key: string, value: string, ttl: number): Promise<boolean>;
  close(): Promise<void>;
}

async function connect(): Promise<Commands> {
  if (config.client === 'ioredis') {
    const redis = new Redis(config.url, { lazyConnect: true });
    redis.on('error', () => {});
    await redis.connect();
    return {
      client: redis,
      get: (key) => redis.get(key),
      script: (script, keys, args) => redis.eval(script, keys.length, ...keys, ...args),
      setNx: async (key, value, ttl) => (await redis.set(key, value, 'PX', ttl, 'NX')) === 'OK',
      close: async () => void redis.disconnect(),
    };
  }
  if (config.client === 'node-redis-v4') {
    const redis = createClientV4({ url: config.url });
    redis.on('error', () => {});
    await redis.connect();
    return {
      client: redis,
      get: (key) => redis.get(key),
      script: (script, keys, args) => redis.eval(script, { keys, arguments: args }),
      setNx: async (key, value, ttl) =>
        (await redis.set(key, value, { NX: true, PX: ttl })) === 'OK',
      close: () => redis.disconnect(),
    };
  }
  const redis = createClient({ url: config.url });
  redis.on('error', () => {});
  await redis.connect();
  const withSignal = (signal: AbortSignal | undefined) =>
    signal === undefined ? redis : redis.withAbortSignal(signal);
  return {
    client: redis,
    get: (key, signal) => withSignal(signal).get(key),
    script: (script, keys, args, signal) =>
      withSignal(signal).eval(script, { keys, arguments: args }),
    setNx: async (key, value, ttl) =>
      (await redis.set(key, value, {
        condition: 'NX',
        expiration: { type: 'PX', value: ttl },
      })) === 'OK',
    close: () => redis.close(),
  };
}

const redis = await connect();

let paused = false;

/**
 * Inside a section: hang for good if this is the victim's section (renewals keep running), or
 * linger 300 ms in the section the parent waits for (it then stops Redis under the holder).
 */
async function maybeHang(i: number, start: string): Promise<void> {
  if (config.pauseAt === i && !paused) {
    paused = true;
    emit({ type: 'inside', i, start });
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  if (config.hangAt !== i) return;
  emit({ type: 'holding', i, start });
  await new Promise(() => {});
}

// ---------------------------------------------------------------------------------------------
// The recipe the README showed before (asyncretry(20, { exceptions: [LockBusy], pause: 100 })),
// as a user would complete it: one token per process, and a release that checks it.

class LockBusy extends Error {}

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

class Jobs {
  readonly id = randomUUID();

  // aiomisc: @asyncretry(20, exceptions=(LockBusy,), pause=0.1)
  @asyncretry(20, { exceptions: [LockBusy], pause: 100 })
  async acquire(name: string) {
    const ok = await redis.setNx(`lock:${name}`, this.id, 10_000);
    if (!ok) throw new LockBusy(name);
  }

  async release(name: string) {
    await redis.script(RELEASE, [`lock:${name}`], [this.id]);
  }
}

// ---------------------------------------------------------------------------------------------

interface Outcome {
  applied: boolean;
}

/** One increment through the new recipe; throws what withRedisLock rejects with. */
async function incrementNew(i: number, section: string, wait: { at: number }): Promise<Outcome> {
  const called = performance.now();
  return withRedisLock(redis.client, config.name, async (lease, signal) => {
    wait.at = performance.now() - called;
    const start = hrnow();
    const value = Number((await redis.get(counterKey, signal)) ?? 0);
    await maybeHang(i, start);
    const applied =
      (await redis.script(
        FENCED_WRITE,
        [counterKey, fenceKey, sectionsKey],
        [String(lease.fencingToken), String(value + 1), section],
        signal,
      )) === 1;
    const end = hrnow();
    if (applied) emit({ type: 'section', i, start, end, wait: wait.at, fence: lease.fencingToken });
    return { applied };
  });
}

const jobs = new Jobs();

async function incrementOld(i: number, section: string, wait: { at: number }): Promise<Outcome> {
  const called = performance.now();
  await jobs.acquire(config.name);
  wait.at = performance.now() - called;
  try {
    const start = hrnow();
    const value = Number((await redis.get(counterKey)) ?? 0);
    await maybeHang(i, start);
    await redis.script(PLAIN_WRITE, [counterKey, sectionsKey], [String(value + 1), section]);
    emit({ type: 'section', i, start, end: hrnow(), wait: wait.at, fence: 0 });
    return { applied: true };
  } finally {
    await jobs.release(config.name);
  }
}

const increment = config.recipe === 'old' ? incrementOld : incrementNew;
const maxTries = config.maxTriesPerIncrement ?? 30;
let completed = 0;
let acquireFailures = 0;
let bodyFailures = 0;
let fencedOut = 0;
let skipped = 0;
const failuresByName: Record<string, number> = {};

emit({ type: 'ready' });
// All workers start together: the parent writes a line once every worker is ready.
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.destroy();
for (let i = 0; i < config.count; i++) {
  const section = `${config.id}:${i}`;
  let done = false;
  for (let tries = 0; tries < maxTries && !done; tries++) {
    const wait = { at: -1 };
    try {
      const { applied } = await increment(i, section, wait);
      if (applied) {
        completed++;
        done = true;
      } else fencedOut++;
    } catch (error) {
      const phase = wait.at < 0 ? 'acquire' : 'body';
      // The class name: node-redis's errors all have the name 'Error'.
      const name = error instanceof Error ? error.constructor.name : typeof error;
      failuresByName[`${phase}:${name}`] = (failuresByName[`${phase}:${name}`] ?? 0) + 1;
      emit({ type: 'error', i, phase, name, message: String((error as Error)?.message ?? error) });
      if (phase === 'acquire') acquireFailures++;
      else bodyFailures++;
      // The old recipe gives up on an increment whose lock it could not get: a missed increment.
      if (config.recipe === 'old' && error instanceof LockBusy) break;
      if (error instanceof LockUnavailableError) break;
    }
  }
  if (!done) skipped++;
}
emit({
  type: 'done',
  completed,
  acquireFailures,
  bodyFailures,
  fencedOut,
  skipped,
  failuresByName,
});
await redis.close();
