/**
 * Hooks: onRetry, afterFailure (aioretry's after_failure), onGiveup and onSuccess. Sync and async;
 * async hooks are awaited but never hold an execution past its deadline; a hook that throws or
 * rejects ends the execution with that error. aioretry's `ClientTrackableFailures` example is
 * translated at the end (hooks given as method names of a decorated method).
 */
import { describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  asyncbackoff,
  Backoff,
  type BackoffOptions,
  type GiveupEvent,
  type PolicyDecision,
  type RetryBudget,
  RetryConditionError,
  type RetryEvent,
  type SuccessEvent,
} from '../src/index.js';
import {
  alwaysFailing,
  decorateMethod,
  FatalError,
  hang,
  now,
  scripted,
  sleep,
  TransientError,
  track,
  useFakeClock,
} from './support/harness.js';

const t = useFakeClock();

/** Fails with a fresh TransientError after `ms`, `failures` times, then resolves 'ok' after `ms`. */
function slow(ms: number, failures: number) {
  const starts: number[] = [];
  const thrown: TransientError[] = [];
  const fn = async (): Promise<string> => {
    starts.push(now());
    await sleep(ms);
    if (starts.length <= failures) {
      const error = new TransientError(`attempt ${starts.length}`);
      thrown.push(error);
      throw error;
    }
    return 'ok';
  };
  return { fn, starts, thrown };
}

describe('onRetry', () => {
  it('gets attempt, kind, error, result, delay, elapsed and remaining before each pause', async () => {
    const { clock } = t;
    const events: RetryEvent[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 100,
      deadline: 10_000,
      onRetry: (event) => {
        events.push(event);
      },
    });
    const { fn, starts, thrown } = slow(30, 2);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.value).toBe('ok');
    expect(starts).toEqual([0, 130, 260]);
    expect(events).toEqual([
      {
        attempt: 1,
        kind: 'error',
        error: thrown[0],
        result: undefined,
        delay: 100,
        elapsed: 30,
        remaining: 9970,
      },
      {
        attempt: 2,
        kind: 'error',
        error: thrown[1],
        result: undefined,
        delay: 100,
        elapsed: 160,
        remaining: 9840,
      },
    ]);
    expect(events[0]!.error).toBe(thrown[0]);
  });

  it('remaining is Infinity without a deadline', async () => {
    const { clock } = t;
    const events: RetryEvent[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 2,
      onRetry: (event) => {
        events.push(event);
      },
    });
    track(backoff.execute(alwaysFailing().fn));
    await clock.tickAsync(10);
    expect(events).toHaveLength(1);
    expect(events[0]!.remaining).toBe(Number.POSITIVE_INFINITY);
  });

  it("kind 'timeout': the AttemptTimeoutError is the event's error", async () => {
    const { clock } = t;
    const events: RetryEvent[] = [];
    const backoff = new Backoff({
      attemptTimeout: 50,
      maxTries: 2,
      pause: 10,
      onRetry: (event) => {
        events.push(event);
      },
    });
    track(backoff.execute(() => hang()));
    await clock.tickAsync(200);
    expect(events).toHaveLength(1);
    expect(events[0]!.kind).toBe('timeout');
    expect(events[0]!.error).toBeInstanceOf(AttemptTimeoutError);
    expect(events[0]!.elapsed).toBe(50);
    expect(events[0]!.delay).toBe(10);
  });

  it("kind 'result': the result is in the event and error is undefined", async () => {
    const { clock } = t;
    const events: RetryEvent[] = [];
    const backoff = new Backoff({
      pause: 10,
      retryIf: (status: string) => status === 'run',
      onRetry: (event) => {
        events.push(event);
      },
    });
    track(backoff.execute(scripted('run', 'done').fn));
    await clock.tickAsync(100);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      attempt: 1,
      kind: 'result',
      result: 'run',
      error: undefined,
    });
  });

  it('is not called when giving up', async () => {
    const { clock } = t;
    let calls = 0;
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 3,
      onRetry: () => {
        calls++;
      },
    });
    track(backoff.execute(alwaysFailing().fn));
    await clock.tickAsync(10);
    expect(calls).toBe(2);
  });
});

