/**
 * aioretry-style policy functions: `policy(fails, error, info) => { abandon, delay } | [abandon, delay]`.
 * The examples of aioretry's README are translated (seconds -> milliseconds).
 */
import { describe, expect, it } from 'vitest';
import {
  asyncbackoff,
  Backoff,
  type GiveupEvent,
  type PolicyDecision,
  type PolicyInfo,
  type RetryPolicy,
} from '../src/index.js';
import {
  alwaysFailing,
  decorateMethod,
  FatalError,
  scripted,
  stats,
  TransientError,
  track,
  useFakeClock,
} from './support/harness.js';

const t = useFakeClock();

describe('policy(fails, error, info)', () => {
  it('is called after each failure with fails counting from 1, the very error, and info', async () => {
    const { clock } = t;
    const calls: [number, unknown, PolicyInfo][] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      deadline: 10_000,
      policy: (fails, error, info) => {
        calls.push([fails, error, info]);
        return { abandon: false, delay: 100 };
      },
    });
    const { fn, starts, thrown } = scripted<string>(
      new TransientError('a'),
      new TransientError('b'),
      'ok',
    );
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.value).toBe('ok');
    expect(starts).toEqual([0, 100, 200]);
    expect(calls).toHaveLength(2);
    expect(calls[0]).toEqual([
      1,
      thrown[0],
      { attempt: 1, kind: 'error', result: undefined, elapsed: 0, remaining: 10_000 },
    ]);
    expect(calls[0]![1]).toBe(thrown[0]);
    expect(calls[1]![0]).toBe(2);
    expect(calls[1]![1]).toBe(thrown[1]);
    expect(calls[1]![2]).toMatchObject({ attempt: 2, elapsed: 100, remaining: 9900 });
  });

  it('accepts the tuple form [abandon, delay]', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      policy: (fails) => [false, fails * 50],
      maxTries: 4,
    });
    const { fn, starts } = alwaysFailing();
    track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(starts).toEqual([0, 50, 150, 300]);
  });

  it('abandon: true rejects with that very error at once, reason "policy"', async () => {
    const { clock } = t;
    const giveups: GiveupEvent[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 100,
      policy: (fails) => ({ abandon: fails >= 2 }),
      onGiveup: (event) => {
        giveups.push(event);
      },
    });
    const { fn, starts, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(starts).toEqual([0, 100]);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(thrown[1]);
    expect(result.at).toBe(100);
    expect(giveups).toHaveLength(1);
    expect(giveups[0]!.reason).toBe('policy');
    expect(giveups[0]!.error).toBe(thrown[1]);
  });

  it('delay replaces the pause; an omitted delay keeps the pause', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 1000,
      policy: (fails): PolicyDecision => (fails % 2 === 1 ? [false, 10] : { abandon: false }),
      maxTries: 5,
    });
    const { fn, starts } = alwaysFailing();
    track(backoff.execute(fn));
    await clock.tickAsync(10_000);
    expect(starts).toEqual([0, 10, 1010, 1020, 2020]);
  });

  it("aioretry's README example: (fails - 1) % 3 * 100 ms, retrying until it succeeds", async () => {
    const { clock } = t;
    // aioretry's retry_policy(fails) = (False, (fails - 1) % 3 * 0.1) in seconds.
    const retryPolicy: RetryPolicy = (fails) => [false, ((fails - 1) % 3) * 100];
    // @retry(retry_policy) async def connect_to_server(): ...
    const { fn, starts } = scripted<string>(
      ...Array.from({ length: 7 }, () => new Error('refused')),
      'connected',
    );
    const connectToServer = asyncbackoff({ policy: retryPolicy, retryAll: true })(fn);
    const result = track(connectToServer());
    await clock.tickAsync(10_000);
    expect(result.value).toBe('connected');
    // Delays 0, 100, 200, 0, 100, 200, 0 before retries 1..7.
    expect(starts).toEqual([0, 0, 100, 300, 300, 400, 600, 600]);
  });

  it('a policy with maxTries: maxTries still caps the attempts (reason "max-tries")', async () => {
    const { clock } = t;
    const reasons: string[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      policy: () => [false, 10],
      maxTries: 3,
      onGiveup: ({ reason }) => {
        reasons.push(reason);
      },
    });
    const { fn, starts, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(starts).toEqual([0, 10, 20]);
    expect(result.error).toBe(thrown[2]);
    expect(result.at).toBe(20);
    expect(reasons).toEqual(['max-tries']);
  });

  it('a policy delay that would cross the deadline is not slept (reason "deadline")', async () => {
    const { clock } = t;
    const reasons: string[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      policy: (fails) => [false, fails * 100],
      deadline: 500,
      onGiveup: ({ reason }) => {
        reasons.push(reason);
      },
    });
    const { fn, starts, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    // 0 -> +100 -> 100 -> +200 -> 300 -> +300 would end at 600 >= 500.
    expect(starts).toEqual([0, 100, 300]);
    expect(result.error).toBe(thrown[2]);
    expect(result.at).toBe(300);
    expect(reasons).toEqual(['deadline']);
  });

  it('a non-retriable error rejects without asking the policy', async () => {
    const { clock } = t;
    let asked = 0;
    const backoff = new Backoff({
      exceptions: [TransientError],
      policy: () => {
        asked++;
        return [false, 0];
      },
    });
    const { fn, thrown } = scripted<string>(new FatalError('no'));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(0);
    expect(result.error).toBe(thrown[0]);
    expect(asked).toBe(0);
  });

  it('is asked about retryIf results too: error undefined, kind "result", the result in info', async () => {
    const { clock } = t;
    const seen: [number, unknown, string, unknown][] = [];
    const backoff = new Backoff({
      retryIf: (status: string) => status === 'run',
      policy: (fails, error, info) => {
        seen.push([fails, error, info.kind, info.result]);
        return [false, 100];
      },
    });
    const { fn, starts } = scripted('run', 'run', 'done');
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.value).toBe('done');
    expect(starts).toEqual([0, 100, 200]);
    expect(seen).toEqual([
      [1, undefined, 'result', 'run'],
      [2, undefined, 'result', 'run'],
    ]);
  });

  it('a policy that throws rejects the execution with what it threw; no further attempt', async () => {
    const { clock } = t;
    const boom = new Error('policy bug');
    const backoff = new Backoff({
      exceptions: [TransientError],
      policy: () => {
        throw boom;
      },
    });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.error).toBe(boom);
    expect(starts).toEqual([0]);
  });
});

