/**
 * `asyncbackoff/redis` without a server: option validation, which client shape gets which call
 * (and the attempt's signal), the fencing counter's hash slot, release bounded by the lease's
 * expiry (fake timers), and `isTransientRedisError` on the clients' real error classes. Against
 * real Redis servers: test/integration/redis-lock.test.ts.
 */
import { createRequire } from 'node:module';
import { ReplyError } from 'ioredis';
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  DisconnectsClientError,
  ErrorReply,
  RootNodesUnavailableError,
  SimpleError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
} from 'redis';
import {
  ClientOfflineError as ClientOfflineErrorV4,
  SocketClosedUnexpectedlyError as SocketClosedUnexpectedlyErrorV4,
} from 'redis-v4';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  isTransientRedisError,
  type RedisLease,
  type RedisLockClient,
  redisLock,
} from '../src/redis.js';
import { type InstalledClock, installFakeClock } from './support/clock.js';

interface Call {
  script: string;
  keys: string[];
  args: string[];
  signal: AbortSignal | undefined;
  how: string;
}

// ioredis exports this class only from its build directory, whose types need redis-errors' (absent).
const { MaxRetriesPerRequestError } = createRequire(import.meta.url)('ioredis/built/errors') as {
  MaxRetriesPerRequestError: new (limit: number) => Error;
};

/** A node-redis-shaped client (v5 if `v5`), answering scripts with `answer`. */
function nodeRedis(answer: (call: Call) => Promise<unknown>, v5 = true) {
  const calls: Call[] = [];
  const evalWith =
    (signal: AbortSignal | undefined, how: string) =>
    (script: string, options: { keys: string[]; arguments: string[] }) => {
      const call = { script, keys: options.keys, args: options.arguments, signal, how };
      calls.push(call);
      return answer(call);
    };
  const client = {
    eval: evalWith(undefined, 'eval'),
    ...(v5
      ? {
          withAbortSignal: (signal: AbortSignal) => ({ eval: evalWith(signal, 'withAbortSignal') }),
        }
      : {}),
  };
  return { client: client as RedisLockClient, calls };
}

/** An ioredis-shaped client. */
function ioredis(answer: (call: Call) => Promise<unknown>) {
  const calls: Call[] = [];
  const client = {
    eval(script: string, numkeys: number, ...rest: string[]) {
      const call = {
        script,
        keys: rest.slice(0, numkeys),
        args: rest.slice(numkeys),
        signal: undefined,
        how: 'ioredis',
      };
      calls.push(call);
      return answer(call);
    },
    call: async () => null,
    defineCommand() {},
  };
  return { client: client as RedisLockClient, calls };
}

/** CRC16-XMODEM, the hash Redis Cluster uses, modulo 16384; with hash tags. */
function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

describe('redisLock: options', () => {
  const { client } = nodeRedis(async () => null);

  it.each([
    ['no client', undefined, /'client' must be a node-redis or ioredis client/],
    ['a client without eval', { get: () => {} }, /'client' must be a node-redis or ioredis client/],
  ])('rejects %s (TypeError)', (_what, bad, message) => {
    expect(() => redisLock(bad as never, 'k', { ttl: 10 })).toThrow(TypeError);
    expect(() => redisLock(bad as never, 'k', { ttl: 10 })).toThrow(message);
  });

  it.each([
    [1, TypeError, /'key' must be a non-empty string, got 1/],
    ['', TypeError, /'key' must be a non-empty string/],
    ['a}b', RangeError, /'key' 'a}b' \(a string\) has a '}' but no hash tag/],
    ['x{}y', RangeError, /has a '}' but no hash tag/],
    ['{}', RangeError, /has a '}' but no hash tag/],
    ['x{}y{z}', RangeError, /has a '}' but no hash tag/],
  ])('rejects the key %j', (key, kind, message) => {
    expect(() => redisLock(client, key as never, { ttl: 10 })).toThrow(kind);
    expect(() => redisLock(client, key as never, { ttl: 10 })).toThrow(message);
  });

  it.each([
    [undefined, TypeError, /options must be an object/],
    [{}, TypeError, /'ttl' must be a number of milliseconds, got undefined/],
    [{ ttl: '1000' }, TypeError, /'ttl' must be a number/],
    [{ ttl: 0 }, RangeError, /'ttl' must be an integer from 1 to 2147483647 ms, got 0/],
    [{ ttl: 1.5 }, RangeError, /got 1\.5/],
    [{ ttl: 2 ** 31 }, RangeError, /'ttl'/],
    [{ ttl: Number.NaN }, RangeError, /'ttl'/],
    [{ ttl: 1000, ttI: 5 }, TypeError, /unknown option 'ttI'/],
  ])('rejects the options %j', (options, kind, message) => {
    expect(() => redisLock(client, 'k', options as never)).toThrow(kind);
    expect(() => redisLock(client, 'k', options as never)).toThrow(message);
    expect(() => redisLock(client, 'k', options as never)).toThrow(/^redisLock: /);
  });

  it('exposes key, fencingKey and ttl, frozen', () => {
    const lock = redisLock(client, 'jobs', { ttl: 1000 });
    expect(lock).toMatchObject({ key: 'jobs', fencingKey: '{jobs}:fencing', ttl: 1000 });
    expect(Object.isFrozen(lock)).toBe(true);
  });
});