describe('afterFailure(error, fails): aioretry semantics', () => {
  it('is called after each failure that will be retried, not when giving up', async () => {
    const { clock } = t;
    const calls: [unknown, number][] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 3,
      pause: 10,
      afterFailure: (error, fails) => {
        calls.push([error, fails]);
      },
    });
    const { fn, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.error).toBe(thrown[2]);
    expect(calls).toEqual([
      [thrown[0], 1],
      [thrown[1], 2],
    ]);
    expect(calls[0]![0]).toBe(thrown[0]);
  });

  it('runs before the next attempt starts', async () => {
    const { clock } = t;
    const log: string[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 10,
      afterFailure: (_error, fails) => {
        log.push(`afterFailure ${fails}`);
      },
    });
    const { fn } = scripted<string>(new TransientError('x'), 'ok');
    const result = track(
      backoff.execute(async () => {
        log.push('attempt');
        return fn();
      }),
    );
    await clock.tickAsync(100);
    expect(result.value).toBe('ok');
    expect(log).toEqual(['attempt', 'afterFailure 1', 'attempt']);
  });

  it('is not called for a non-retriable error, a giveup, or a pause crossing the deadline', async () => {
    const { clock } = t;
    const calls: number[] = [];
    const hooks = {
      afterFailure: (_error: unknown, fails: number) => {
        calls.push(fails);
      },
    };
    const fatal = new Backoff({ exceptions: [TransientError], ...hooks });
    track(fatal.execute(scripted<string>(new FatalError('no')).fn));
    const givingUp = new Backoff({ exceptions: [TransientError], giveup: () => true, ...hooks });
    track(givingUp.execute(alwaysFailing().fn));
    const late = new Backoff({ exceptions: [TransientError], pause: 500, deadline: 400, ...hooks });
    track(late.execute(alwaysFailing().fn));
    await clock.tickAsync(1000);
    expect(calls).toEqual([]);
  });

  it('is called for attempt timeouts', async () => {
    const { clock } = t;
    const calls: [unknown, number][] = [];
    const backoff = new Backoff({
      attemptTimeout: 50,
      maxTries: 2,
      afterFailure: (error, fails) => {
        calls.push([error, fails]);
      },
    });
    track(backoff.execute(() => hang()));
    await clock.tickAsync(200);
    expect(calls).toHaveLength(1);
    expect(calls[0]![0]).toBeInstanceOf(AttemptTimeoutError);
    expect(calls[0]![1]).toBe(1);
  });

  it('is not called for retryIf results (onRetry is)', async () => {
    const { clock } = t;
    let afterFailures = 0;
    let retries = 0;
    const backoff = new Backoff({
      pause: 10,
      retryIf: (status: string) => status === 'run',
      afterFailure: () => {
        afterFailures++;
      },
      onRetry: () => {
        retries++;
      },
    });
    const result = track(backoff.execute(scripted('run', 'run', 'done').fn));
    await clock.tickAsync(100);
    expect(result.value).toBe('done');
    expect(afterFailures).toBe(0);
    expect(retries).toBe(2);
  });

  it('counts fails across errors and results: an error after a retried result is fails = 2', async () => {
    const { clock } = t;
    const calls: number[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 10,
      retryIf: (status: string) => status === 'run',
      afterFailure: (_error, fails) => {
        calls.push(fails);
      },
    });
    const result = track(
      backoff.execute(scripted<string>('run', new TransientError('x'), 'ok').fn),
    );
    await clock.tickAsync(100);
    expect(result.value).toBe('ok');
    expect(calls).toEqual([2]);
  });
});

// ---- onGiveup -------------------------------------------------------------------------------------

const refusingBudget = (): RetryBudget => ({
  recordFailure() {},
  tryAcquire: () => false,
  recordSuccess() {},
});

interface GiveupCase {
  reason: GiveupEvent['reason'];
  options: BackoffOptions<any>;
  steps: (string | Error)[];
  /** Start times of the attempts, and when the execution rejects. */
  starts: number[];
  at: number;
}