describe('a policy with no filter beside it (aioretry: the policy decides about every error)', () => {
  it('is asked about any thrown value, and retries as it says', async () => {
    const { clock } = t;
    const asked: unknown[] = [];
    const backoff = new Backoff({
      maxTries: 5,
      policy: (fails, error) => {
        asked.push(error);
        return [fails >= 2, 50];
      },
    });
    const { fn, starts, thrown } = scripted<string>(
      new FatalError('a'),
      new Error('b'),
      'never reached',
    );
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(starts).toEqual([0, 50]);
    expect(asked).toEqual([thrown[0], thrown[1]]);
    expect(result.error).toBe(thrown[1]);
    expect(backoff.statistics).toMatchObject({ attempts: 2, giveUps: 1 });
  });

  it('an async policy is awaited: it may retry, then abandon', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      policy: async (fails) => ({ abandon: fails >= 3, delay: 10 }),
    });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(starts).toEqual([0, 10, 20]);
    expect(result.error).toBeInstanceOf(Error);
  });

  it('beside exceptions or retryOn it is asked only about what they let through', async () => {
    const { clock } = t;
    for (const filter of [{ exceptions: [TransientError] }, { retryOn: () => false }]) {
      let asked = 0;
      const backoff = new Backoff({
        ...filter,
        maxTries: 5,
        policy: () => {
          asked++;
          return [false, 0];
        },
      });
      const { fn, starts, thrown } = scripted<string>(new FatalError('not listed'), 'ok');
      const result = track(backoff.execute(fn));
      await clock.tickAsync(100);
      expect(result.error).toBe(thrown[0]);
      expect(starts).toHaveLength(1);
      expect(asked).toBe(0);
    }
  });

  it('retryAll: false beside it keeps thrown values from it (only attempt timeouts reach it)', async () => {
    const { clock } = t;
    let asked = 0;
    const backoff = new Backoff({
      maxTries: 5,
      retryAll: false,
      policy: () => {
        asked++;
        return [false, 0];
      },
    });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(Error);
    expect(starts).toEqual([0]);
    expect(asked).toBe(0);
  });
});

