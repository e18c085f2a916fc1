/**
 * `asyncbackoff/redis`: a Redis lock for `backoff.withLock`, and a predicate for the Redis failures
 * worth another try. No runtime dependency: node-redis (v4, v5) and ioredis clients are recognised
 * by their shape, and only `EVAL` is sent.
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { isTransientNetworkError, type Lock } from 'asyncbackoff';
// Pure helpers, bundled into this entry; everything with state comes from the core package.
import { checkOptions, describe, MAX_TIMER_MS } from './validate.js';

// ---------------------------------------------------------------------------------------------
// Client shapes

/** A node-redis v4 or v5 client or cluster (`createClient()`, `createCluster()`), as far as it is used. */
export interface NodeRedisClientLike {
  /** Runs a Lua script (`EVAL`) with its keys and arguments. */
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/** An ioredis `Redis` or `Cluster`, as far as it is used. */
export interface IoRedisClientLike {
  /** Runs a Lua script (`EVAL`): the number of keys, then the keys and the arguments. */
  eval(script: string, numkeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  /** Sends any command. */
  call(command: string, ...args: string[]): Promise<unknown>;
  /** Defines a script as a command. */
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** What {@link redisLock} accepts: a node-redis (v4, v5) or ioredis client or cluster. */
export type RedisLockClient = NodeRedisClientLike | IoRedisClientLike;

/** node-redis v5 adds per-command options (an `AbortSignal` among them) through these. */
interface NodeRedisV5Like extends NodeRedisClientLike {
  withAbortSignal?(signal: AbortSignal): NodeRedisClientLike;
  withCommandOptions?(options: { abortSignal: AbortSignal }): NodeRedisClientLike;
}

type Send = (
  script: string,
  keys: string[],
  args: string[],
  signal: AbortSignal | undefined,
) => Promise<unknown>;

/**
 * How scripts are sent to `client`, and whether an `AbortSignal` goes with them.
 *
 * - node-redis v5: the signal is passed (`withAbortSignal`, or `withCommandOptions` on a cluster).
 *   Aborting drops a command that is still queued (offline, or behind others) and never touches
 *   one already written, which then answers as usual: exactly what a lease needs, since a late
 *   answer is released through `onLateResult` rather than lost.
 * - node-redis v4: no signal. Its abort rejects a command even after it was written, so a `SET NX`
 *   that ran would look aborted and the lease it took would be lost until its ttl.
 * - ioredis: no per-command cancellation exists; an abandoned command answers late.
 */
function senderFor(client: unknown): Send | undefined {
  if (typeof client !== 'object' || client === null) return undefined;
  const candidate = client as Partial<IoRedisClientLike & NodeRedisV5Like>;
  if (typeof candidate.eval !== 'function') return undefined;
  if (typeof candidate.call === 'function' && typeof candidate.defineCommand === 'function') {
    const io = client as IoRedisClientLike;
    return (script, keys, args) => io.eval(script, keys.length, ...keys, ...args);
  }
  const node = client as NodeRedisV5Like;
  const withSignal =
    typeof node.withAbortSignal === 'function'
      ? (signal: AbortSignal) => node.withAbortSignal!(signal)
      : typeof node.withCommandOptions === 'function'
        ? (signal: AbortSignal) => node.withCommandOptions!({ abortSignal: signal })
        : undefined;
  return (script, keys, args, signal) =>
    (signal !== undefined && withSignal !== undefined ? withSignal(signal) : node).eval(script, {
      keys,
      arguments: args,
    });
}

// ---------------------------------------------------------------------------------------------
// The lock

/** A lease on a {@link redisLock}: what `withLock` hands its body. */
export interface RedisLease {
  /** The lock's key. */
  readonly key: string;
  /** The random value stored under the key for this acquisition; release and renewal check it. */
  readonly token: string;
  /**
   * A number the server increments with every acquisition of this key, taken in the same script
   * as the `SET NX`: a later lease always carries a larger one. Pass it to the resource the lock
   * guards, and have the resource refuse writes carrying a smaller token than one it has seen; a
   * holder that stalled past its ttl is then refused instead of overwriting its successor's work.
   * (The counter lives in Redis: it is monotonic as long as Redis keeps its data.)
   */
  readonly fencingToken: number;
}

/** Options of {@link redisLock}. */
export interface RedisLockOptions {
  /**
   * How long the lease lives in Redis (`PX`), in milliseconds: an integer from 1 to 2147483647.
   * A holder that dies frees the lock after at most this long. `withLock` renews the lease every
   * `ttl / 3` while its body runs.
   */
  readonly ttl: number;
}

/** A {@link Lock} on one Redis key, made by {@link redisLock}. */
export interface RedisLock extends Lock<RedisLease> {
  /** The lock's key. */
  readonly key: string;
  /** The key of the fencing counter: in the lock key's hash slot (Redis Cluster). */
  readonly fencingKey: string;
  /** The lease's time to live, ms. */
  readonly ttl: number;
  acquire(signal?: AbortSignal): Promise<RedisLease | undefined>;
  release(lease: RedisLease): Promise<void>;
  renew(lease: RedisLease, signal?: AbortSignal): Promise<boolean>;
}

/** Takes the lock and returns a new fencing token, or nil when another token holds it. */
const ACQUIRE = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false`;

/** Deletes the lock if this lease's token still holds it. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/** Extends the lock if this lease's token still holds it; 1 when it did. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

/**
 * The fencing counter's key, in the same Redis Cluster hash slot as `key` (a script's keys must
 * share one). Redis hashes only the part inside the first `{…}` when there is one with something
 * in it, so: a key with such a hash tag keeps it (`{jobs}:lock` → `{jobs}:lock:fencing`); any other
 * key becomes the hash tag (`jobs` → `{jobs}:fencing`, hashed as `jobs`, like the key itself). A
 * key with a `}` but no hash tag cannot be a hash tag: it is refused.
 */
function fencingKeyOf(key: string): string {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return `${key}:fencing`;
  }
  if (!key.includes('}')) return `{${key}}:fencing`;
  throw new RangeError(
    `redisLock: 'key' ${describe(key)} has a '}' but no hash tag, so no fencing counter can share its Redis Cluster slot: use a hash tag, e.g. '{${key.replaceAll('}', '')}}'`,
  );
}

function checkSignal(signal: unknown, where: string): asserts signal is AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new TypeError(`${where}: 'signal' must be an AbortSignal, got ${describe(signal)}`);
}

function checkLease(lease: unknown, key: string, where: string): asserts lease is RedisLease {
  const candidate = lease as Partial<RedisLease> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.token !== 'string' ||
    candidate.key !== key
  )
    throw new TypeError(
      `${where}: 'lease' must be a lease of the lock on '${key}', got ${describe(lease)}`,
    );
}

/** An integer reply (a number, or a numeric string or bigint from a client's type mapping). */
function integerReply(reply: unknown): number | undefined {
  const value =
    typeof reply === 'number'
      ? reply
      : typeof reply === 'string' || typeof reply === 'bigint'
        ? Number(reply)
        : Number.NaN;
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * A lock on the Redis key `key` for `backoff.withLock`: `acquire` runs `SET key token NX PX ttl`
 * with a fresh random token and, in the same script, increments the key's fencing counter;
 * `release` and `renew` act only while the key still holds that token, so a lease that expired and
 * was taken by someone else is never deleted or extended by its former holder.
 *
 * The attempt's signal reaches node-redis v5 (a command still queued is dropped when the attempt
 * is abandoned); node-redis v4 and ioredis get none (see the README). A lease acquired by an
 * abandoned attempt is released by `withLock` as soon as it arrives.
 *
 * `release` waits at most until the lease would have expired: past that Redis frees the key by
 * itself, and a release still queued (Redis unreachable) no longer matters; it may still run later,
 * harmlessly, since it checks the token.
 *
 * @param client - a node-redis v4/v5 or ioredis client or cluster, connected.
 * @param key - the lock's key. In Redis Cluster, see {@link RedisLock.fencingKey}.
 * @throws TypeError when `client` is not a Redis client, `key` not a non-empty string, `options`
 * not `{ ttl }`; RangeError when `ttl` is not an integer from 1 to 2147483647 ms, or `key` cannot
 * share a hash slot with its fencing counter.
 *
 * @example
 * ```ts
 * const lock = redisLock(redis, 'lock:reports', { ttl: 5_000 });
 * await backoff.withLock(lock, async (lease, signal) => {
 *   await storage.write(report, { fencingToken: lease.fencingToken, signal });
 * });
 * ```
 */
export function redisLock(
  client: RedisLockClient,
  key: string,
  options: RedisLockOptions,
): RedisLock {
  const found = senderFor(client);
  if (found === undefined)
    throw new TypeError(
      `redisLock: 'client' must be a node-redis or ioredis client (with eval), got ${describe(client)}`,
    );
  const send: Send = found;
  if (typeof key !== 'string' || key.length === 0)
    throw new TypeError(`redisLock: 'key' must be a non-empty string, got ${describe(key)}`);
  // Non-enumerable and inherited keys too: an inherited ttl would be read, an unknown one ignored.
  checkOptions('redisLock', options, ['ttl']);
  const ttl: unknown = options.ttl;
  if (typeof ttl !== 'number')
    throw new TypeError(`redisLock: 'ttl' must be a number of milliseconds, got ${describe(ttl)}`);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TIMER_MS)
    throw new RangeError(
      `redisLock: 'ttl' must be an integer from 1 to ${MAX_TIMER_MS} ms, got ${describe(ttl)}`,
    );
  const fencingKey = fencingKeyOf(key);
  const ttlArg = String(ttl);
  /** When each live lease expires at the latest, on the monotonic clock (from when its command was sent). */
  const expiries = new WeakMap<RedisLease, number>();

  return Object.freeze({
    key,
    fencingKey,
    ttl,
    async acquire(signal?: AbortSignal): Promise<RedisLease | undefined> {
      checkSignal(signal, 'redisLock.acquire');
      signal?.throwIfAborted();
      const token = randomUUID();
      const sentAt = performance.now();
      const reply = await send(ACQUIRE, [key, fencingKey], [token, ttlArg], signal);
      if (reply === null || reply === undefined) return undefined;
      const fencingToken = integerReply(reply);
      if (fencingToken === undefined)
        throw new TypeError(
          `redisLock.acquire: unexpected reply from Redis for '${key}': ${describe(reply)}`,
        );
      const lease: RedisLease = Object.freeze({ key, token, fencingToken });
      expiries.set(lease, sentAt + ttl);
      return lease;
    },
    async renew(lease: RedisLease, signal?: AbortSignal): Promise<boolean> {
      checkLease(lease, key, 'redisLock.renew');
      checkSignal(signal, 'redisLock.renew');
      signal?.throwIfAborted();
      const sentAt = performance.now();
      const renewed = integerReply(await send(RENEW, [key], [lease.token, ttlArg], signal)) === 1;
      if (renewed) expiries.set(lease, sentAt + ttl);
      return renewed;
    },
    release(lease: RedisLease): Promise<void> {
      // Bad input and a client that throws reject, as acquire and renew do (they are async).
      try {
        return releaseLease(lease);
      } catch (error) {
        return Promise.reject(error);
      }
    },
  });

  function releaseLease(lease: RedisLease): Promise<void> {
    checkLease(lease, key, 'redisLock.release');
    const expiresAt = expiries.get(lease);
    expiries.delete(lease);
    const controller = new AbortController();
    const released = send(RELEASE, [key], [lease.token], controller.signal).then(() => {});
    // A lease of another lock object on the same key: no expiry known, wait for the answer.
    if (expiresAt === undefined) return released;
    const left = expiresAt - performance.now();
    if (left <= 0) {
      // Expired already: Redis has freed the key (or given it to another token, which the
      // script leaves alone). Nothing to wait for.
      released.catch(() => {});
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        controller.abort();
        released.catch(() => {});
        resolve();
      }, left);
      released.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Transient errors

/** Error replies that mean "not now": the server is loading, busy, or the cluster is reconfiguring. */
const TRANSIENT_REPLY = /^(?:LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN)(?:\s|$)/;

/** The clients' connection-state errors, by class name. */
const TRANSIENT_CLASSES: ReadonlySet<string> = new Set([
  // node-redis v4 and v5
  'SocketClosedUnexpectedlyError',
  'ClientOfflineError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'RootNodesUnavailableError',
  // ioredis
  'MaxRetriesPerRequestError',
  'ClusterAllFailedError',
]);

/** The same errors by message (the class name is lost when a bundler minifies), and ioredis's plain `Error`s. */
const TRANSIENT_MESSAGES: readonly RegExp[] = [
  // node-redis
  /^Socket closed unexpectedly$/,
  /^The client is offline$/,
  /^Connection timeout$/,
  /^Socket timeout timeout\. Expecting data/,
  /^All the root nodes are unavailable$/,
  // ioredis
  /^Connection is closed\.$/,
  /^Stream isn't writeable and enableOfflineQueue options is false$/,
  /^Reached the max retries per request limit/,
  /^Failed to refresh slots cache\.$/,
  /^Command timed out$/,
  /^Socket timeout\. Expecting data/,
];

/** How deep `cause` chains are followed (as the core does). */
const MAX_DEPTH = 8;

function isTransientRedisObject(error: object): boolean {
  const message = (error as { message?: unknown }).message;
  if (typeof message === 'string') {
    if (TRANSIENT_REPLY.test(message)) return true;
    for (const pattern of TRANSIENT_MESSAGES) if (pattern.test(message)) return true;
  }
  const name = (error as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && TRANSIENT_CLASSES.has(name);
}

function walk(error: unknown, depth: number): boolean {
  if (depth > MAX_DEPTH || typeof error !== 'object' || error === null) return false;
  if (isTransientRedisObject(error)) return true;
  const { cause, errors } = error as { cause?: unknown; errors?: unknown };
  if (Array.isArray(errors)) for (const inner of errors) if (walk(inner, depth + 1)) return true;
  return cause !== undefined && cause !== error && walk(cause, depth + 1);
}

/**
 * Whether `error` (or an error in its `cause` chain or inside an `AggregateError`) is a Redis
 * failure another try may get past: the connection was lost or could not be made (`ECONNRESET`,
 * `ECONNREFUSED`, … as {@link isTransientNetworkError} knows them), the client is offline or
 * reconnecting (node-redis's `SocketClosedUnexpectedlyError`, `ClientOfflineError`, connection
 * and socket timeouts; ioredis's "Connection is closed.", `MaxRetriesPerRequestError`, offline
 * queue disabled, command timeout), or the server answered `LOADING`, `BUSY`, `TRYAGAIN`,
 * `CLUSTERDOWN` or `MASTERDOWN`. A client closed on purpose (`ClientClosedError`,
 * `DisconnectsClientError`) and every other error reply (`WRONGTYPE`, `NOSCRIPT`, `BUSYKEY`, …)
 * are not transient.
 *
 * @example
 * ```ts
 * const locks = new Backoff({ deadline: 10_000, attemptTimeout: 500, retryOn: isTransientRedisError });
 * ```
 */
export function isTransientRedisError(error: unknown): boolean {
  return isTransientNetworkError(error) || walk(error, 0);
}