const GIVEUP_CASES: GiveupCase[] = [
  {
    reason: 'not-retriable',
    options: { exceptions: [TransientError] },
    steps: [new TransientError('a'), new FatalError('b')],
    starts: [0, 0],
    at: 0,
  },
  {
    reason: 'giveup',
    options: {
      exceptions: [TransientError],
      pause: 10,
      giveup: (e) => (e as Error).message.endsWith('#2'),
    },
    steps: [new TransientError('a')],
    starts: [0, 10],
    at: 10,
  },
  {
    reason: 'policy',
    options: { exceptions: [TransientError], policy: (fails: number) => [fails >= 3, 5] },
    steps: [new TransientError('a')],
    starts: [0, 5, 10],
    at: 10,
  },
  {
    reason: 'max-tries',
    options: { exceptions: [TransientError], pause: 20, maxTries: 2 },
    steps: [new TransientError('a')],
    starts: [0, 20],
    at: 20,
  },
  {
    reason: 'deadline',
    options: { exceptions: [TransientError], pause: 300, deadline: 1000 },
    steps: [new TransientError('a')],
    starts: [0, 300, 600, 900],
    at: 900,
  },
  {
    reason: 'budget',
    options: { exceptions: [TransientError], pause: 20, budget: refusingBudget() },
    steps: [new TransientError('a')],
    starts: [0],
    at: 0,
  },
  {
    reason: 'pushback',
    options: { exceptions: [TransientError], pause: 20, retryAfter: () => -1 },
    steps: [new TransientError('a')],
    starts: [0],
    at: 0,
  },
  {
    reason: 'pushback',
    options: {
      exceptions: [TransientError],
      pause: 20,
      retryAfter: () => 5000,
      maxRetryAfter: 1000,
    },
    steps: [new TransientError('a')],
    starts: [0],
    at: 0,
  },
];

describe('onGiveup', () => {
  for (const c of GIVEUP_CASES) {
    it(`reason '${c.reason}': called once, its error is the rejection value`, async () => {
      const { clock } = t;
      const events: GiveupEvent[] = [];
      const backoff = new Backoff({
        ...c.options,
        onGiveup: (event) => {
          events.push(event);
        },
      });
      const { fn, starts, thrown } = scripted<string>(...c.steps);
      const result = track(backoff.execute(fn));
      await clock.tickAsync(5000);
      expect(starts).toEqual(c.starts);
      expect(result.status).toBe('rejected');
      expect(result.at).toBe(c.at);
      expect(result.error).toBe(thrown[thrown.length - 1]);
      expect(events).toHaveLength(1);
      expect(events[0]!.reason).toBe(c.reason);
      expect(events[0]!.error).toBe(result.error);
      expect(events[0]).toMatchObject({
        attempt: c.starts.length,
        kind: 'error',
        result: undefined,
        elapsed: c.at,
      });
    });
  }

  it('retryIf out of tries: error is the very RetryConditionError rejected with, result the last result', async () => {
    const { clock } = t;
    const events: GiveupEvent[] = [];
    const backoff = new Backoff({
      maxTries: 2,
      retryIf: (status: string) => status === 'run',
      onGiveup: (event) => {
        events.push(event);
      },
    });
    const result = track(backoff.execute(scripted('run').fn));
    await clock.tickAsync(10);
    expect(result.error).toBeInstanceOf(RetryConditionError);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      reason: 'max-tries',
      kind: 'result',
      result: 'run',
      attempt: 2,
    });
    expect(events[0]!.error).toBe(result.error);
  });

  it('retryIf out of tries with returnLastResult: still reported as a give-up', async () => {
    const { clock } = t;
    const events: GiveupEvent[] = [];
    const backoff = new Backoff({
      maxTries: 2,
      retryIf: (status: string) => status === 'run',
      returnLastResult: true,
      onGiveup: (event) => {
        events.push(event);
      },
    });
    const result = track(backoff.execute(scripted('run').fn));
    await clock.tickAsync(10);
    expect(result.value).toBe('run');
    expect(events.map((e) => e.reason)).toEqual(['max-tries']);
  });

  it("the deadline passing during an attempt: called once with reason 'deadline' and the rejection value", async () => {
    const { clock } = t;
    const events: GiveupEvent[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 100,
      deadline: 500,
      onGiveup: (event) => {
        events.push(event);
      },
    });
    const { fn, thrown } = scripted<string>(new TransientError('a'));
    let calls = 0;
    const result = track(backoff.execute(() => (++calls === 1 ? fn() : hang<string>())));
    await clock.tickAsync(1000);
    expect(result.status).toBe('rejected');
    expect(result.at).toBe(500);
    expect(result.error).toBe(thrown[0]);
    expect(events).toHaveLength(1);
    expect(events[0]!.reason).toBe('deadline');
    expect(events[0]!.error).toBe(result.error);
  });

  it('is not called on cancellation, nor on success', async () => {
    const { clock } = t;
    let calls = 0;
    const controller = new AbortController();
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 100,
      signal: controller.signal,
      onGiveup: () => {
        calls++;
      },
    });
    const ok = track(backoff.execute(scripted<string>(new TransientError('a'), 'ok').fn));
    await clock.tickAsync(100);
    expect(ok.value).toBe('ok');
    const cancelled = track(backoff.execute(alwaysFailing().fn));
    await clock.tickAsync(50);
    const reason = new Error('shutdown');
    controller.abort(reason);
    await clock.tickAsync(0);
    expect(cancelled.error).toBe(reason);
    expect(calls).toBe(0);
  });
});