describe('a policy returning garbage', () => {
  const cases: [string, unknown, ErrorConstructor | RangeErrorConstructor][] = [
    ['undefined', undefined, TypeError],
    ['null', null, TypeError],
    ['a number', 100, TypeError],
    ['a string', 'retry', TypeError],
    ['a boolean', false, TypeError],
    ['a non-number delay', { abandon: false, delay: '100' }, TypeError],
    ['a non-number tuple delay', [false, '100'], TypeError],
    ['a negative delay', { abandon: false, delay: -1 }, RangeError],
    ['a negative tuple delay', [false, -5], RangeError],
    ['a NaN delay', [false, Number.NaN], RangeError],
    ['an infinite delay', [false, Number.POSITIVE_INFINITY], RangeError],
    ['a delay above 2147483647', [false, 2_147_483_648], RangeError],
  ];
  for (const [what, decision, ErrorClass] of cases) {
    it(`${what} rejects with ${ErrorClass.name}; no further attempt`, async () => {
      const { clock } = t;
      const backoff = new Backoff({
        exceptions: [TransientError],
        policy: (() => decision) as unknown as RetryPolicy,
      });
      const { fn, starts } = alwaysFailing();
      const result = track(backoff.execute(fn));
      await clock.tickAsync(1000);
      expect(result.status).toBe('rejected');
      expect(result.error).toBeInstanceOf(ErrorClass);
      expect((result.error as Error).message).toMatch(/policy/);
      expect(starts).toEqual([0]);
      expect(backoff.statistics).toEqual(
        stats({ attempts: 1, done: 1, errors: 1, giveUps: 1, sumTime: 0 }),
      );
    });
  }
});

// ---- aioretry's "Use instance method as retry policy" example, translated -------------------------

class ConnectionRefused extends Error {
  override name = 'ConnectionRefused';
}

/** The server refuses the first `refusals` connections. */
class Client {
  connects: number[] = [];
  constructor(readonly refusals = 0) {}
  async _connect(): Promise<string> {
    this.connects.push(performance.now());
    if (this.connects.length <= this.refusals)
      throw new ConnectionRefused(`refused #${this.connects.length}`);
    return 'connected';
  }
}

class ClientWithConfigurableRetryPolicy extends Client {
  constructor(
    refusals: number,
    private readonly maxRetries = 3,
  ) {
    super(refusals);
  }

  _retryPolicy(fails: number): PolicyDecision {
    // aioretry: return fails > self._max_retries, fails * 0.1
    return [fails > this.maxRetries, fails * 100];
  }

  // @asyncbackoff({ policy: '_retryPolicy', exceptions: [ConnectionRefused] })
  async connect(): Promise<string> {
    return this._connect();
  }
}
decorateMethod(
  ClientWithConfigurableRetryPolicy,
  'connect',
  asyncbackoff({ policy: '_retryPolicy', exceptions: [ConnectionRefused] }),
);