describe('redisLock: the fencing counter shares the lock key’s Redis Cluster slot', () => {
  it.each([
    'jobs',
    'lock:jobs',
    '{user:42}:lock',
    'a{b}c',
    'a{b}c{d}',
    'only{open',
    'nested{{a}}',
    'unicode:ключ',
    'spaces in key',
  ])('%s', (key) => {
    const lock = redisLock(nodeRedis(async () => null).client, key, { ttl: 10 });
    expect(lock.fencingKey).not.toBe(key);
    expect(slotOf(lock.fencingKey)).toBe(slotOf(key));
  });
});

describe('redisLock: commands', () => {
  it('acquires with SET NX PX and INCR in one script, a fresh token each time', async () => {
    let fence = 0;
    const { client, calls } = nodeRedis(async () => ++fence);
    const lock = redisLock(client, 'jobs', { ttl: 1500 });
    const signal = new AbortController().signal;
    const first = await lock.acquire(signal);
    const second = await lock.acquire(signal);
    expect(first).toMatchObject({ key: 'jobs', fencingToken: 1 });
    expect(second).toMatchObject({ key: 'jobs', fencingToken: 2 });
    expect(first!.token).not.toBe(second!.token);
    expect(first!.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(calls[0]).toMatchObject({
      keys: ['jobs', '{jobs}:fencing'],
      args: [first!.token, '1500'],
      signal,
      how: 'withAbortSignal',
    });
    expect(calls[0]!.script).toMatch(/'SET', KEYS\[1\], ARGV\[1\], 'NX', 'PX', ARGV\[2\]/);
    expect(calls[0]!.script).toMatch(/INCR/);
    expect(Object.isFrozen(first)).toBe(true);
  });

  it('returns undefined (busy) on a nil reply', async () => {
    const { client } = nodeRedis(async () => null);
    await expect(
      redisLock(client, 'k', { ttl: 10 }).acquire(new AbortController().signal),
    ).resolves.toBe(undefined);
  });

  it('reads a fencing token given as a string or bigint (a client type mapping)', async () => {
    for (const reply of ['7', 7n]) {
      const { client } = nodeRedis(async () => reply);
      const lease = await redisLock(client, 'k', { ttl: 10 }).acquire();
      expect(lease?.fencingToken).toBe(7);
    }
  });

  it('rejects an unexpected reply with a TypeError naming the key', async () => {
    const { client } = nodeRedis(async () => 'OK');
    await expect(redisLock(client, 'k', { ttl: 10 }).acquire()).rejects.toThrow(
      /redisLock.acquire: unexpected reply from Redis for 'k': 'OK'/,
    );
  });

  it('rejects a reply that is not an integer, a numeric string or a bigint as unexpected', async () => {
    const { client } = nodeRedis(async () => true);
    await expect(redisLock(client, 'k', { ttl: 10 }).acquire()).rejects.toThrow(
      /redisLock.acquire: unexpected reply from Redis for 'k'/,
    );
  });

  it('refuses a signal that is not an AbortSignal (TypeError), sending nothing', async () => {
    const { client, calls } = nodeRedis(async () => 1);
    const lock = redisLock(client, 'k', { ttl: 10 });
    await expect(lock.acquire('soon' as never)).rejects.toThrow(
      /redisLock.acquire: 'signal' must be an AbortSignal, got 'soon'/,
    );
    const lease = (await lock.acquire())!;
    await expect(lock.renew(lease, {} as never)).rejects.toThrow(
      /redisLock.renew: 'signal' must be an AbortSignal/,
    );
    expect(calls).toHaveLength(1);
  });

  it('does not send a command when the signal is already aborted', async () => {
    const { client, calls } = nodeRedis(async () => 1);
    const controller = new AbortController();
    const reason = new Error('gone');
    controller.abort(reason);
    await expect(redisLock(client, 'k', { ttl: 10 }).acquire(controller.signal)).rejects.toBe(
      reason,
    );
    expect(calls).toHaveLength(0);
  });

  it('sends no signal to node-redis v4 (its abort would lose a SET that ran) or to ioredis', async () => {
    for (const { client, calls } of [nodeRedis(async () => 1, false), ioredis(async () => 1)]) {
      const lock = redisLock(client, 'jobs', { ttl: 100 });
      const lease = await lock.acquire(new AbortController().signal);
      expect(lease?.fencingToken).toBe(1);
      expect(calls[0]).toMatchObject({ keys: ['jobs', '{jobs}:fencing'], signal: undefined });
    }
    const { client, calls } = ioredis(async () => 1);
    await redisLock(client, 'jobs', { ttl: 100 }).acquire();
    expect(calls[0]!.how).toBe('ioredis');
  });

  it('passes the signal through withCommandOptions on a node-redis v5 cluster', async () => {
    const seen: unknown[] = [];
    const cluster = {
      eval: async () => 1,
      withCommandOptions: (options: unknown) => {
        seen.push(options);
        return { eval: async () => 1 };
      },
    };
    const signal = new AbortController().signal;
    await redisLock(cluster as never, 'k', { ttl: 10 }).acquire(signal);
    expect(seen).toEqual([{ abortSignal: signal }]);
  });

  it('renews and releases only with the lease’s token', async () => {
    const replies = [1, 1, 0, 1];
    const { client, calls } = nodeRedis(async () => replies.shift());
    const lock = redisLock(client, 'jobs', { ttl: 300 });
    const lease = (await lock.acquire())!;
    const signal = new AbortController().signal;
    await expect(lock.renew(lease, signal)).resolves.toBe(true);
    await expect(lock.renew(lease, signal)).resolves.toBe(false);
    await lock.release(lease);
    expect(calls[1]).toMatchObject({ keys: ['jobs'], args: [lease.token, '300'], signal });
    expect(calls[1]!.script).toMatch(/GET.*ARGV\[1\][\s\S]*PEXPIRE/);
    expect(calls[3]).toMatchObject({ keys: ['jobs'], args: [lease.token] });
    expect(calls[3]!.script).toMatch(/GET.*ARGV\[1\][\s\S]*DEL/);
  });

  it('refuses a lease of another key, or no lease (rejects with a TypeError, as acquire and renew do)', async () => {
    const { client } = nodeRedis(async () => 1);
    const lock = redisLock(client, 'a', { ttl: 10 });
    const other = (await redisLock(client, 'b', { ttl: 10 }).acquire())!;
    await expect(lock.release(other)).rejects.toThrow(
      /redisLock.release: 'lease' must be a lease of the lock on 'a'/,
    );
    await expect(lock.release({} as RedisLease)).rejects.toThrow(TypeError);
    await expect(lock.renew(other)).rejects.toThrow(TypeError);
  });

  it('rejects when the client throws synchronously on release', async () => {
    const failure = new Error('client closed');
    let n = 0;
    const { client } = nodeRedis((() => {
      if (n++ === 0) return Promise.resolve(1);
      throw failure;
    }) as () => Promise<unknown>);
    const lock = redisLock(client, 'k', { ttl: 1000 });
    const lease = (await lock.acquire())!;
    await expect(lock.release(lease)).rejects.toBe(failure);
  });

  it('reports a release error', async () => {
    const failure = new Error('NOPERM');
    let n = 0;
    const { client } = nodeRedis(async () => {
      if (n++ === 0) return 1;
      throw failure;
    });
    const lock = redisLock(client, 'k', { ttl: 1000 });
    const lease = (await lock.acquire())!;
    await expect(lock.release(lease)).rejects.toBe(failure);
  });
});

describe('redisLock.release is bounded by the lease’s expiry (fake timers)', () => {
  let clock: InstalledClock;
  beforeEach(() => {
    clock = installFakeClock();
  });
  afterEach(() => clock.uninstall());

  it('resolves when the lease would have expired, aborting the queued command', async () => {
    let n = 0;
    const { client, calls } = nodeRedis(() =>
      n++ === 0 ? Promise.resolve(1) : new Promise(() => {}),
    );
    const lock = redisLock(client, 'k', { ttl: 1000 });
    const lease = (await lock.acquire())!;
    await clock.tickAsync(400);
    let released = false;
    void lock.release(lease).then(() => {
      released = true;
    });
    await clock.tickAsync(599);
    expect(released).toBe(false);
    await clock.tickAsync(1);
    expect(released).toBe(true);
    expect(calls[1]!.signal?.aborted).toBe(true);
    expect(clock.countTimers()).toBe(0);
  });

  it('counts the expiry from the last renewal', async () => {
    let n = 0;
    const { client } = nodeRedis(() => (n++ < 2 ? Promise.resolve(1) : new Promise(() => {})));
    const lock = redisLock(client, 'k', { ttl: 1000 });
    const lease = (await lock.acquire())!;
    await clock.tickAsync(500);
    await lock.renew(lease);
    let released = false;
    void lock.release(lease).then(() => {
      released = true;
    });
    await clock.tickAsync(999);
    expect(released).toBe(false);
    await clock.tickAsync(1);
    expect(released).toBe(true);
  });

  it('resolves at once for a lease already expired (the command still goes out)', async () => {
    let n = 0;
    const { client, calls } = nodeRedis(() =>
      n++ === 0 ? Promise.resolve(1) : Promise.reject(new Error('down')),
    );
    const lock = redisLock(client, 'k', { ttl: 100 });
    const lease = (await lock.acquire())!;
    await clock.tickAsync(100);
    await expect(lock.release(lease)).resolves.toBeUndefined();
    expect(calls).toHaveLength(2);
  });

  it('waits for the answer to release a lease another lock object on the key handed out (no expiry known)', async () => {
    let n = 0;
    let answer!: () => void;
    const { client } = nodeRedis(() =>
      n++ === 0
        ? Promise.resolve(1)
        : new Promise((resolve) => {
            answer = () => resolve(1);
          }),
    );
    const lease = (await redisLock(client, 'k', { ttl: 100 }).acquire())!;
    let released = false;
    void redisLock(client, 'k', { ttl: 100 })
      .release(lease)
      .then(() => {
        released = true;
      });
    await clock.tickAsync(1_000);
    expect(released).toBe(false);
    answer();
    await clock.tickAsync(0);
    expect(released).toBe(true);
  });

  it('clears its timer when the release answers', async () => {
    const { client } = nodeRedis(async () => 1);
    const lock = redisLock(client, 'k', { ttl: 100_000 });
    await lock.release((await lock.acquire())!);
    expect(clock.countTimers()).toBe(0);
  });
});

describe('isTransientRedisError', () => {
  const reply = (message: string) => new SimpleError(message);

  it.each([
    ['node-redis SocketClosedUnexpectedlyError', new SocketClosedUnexpectedlyError()],
    ['node-redis ClientOfflineError', new ClientOfflineError()],
    ['node-redis ConnectionTimeoutError', new ConnectionTimeoutError()],
    ['node-redis SocketTimeoutError', new SocketTimeoutError(100)],
    ['node-redis RootNodesUnavailableError', new RootNodesUnavailableError()],
    ['node-redis v4 SocketClosedUnexpectedlyError', new SocketClosedUnexpectedlyErrorV4()],
    ['node-redis v4 ClientOfflineError', new ClientOfflineErrorV4()],
    ['ioredis "Connection is closed."', new Error('Connection is closed.')],
    ['ioredis MaxRetriesPerRequestError', new MaxRetriesPerRequestError(20)],
    [
      'ioredis offline queue disabled',
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    ],
    ['ioredis command timeout', new Error('Command timed out')],
    ['LOADING', reply('LOADING Redis is loading the dataset in memory')],
    [
      'BUSY',
      reply(
        'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
      ),
    ],
    ['TRYAGAIN', new ReplyError('TRYAGAIN Multiple keys request during rehashing of slot')],
    ['CLUSTERDOWN', new ReplyError('CLUSTERDOWN The cluster is down')],
    [
      'MASTERDOWN',
      new ErrorReply(
        'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
      ),
    ],
    ['plain ECONNRESET', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['a cause chain', new Error('lock failed', { cause: new SocketClosedUnexpectedlyError() })],
    ['an AggregateError', new AggregateError([new Error('x'), reply('LOADING ...')])],
  ])('%s is transient', (_what, error) => {
    expect(isTransientRedisError(error)).toBe(true);
  });

  it.each([
    ['ClientClosedError (closed on purpose)', new ClientClosedError()],
    ['DisconnectsClientError (disconnected on purpose)', new DisconnectsClientError()],
    ['WRONGTYPE', reply('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['BUSYKEY', reply('BUSYKEY Target key name already exists.')],
    ['BUSYGROUP', new ReplyError('BUSYGROUP Consumer Group name already exists')],
    ['NOSCRIPT', reply('NOSCRIPT No matching script.')],
    ['ERR', new ReplyError('ERR unknown command')],
    ['a plain error', new Error('boom')],
    ['not an error', 'LOADING'],
    ['null', null],
  ])('%s is not', (_what, error) => {
    expect(isTransientRedisError(error)).toBe(false);
  });

  it('recognises a client error class by name when its message is not a string', () => {
    const offline = new ClientOfflineError();
    Object.defineProperty(offline, 'message', { value: undefined });
    expect(isTransientRedisError(offline)).toBe(true);
    expect(isTransientRedisError({ message: 42 })).toBe(false);
  });

  it('ends on a cyclic cause chain', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect(isTransientRedisError(a)).toBe(false);
  });
});

describe('redisLock: client shapes and inputs, at their edges', () => {
  it('rejects a null client with the client TypeError', () => {
    expect(() => redisLock(null as never, 'k', { ttl: 10 })).toThrow(
      /^redisLock: 'client' must be a node-redis or ioredis client \(with eval\), got null/,
    );
  });

  it('treats a client with only one of call and defineCommand as node-redis (options object, signal)', async () => {
    for (const extra of [{ call: async () => null }, { defineCommand() {} }]) {
      const { client, calls } = nodeRedis(async () => 1);
      Object.assign(client, extra);
      const signal = new AbortController().signal;
      const lease = await redisLock(client, 'jobs', { ttl: 100 }).acquire(signal);
      expect(lease?.fencingToken).toBe(1);
      expect(calls[0]).toMatchObject({
        keys: ['jobs', '{jobs}:fencing'],
        signal,
        how: 'withAbortSignal',
      });
    }
  });

  it('sends through the plain client, not withAbortSignal, when no signal is given (node-redis v5)', async () => {
    const { client, calls } = nodeRedis(async () => 1);
    await redisLock(client, 'k', { ttl: 10 }).acquire();
    expect(calls[0]).toMatchObject({ how: 'eval', signal: undefined });
  });

  it('accepts a hash tag after a stray }', () => {
    const lock = redisLock(nodeRedis(async () => null).client, 'x}{a}', { ttl: 10 });
    expect(lock.fencingKey).toBe('x}{a}:fencing');
    expect(slotOf(lock.fencingKey)).toBe(slotOf('x}{a}'));
  });

  it('suggests the key without its } as a hash tag when refusing it', () => {
    expect(() => redisLock(nodeRedis(async () => null).client, 'a}b}', { ttl: 10 })).toThrow(
      /use a hash tag, e\.g\. '\{ab\}'$/,
    );
  });

  it.each([1, 2147483647])('accepts the ttl %d (the bounds)', (ttl) => {
    expect(redisLock(nodeRedis(async () => null).client, 'k', { ttl }).ttl).toBe(ttl);
  });

  it('returns undefined (busy) on an undefined reply', async () => {
    const { client } = nodeRedis(async () => undefined);
    await expect(redisLock(client, 'k', { ttl: 10 }).acquire()).resolves.toBe(undefined);
  });

  it.each([
    ['null', null],
    ['a lease without a token', { key: 'k' }],
    ['a lease with a non-string token', { key: 'k', token: 5, fencingToken: 1 }],
    ['a function with key and token', Object.assign(() => {}, { key: 'k', token: 't' })],
  ])('refuses %s as a lease (TypeError), sending nothing', async (_what, bad) => {
    const { client, calls } = nodeRedis(async () => 1);
    const lock = redisLock(client, 'k', { ttl: 10 });
    await expect(lock.release(bad as never)).rejects.toThrow(
      /^redisLock\.release: 'lease' must be a lease of the lock on 'k', got /,
    );
    await expect(lock.renew(bad as never)).rejects.toThrow(
      /^redisLock\.renew: 'lease' must be a lease of the lock on 'k', got /,
    );
    expect(calls).toHaveLength(0);
  });
});

describe('redisLock: a failed renewal does not extend the release bound (fake timers)', () => {
  let clock: InstalledClock;
  beforeEach(() => {
    clock = installFakeClock();
  });
  afterEach(() => clock.uninstall());

  it('keeps the expiry of the acquisition when a renewal answers 0', async () => {
    const replies: (() => Promise<unknown>)[] = [
      () => Promise.resolve(1),
      () => Promise.resolve(0),
      () => new Promise(() => {}),
    ];
    const { client } = nodeRedis(() => replies.shift()!());
    const lock = redisLock(client, 'k', { ttl: 1000 });
    const lease = (await lock.acquire())!;
    await clock.tickAsync(500);
    await expect(lock.renew(lease)).resolves.toBe(false);
    let released = false;
    void lock.release(lease).then(() => {
      released = true;
    });
    await clock.tickAsync(499);
    expect(released).toBe(false);
    await clock.tickAsync(1);
    expect(released).toBe(true);
  });
});

describe('isTransientRedisError: the walk', () => {
  /** `error` wrapped in `levels` plain errors as causes. */
  const wrapped = (error: unknown, levels: number): unknown =>
    levels === 0 ? error : new Error(`level ${levels}`, { cause: wrapped(error, levels - 1) });

  it('follows a cause chain 8 levels deep, and no deeper', () => {
    expect(isTransientRedisError(wrapped(new SocketClosedUnexpectedlyError(), 8))).toBe(true);
    expect(isTransientRedisError(wrapped(new SocketClosedUnexpectedlyError(), 9))).toBe(false);
  });

  it('counts AggregateError nesting towards the depth limit, and ends on one containing itself', () => {
    let nested: unknown = new SocketClosedUnexpectedlyError();
    for (let i = 0; i < 9; i++) nested = new AggregateError([nested]);
    expect(isTransientRedisError(nested)).toBe(false);
    const cyclic = new AggregateError([new Error('x')]);
    cyclic.errors.push(cyclic);
    expect(isTransientRedisError(cyclic)).toBe(false);
  });

  it('is false for an AggregateError of non-transient errors', () => {
    expect(isTransientRedisError(new AggregateError([new Error('x'), new Error('y')]))).toBe(false);
  });

  it('does not turn a message that is not a string into one', () => {
    let read = 0;
    const message = {
      toString() {
        read++;
        return 'LOADING Redis is loading the dataset in memory';
      },
    };
    expect(isTransientRedisError({ message })).toBe(false);
    expect(read).toBe(0);
  });

  it('is false for an object without a constructor', () => {
    const bare = Object.assign(Object.create(null) as object, { message: 'boom' });
    expect(isTransientRedisError(bare)).toBe(false);
    expect(isTransientRedisError(new Error('outer', { cause: Object.create(null) }))).toBe(false);
  });
});