describe('onSuccess', () => {
  it('is called once with attempt, result and elapsed', async () => {
    const { clock } = t;
    const events: SuccessEvent<string>[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 100,
      onSuccess: (event: SuccessEvent<string>) => {
        events.push(event);
      },
    });
    const { fn } = slow(30, 1);
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.value).toBe('ok');
    expect(events).toEqual([{ attempt: 2, result: 'ok', elapsed: 160 }]);
  });

  it('is not called on failure', async () => {
    const { clock } = t;
    let calls = 0;
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 2,
      onSuccess: () => {
        calls++;
      },
    });
    track(backoff.execute(alwaysFailing().fn));
    await clock.tickAsync(10);
    expect(calls).toBe(0);
  });

  it('sees the result object itself (identity)', async () => {
    const { clock } = t;
    const value = { id: 1 };
    let seen: unknown;
    const backoff = new Backoff({
      onSuccess: (event) => {
        seen = event.result;
      },
    });
    const result = track(backoff.execute(async () => value));
    await clock.tickAsync(0);
    expect(result.value).toBe(value);
    expect(seen).toBe(value);
  });
});

describe('async hooks are awaited', () => {
  it('the next attempt starts after afterFailure and onRetry resolve, plus the pause', async () => {
    const { clock } = t;
    const log: [string, number][] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 100,
      afterFailure: async () => {
        log.push(['afterFailure', now()]);
        await sleep(30);
      },
      onRetry: async () => {
        log.push(['onRetry', now()]);
        await sleep(50);
      },
    });
    const { fn, starts } = scripted<string>(new TransientError('a'), new TransientError('b'), 'ok');
    const result = track(backoff.execute(fn));
    await clock.tickAsync(179);
    expect(starts).toEqual([0]);
    await clock.tickAsync(1);
    expect(starts).toEqual([0, 180]);
    await clock.tickAsync(1000);
    expect(result.value).toBe('ok');
    expect(starts).toEqual([0, 180, 360]);
    expect(log.map(([name]) => name)).toEqual([
      'afterFailure',
      'onRetry',
      'afterFailure',
      'onRetry',
    ]);
  });

  it('a hook returning a non-promise thenable is awaited too', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 10,
      onRetry: (): PromiseLike<void> => ({
        // biome-ignore lint/suspicious/noThenProperty: a hand-made thenable is the point of the test
        then(resolve) {
          setTimeout(() => resolve?.(undefined), 40);
          return undefined as never;
        },
      }),
    });
    const { fn, starts } = scripted<string>(new TransientError('a'), 'ok');
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.value).toBe('ok');
    expect(starts).toEqual([0, 50]);
  });

  it('the execution resolves only after an async onSuccess resolves', async () => {
    const { clock } = t;
    const backoff = new Backoff({ onSuccess: () => sleep(40) });
    const result = track(backoff.execute(async () => 'ok'));
    await clock.tickAsync(39);
    expect(result.status).toBe('pending');
    await clock.tickAsync(1);
    expect(result.value).toBe('ok');
    expect(result.at).toBe(40);
  });

  it('the execution rejects only after an async onGiveup resolves', async () => {
    const { clock } = t;
    const backoff = new Backoff({ exceptions: [TransientError], onGiveup: () => sleep(40) });
    const { fn, thrown } = scripted<string>(new FatalError('no'));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(39);
    expect(result.status).toBe('pending');
    await clock.tickAsync(1);
    expect(result.error).toBe(thrown[0]);
    expect(result.at).toBe(40);
  });

  it('a slow hook eats into the deadline: the pause is re-checked after it', async () => {
    const { clock } = t;
    const reasons: string[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 300,
      deadline: 1000,
      onRetry: () => sleep(800),
      onGiveup: ({ reason }) => {
        reasons.push(reason);
      },
    });
    const { fn, starts, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(2000);
    // Failed at 0; the hook ran until 800; 800 + 300 >= 1000: no second attempt.
    expect(starts).toEqual([0]);
    expect(result.error).toBe(thrown[0]);
    expect(result.at).toBe(800);
    expect(reasons).toEqual(['deadline']);
  });
});