/** Overrides the policy only: the inherited decorated `connect` must use it. */
class ImpatientClient extends ClientWithConfigurableRetryPolicy {
  override _retryPolicy(fails: number): PolicyDecision {
    return { abandon: fails >= 2, delay: 7 };
  }
}

class NoPolicyClient extends Client {
  // @asyncbackoff({ policy: '_retryPolicy', ... }) but no _retryPolicy method
  async connect(): Promise<string> {
    return this._connect();
  }
}
decorateMethod(
  NoPolicyClient,
  'connect',
  asyncbackoff({ policy: '_retryPolicy', exceptions: [ConnectionRefused] }),
);

describe('a policy given as a method name on a decorated method', () => {
  it('resolves this._retryPolicy on the instance (it reads this.maxRetries)', async () => {
    const { clock } = t;
    const client = new ClientWithConfigurableRetryPolicy(3, 10);
    const result = track(client.connect());
    await clock.tickAsync(10_000);
    expect(result.value).toBe('connected');
    // Delays 100, 200, 300.
    expect(client.connects).toEqual([0, 100, 300, 600]);
  });

  it('abandons after maxRetries retries: fails > maxRetries', async () => {
    const { clock } = t;
    const client = new ClientWithConfigurableRetryPolicy(Number.POSITIVE_INFINITY, 2);
    const result = track(client.connect());
    await clock.tickAsync(10_000);
    // fails 1 -> 100, fails 2 -> 200, fails 3 > 2 -> abandon.
    expect(client.connects).toEqual([0, 100, 300]);
    expect(result.status).toBe('rejected');
    expect(result.error).toBeInstanceOf(ConnectionRefused);
    expect((result.error as Error).message).toBe('refused #3');
    expect(result.at).toBe(300);
  });

  it('a subclass overriding _retryPolicy changes the behaviour of the inherited method', async () => {
    const { clock } = t;
    const client = new ImpatientClient(Number.POSITIVE_INFINITY, 10);
    const result = track(client.connect());
    await clock.tickAsync(10_000);
    expect(client.connects).toEqual([0, 7]);
    expect((result.error as Error).message).toBe('refused #2');
  });

  it('each instance uses its own configuration', async () => {
    const { clock } = t;
    const a = new ClientWithConfigurableRetryPolicy(Number.POSITIVE_INFINITY, 1);
    const b = new ClientWithConfigurableRetryPolicy(Number.POSITIVE_INFINITY, 3);
    const ra = track(a.connect());
    const rb = track(b.connect());
    await clock.tickAsync(10_000);
    expect(a.connects).toEqual([0, 100]);
    expect(b.connects).toEqual([0, 100, 300, 600]);
    expect(ra.status).toBe('rejected');
    expect(rb.status).toBe('rejected');
  });

  it('a missing method rejects with a TypeError naming it; no further attempt', async () => {
    const { clock } = t;
    const client = new NoPolicyClient(Number.POSITIVE_INFINITY);
    const result = track(client.connect());
    await clock.tickAsync(10_000);
    expect(result.status).toBe('rejected');
    expect(result.error).toBeInstanceOf(TypeError);
    expect((result.error as Error).message).toContain('_retryPolicy');
    expect(client.connects).toEqual([0]);
  });

  it('a method name used with execute() (no this) rejects with a TypeError', async () => {
    const { clock } = t;
    const backoff = new Backoff({ policy: '_retryPolicy', exceptions: [TransientError] });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(TypeError);
    expect(starts).toEqual([0]);
  });

  it('a method name that is not a function rejects with a TypeError', async () => {
    const { clock } = t;
    const target = {
      _retryPolicy: 42,
      connects: 0,
      connect: new Backoff({ policy: '_retryPolicy', retryAll: true }).wrap(async function (this: {
        connects: number;
      }) {
        this.connects++;
        throw new Error('refused');
      }),
    };
    const result = track(target.connect());
    await clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(TypeError);
    expect(target.connects).toBe(1);
  });
});