describe('an async hook that hangs does not extend the deadline', () => {
  for (const hook of ['onRetry', 'afterFailure'] as const) {
    it(`${hook}: rejects at the deadline with the last error; no further attempt`, async () => {
      const { clock } = t;
      const backoff = new Backoff({
        exceptions: [TransientError],
        pause: 10,
        deadline: 1000,
        [hook]: () => hang(),
      });
      const { fn, starts, thrown } = alwaysFailing();
      const result = track(backoff.execute(fn));
      await clock.tickAsync(999);
      expect(result.status).toBe('pending');
      await clock.tickAsync(1);
      expect(result.error).toBe(thrown[0]);
      expect(result.at).toBe(1000);
      expect(starts).toEqual([0]);
      await clock.tickAsync(1);
      expect(clock.countTimers()).toBe(0);
    });
  }

  it('onGiveup: rejects at the deadline with the error', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      deadline: 1000,
      onGiveup: () => hang(),
    });
    const { fn, thrown } = scripted<string>(new FatalError('no'));
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.error).toBe(thrown[0]);
    expect(result.at).toBe(1000);
  });

  it('onSuccess: resolves at the deadline with the result', async () => {
    const { clock } = t;
    const backoff = new Backoff({ deadline: 1000, onSuccess: () => hang() });
    const result = track(backoff.execute(async () => 'ok'));
    await clock.tickAsync(999);
    expect(result.status).toBe('pending');
    await clock.tickAsync(1);
    expect(result.value).toBe('ok');
    expect(result.at).toBe(1000);
  });
});

describe('a hook that throws or rejects', () => {
  const boom = new Error('hook failed');

  it('onRetry throwing: rejects with that error at once; no further attempt', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 10,
      onRetry: () => {
        throw boom;
      },
    });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.error).toBe(boom);
    expect(result.at).toBe(0);
    expect(starts).toEqual([0]);
    await clock.tickAsync(1);
    expect(clock.countTimers()).toBe(0);
  });

  it('afterFailure rejecting: rejects with that error when it rejects; no further attempt', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      pause: 10,
      deadline: 5000,
      afterFailure: async () => {
        await sleep(30);
        throw boom;
      },
    });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.error).toBe(boom);
    expect(result.at).toBe(30);
    expect(starts).toEqual([0]);
    await clock.tickAsync(1);
    expect(clock.countTimers()).toBe(0);
  });

  it('onGiveup throwing: rejects with the hook error instead of the attempt error', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      maxTries: 2,
      onGiveup: () => {
        throw boom;
      },
    });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.error).toBe(boom);
    expect(starts).toEqual([0, 0]);
  });

  it('onSuccess rejecting: rejects with the hook error although fn succeeded', async () => {
    const { clock } = t;
    const backoff = new Backoff({ onSuccess: () => Promise.reject(boom) });
    let calls = 0;
    const result = track(backoff.execute(async () => ++calls));
    await clock.tickAsync(100);
    expect(result.error).toBe(boom);
    expect(calls).toBe(1);
  });

  it('a non-Error thrown value is passed through as is', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      exceptions: [TransientError],
      onRetry: () => {
        throw 'plain string';
      },
    });
    const result = track(backoff.execute(alwaysFailing().fn));
    await clock.tickAsync(10);
    expect(result.error).toBe('plain string');
  });
});

// ---- aioretry's ClientTrackableFailures, translated -------------------------------------------------

class ConnectionRefused extends Error {
  override name = 'ConnectionRefused';
}

class TrackableClient {
  connects: number[] = [];
  failureLog: [string, number, number][] = [];
  successes: SuccessEvent[] = [];
  constructor(
    private readonly refusals: number,
    private readonly maxRetries = 3,
  ) {}

  async _connect(): Promise<string> {
    this.connects.push(now());
    if (this.connects.length <= this.refusals)
      throw new ConnectionRefused(`refused #${this.connects.length}`);
    return 'connected';
  }

  _retryPolicy(fails: number): PolicyDecision {
    return [fails > this.maxRetries, fails * 100];
  }

  async _sendFailureLog(error: Error, fails: number): Promise<void> {
    await sleep(10);
    this.failureLog.push([error.message, fails, now()]);
  }

  // after_failure could be either a sync function or an async function
  async _onFailure(error: Error, fails: number): Promise<void> {
    await this._sendFailureLog(error, fails);
  }

  _onSuccess(event: SuccessEvent): void {
    this.successes.push(event);
  }

  // @asyncbackoff({ policy: '_retryPolicy', afterFailure: '_onFailure', onSuccess: '_onSuccess', ... })
  async connect(): Promise<string> {
    return this._connect();
  }
}
decorateMethod(
  TrackableClient,
  'connect',
  asyncbackoff({
    policy: '_retryPolicy',
    afterFailure: '_onFailure',
    onSuccess: '_onSuccess',
    exceptions: [ConnectionRefused],
  }),
);

class MistypedHookClient extends TrackableClient {
  // aioretry's README itself has the typo: after_failure='_on_failture'.
  async reconnect(): Promise<string> {
    return this._connect();
  }
}
decorateMethod(
  MistypedHookClient,
  'reconnect',
  asyncbackoff({
    policy: '_retryPolicy',
    afterFailure: '_on_failture',
    exceptions: [ConnectionRefused],
  }),
);

describe('hooks as method names on a decorated method (aioretry ClientTrackableFailures)', () => {
  it('calls this._onFailure after each retried failure and awaits it before the pause', async () => {
    const { clock } = t;
    const client = new TrackableClient(2);
    const result = track(client.connect());
    await clock.tickAsync(10_000);
    expect(result.value).toBe('connected');
    // Failure at 0 -> log until 10 -> pause 100 -> 110; failure -> log until 120 -> pause 200 -> 320.
    expect(client.connects).toEqual([0, 110, 320]);
    expect(client.failureLog).toEqual([
      ['refused #1', 1, 10],
      ['refused #2', 2, 120],
    ]);
    expect(client.successes).toEqual([{ attempt: 3, result: 'connected', elapsed: 320 }]);
  });

  it('does not call _onFailure for the failure that is abandoned', async () => {
    const { clock } = t;
    const client = new TrackableClient(Number.POSITIVE_INFINITY, 1);
    const result = track(client.connect());
    await clock.tickAsync(10_000);
    expect((result.error as Error).message).toBe('refused #2');
    expect(client.failureLog.map(([message, fails]) => [message, fails])).toEqual([
      ['refused #1', 1],
    ]);
  });

  it('a hook named after a missing method rejects with a TypeError; no further attempt', async () => {
    const { clock } = t;
    const client = new MistypedHookClient(Number.POSITIVE_INFINITY);
    const result = track(client.reconnect());
    await clock.tickAsync(10_000);
    expect(result.error).toBeInstanceOf(TypeError);
    expect((result.error as Error).message).toContain('_on_failture');
    expect(client.connects).toEqual([0]);
  });

  it('function hooks of a wrapped method are called with the same this', async () => {
    const { clock } = t;
    const seen: unknown[] = [];
    const backoff = new Backoff({
      exceptions: [TransientError],
      onRetry(this: unknown) {
        seen.push(this);
      },
      onSuccess(this: unknown) {
        seen.push(this);
      },
    });
    const { fn } = scripted<string>(new TransientError('a'), 'ok');
    const target = { run: backoff.wrap(fn) };
    const result = track(target.run());
    await clock.tickAsync(10);
    expect(result.value).toBe('ok');
    expect(seen).toEqual([target, target]);
  });
});
