/**
 * The execution's state machine (src/execution.ts) where user code cuts into it: a breaker, a
 * budget, a pause function, a policy or an abort listener that cancels the execution or throws
 * while the engine is deciding, the deadline meeting onGiveup, and executions nested in attempts
 * that already ended or have no time left.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  AttemptTimeoutError,
  Backoff,
  type CircuitBreaker,
  circuitBreaker,
  currentAttempt,
  DeadlineExceededError,
  type GiveupEvent,
  type RetryBudget,
} from 'asyncbackoff';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { hang, sleep, TransientError, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();

let warnings: Array<{ message: string; code: string | undefined }>;
beforeEach(() => {
  warnings = [];
  vi.spyOn(process, 'emitWarning').mockImplementation(((
    message: string,
    options?: { code?: string },
  ) => {
    warnings.push({ message, code: options?.code });
  }) as typeof process.emitWarning);
});
afterEach(() => {
  vi.restoreAllMocks();
});

type BreakerPass = NonNullable<ReturnType<CircuitBreaker['tryPass']>>;

/** A closed breaker that admits every attempt; `overrides` replace its methods. */
function breaker(overrides: Partial<CircuitBreaker> = {}): CircuitBreaker {
  return {
    state: 'closed',
    whenOpen: 'wait',
    tryPass: () => ({ probe: false }) as BreakerPass,
    recordSuccess: () => {},
    recordFailure: () => {},
    release: () => {},
    retryAfter: () => 0,
    onReady: () => () => {},
    ...overrides,
  };
}

describe('a breaker that misbehaves', () => {
  it('rejects with what tryPass threw, without calling the function', async () => {
    const broken = new Error('breaker state lost');
    const fn = vi.fn(async () => 'ran');
    const backoff = new Backoff({
      breaker: breaker({
        tryPass: () => {
          throw broken;
        },
      }),
    });
    await expect(backoff.execute(fn)).rejects.toBe(broken);
    expect(fn).not.toHaveBeenCalled();
    expect(backoff.statistics).toMatchObject({ attempts: 0, giveUps: 1 });
  });

  it("'wait': rejects with what onReady threw when the breaker holds the attempt", async () => {
    const broken = new Error('cannot subscribe');
    const backoff = new Backoff({
      breaker: breaker({
        tryPass: () => undefined,
        onReady: () => {
          throw broken;
        },
      }),
    });
    await expect(backoff.execute(async () => 'ran')).rejects.toBe(broken);
  });

  it("'wait': a throwing unsubscribe is a warning; the cancelled execution still rejects with the signal's reason", async () => {
    const controller = new AbortController();
    const backoff = new Backoff({
      breaker: breaker({
        tryPass: () => undefined,
        onReady: () => () => {
          throw new Error('unsubscribe failed');
        },
      }),
    }).withSignal(controller.signal);
    const result = track(backoff.execute(async () => 'ran'));
    await t.clock.tickAsync(10);
    controller.abort('shutdown');
    await t.clock.tickAsync(0);
    expect(result.error).toBe('shutdown');
    expect(warnings).toEqual([
      {
        message: 'asyncbackoff: the breaker threw or rejected: unsubscribe failed',
        code: 'ASYNCBACKOFF_BREAKER_FAILED',
      },
    ]);
  });

  it("'wait': a breaker that calls the ready callback twice starts one attempt, not two", async () => {
    let ready: (() => void) | undefined;
    let open = true;
    const backoff = new Backoff({
      breaker: breaker({
        tryPass: () => (open ? undefined : ({ probe: false } as BreakerPass)),
        onReady: (callback) => {
          ready = callback;
          return () => {};
        },
      }),
    });
    const fn = vi.fn(() => hang<string>());
    track(backoff.execute(fn));
    await t.clock.tickAsync(0);
    open = false;
    ready!();
    ready!();
    await t.clock.tickAsync(0);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(backoff.statistics.attempts).toBe(1);
  });

  it("'wait': a breaker that calls the ready callback twice before a retry starts one retry, not two", async () => {
    let ready: (() => void) | undefined;
    let open = false;
    const backoff = new Backoff({
      retryAll: true,
      maxTries: 4,
      pause: 100,
      breaker: breaker({
        tryPass: () => (open ? undefined : ({ probe: false } as BreakerPass)),
        // Open after the first failure only: the retries after the wait pass.
        recordFailure: () => {
          if (ready === undefined) open = true;
        },
        onReady: (callback) => {
          ready = callback;
          return () => {};
        },
      }),
    });
    // The retry throws at once and pauses before the next: a second start would run at once.
    const fn = vi.fn((): Promise<string> => {
      if (fn.mock.calls.length <= 2) throw new TransientError(`try ${fn.mock.calls.length}`);
      return hang<string>();
    });
    track(backoff.execute(fn));
    await t.clock.tickAsync(110); // the pause, then the breaker holds the retry
    expect(fn).toHaveBeenCalledTimes(1);
    expect(ready).toBeTypeOf('function');
    open = false;
    ready!();
    ready!();
    await t.clock.tickAsync(10);
    expect(fn).toHaveBeenCalledTimes(2);
    await t.clock.tickAsync(100);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(backoff.statistics.attempts).toBe(3);
  });

  it("an execution cancelled by the breaker's own bookkeeping rejects with the signal's reason, though its attempt succeeded", async () => {
    const controller = new AbortController();
    const backoff = new Backoff({
      breaker: breaker({ recordSuccess: () => controller.abort('breaker closed the gate') }),
    }).withSignal(controller.signal);
    await expect(backoff.execute(async () => 'value')).rejects.toBe('breaker closed the gate');
    expect(backoff.statistics).toMatchObject({ successes: 0, done: 1 });
  });
});

describe('an attempt that starts after its execution did', () => {
  it("'wait': a first attempt the breaker held times out attemptTimeout after it started, not after the execution did", async () => {
    let ready: (() => void) | undefined;
    let open = true;
    const backoff = new Backoff({
      attemptTimeout: 100,
      maxTries: 1,
      breaker: breaker({
        tryPass: () => (open ? undefined : ({ probe: false } as BreakerPass)),
        onReady: (callback) => {
          ready = callback;
          return () => {};
        },
      }),
    });
    let remaining: number | undefined;
    const result = track(
      backoff.execute(() => {
        remaining = currentAttempt()!.remaining;
        return hang<string>();
      }),
    );
    await t.clock.tickAsync(70);
    open = false;
    ready!();
    await t.clock.tickAsync(0);
    expect(remaining).toBe(100);
    const startedAt = performance.now();
    await t.clock.tickAsync(99);
    expect(result.status).toBe('pending');
    await t.clock.tickAsync(1);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(result.at - startedAt).toBe(100);
  });
});

describe('a breaker whose state change cancels the execution', () => {
  it('in tryPass (open → half-open): the function is not called, and the probe is handed back', async () => {
    const controller = new AbortController();
    let cancelOnHalfOpen = false;
    const gate = circuitBreaker({
      consecutiveFailures: 1,
      halfOpenAfter: 100,
      whenOpen: 'fail',
      onStateChange: (change) => {
        if (cancelOnHalfOpen && change.to === 'half-open') controller.abort('shutting down');
      },
    });
    const backoff = new Backoff({ breaker: gate, maxTries: 1, retryAll: true });
    await expect(backoff.execute(() => Promise.reject(new TransientError('down')))).rejects.toThrow(
      'down',
    );
    expect(gate.state).toBe('open');
    await t.clock.tickAsync(100);
    cancelOnHalfOpen = true;
    const fn = vi.fn(async () => 'ran');
    await expect(backoff.withSignal(controller.signal).execute(fn)).rejects.toBe('shutting down');
    expect(fn).not.toHaveBeenCalled();
    expect(backoff.statistics.attempts).toBe(1);
    // The probe it was given went back: the next call is admitted as the probe.
    await expect(backoff.execute(async () => 'probe')).resolves.toBe('probe');
    expect(gate.state).toBe('closed');
  });

  it("in retryAfter ('fail'): rejects with the signal's reason, not BrokenCircuitError", async () => {
    const controller = new AbortController();
    const onGiveup = vi.fn();
    const backoff = new Backoff({
      onGiveup,
      breaker: breaker({
        whenOpen: 'fail',
        tryPass: () => undefined,
        retryAfter: () => {
          controller.abort('shutting down');
          return 100;
        },
      }),
    });
    const result = backoff.withSignal(controller.signal).execute(async () => 'ran');
    await expect(result).rejects.toBe('shutting down');
    expect(onGiveup).not.toHaveBeenCalled();
    expect(backoff.statistics).toMatchObject({ breakerRefusals: 1, giveUps: 0 });
  });
});

describe('user code that cancels the execution while it decides', () => {
  it('a pause function that aborts the signal: no retry, the reason wins', async () => {
    const controller = new AbortController();
    const fn = vi.fn(() => Promise.reject(new TransientError('down')));
    const backoff = new Backoff({
      retryAll: true,
      maxTries: 5,
      pause: () => {
        controller.abort('stop');
        return 10;
      },
    }).withSignal(controller.signal);
    const result = track(backoff.execute(fn));
    await t.clock.tickAsync(100);
    expect(result.error).toBe('stop');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(backoff.statistics.retries).toBe(0);
  });

  it('a budget that aborts the signal while granting a retry: no retry, the reason wins', async () => {
    const controller = new AbortController();
    const budget: RetryBudget = {
      recordFailure: () => {},
      tryAcquire: () => {
        controller.abort('stop');
        return true;
      },
      recordSuccess: () => {},
    };
    const fn = vi.fn(() => Promise.reject(new TransientError('down')));
    const backoff = new Backoff({ retryAll: true, maxTries: 5, pause: 10, budget });
    const result = track(backoff.withSignal(controller.signal).execute(fn));
    await t.clock.tickAsync(100);
    expect(result.error).toBe('stop');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(backoff.statistics).toMatchObject({ retries: 0, budgetRefusals: 0 });
  });

  it("a budget that aborts the signal while recording a success: the reason wins over the attempt's value", async () => {
    const controller = new AbortController();
    const budget: RetryBudget = {
      recordFailure: () => {},
      tryAcquire: () => true,
      recordSuccess: () => controller.abort('stop'),
    };
    const backoff = new Backoff({ attemptTimeout: 100, budget }).withSignal(controller.signal);
    await expect(backoff.execute(async () => 'value')).rejects.toBe('stop');
  });

  it('a policy callback that aborts the signal and then throws: the reason wins, the throw is dropped', async () => {
    const controller = new AbortController();
    const backoff = new Backoff({
      maxTries: 5,
      retryAll: true,
      policy: () => {
        controller.abort('stop');
        throw new Error('policy bug');
      },
    }).withSignal(controller.signal);
    await expect(backoff.execute(() => Promise.reject(new TransientError('down')))).rejects.toBe(
      'stop',
    );
    expect(backoff.statistics.giveUps).toBe(0);
  });

  it("an abort listener on the attempt's signal that cancels the execution: the attempt timeout is not retried", async () => {
    const controller = new AbortController();
    const backoff = new Backoff({ attemptTimeout: 50, maxTries: 5 }).withSignal(controller.signal);
    const fn = vi.fn(() => {
      currentAttempt()!.signal.addEventListener('abort', () => controller.abort('gave up on it'));
      return hang<string>();
    });
    const result = track(backoff.execute(fn));
    await t.clock.tickAsync(500);
    expect(result.error).toBe('gave up on it');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(backoff.statistics).toMatchObject({ timeouts: 0, retries: 0 });
  });

  it('a cascade of aborts that reaches one execution twice settles it once, with the first reason', async () => {
    const first = new AbortController();
    const second = new AbortController();
    const base = new Backoff({ attemptTimeout: 1000 });
    // Joined first to `first`: cancelled after the later one, by which time `second` cancelled it.
    const both = track(
      base
        .withSignal(first.signal)
        .withSignal(second.signal)
        .execute(() => hang()),
    );
    const cascading = track(
      base.withSignal(first.signal).execute(() => {
        currentAttempt()!.signal.addEventListener('abort', () => second.abort('second'));
        return hang();
      }),
    );
    await t.clock.tickAsync(0);
    first.abort('first');
    await t.clock.tickAsync(0);
    expect(cascading.error).toBe('first');
    expect(both.error).toBe('second');
    expect(base.statistics).toMatchObject({ attempts: 2, cancels: 2 });
  });
});

describe('an async policy callback', () => {
  it('that fulfils with something that is not a decision rejects with a TypeError naming it', async () => {
    const backoff = new Backoff({ maxTries: 3, retryAll: true, policy: async () => 42 as never });
    const error = await backoff
      .execute(() => Promise.reject(new TransientError('down')))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/'policy' must return \{ abandon, delay \}.*got 42/);
  });
});

describe('an async predicate that settles after the execution moved on', () => {
  it('a retryIf that rejects after the deadline passed changes nothing: the DeadlineExceededError stands', async () => {
    const backoff = new Backoff({
      deadline: 100,
      retryIf: () =>
        new Promise<boolean>((_, reject) => setTimeout(() => reject(new Error('too late')), 150)),
    });
    const result = track(backoff.execute(async () => 'value'));
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    await t.clock.tickAsync(100); // the predicate's rejection comes, and is dropped
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    expect(backoff.statistics).toMatchObject({ giveUps: 1, successes: 0 });
  });
});

describe('the deadline and onGiveup', () => {
  it('passing during the first attempt: onGiveup hears of it as a timeout whose error is the DeadlineExceededError', async () => {
    const events: GiveupEvent[] = [];
    const backoff = new Backoff({ deadline: 100, onGiveup: (event) => void events.push(event) });
    const result = track(backoff.execute(() => hang()));
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ reason: 'deadline', kind: 'timeout', attempt: 1 });
    expect(events[0]!.error).toBe(result.error);
  });

  it('is not held up by an async onGiveup, and its rejection is not left unhandled', async () => {
    const backoff = new Backoff({
      deadline: 100,
      onGiveup: () => new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 50)),
    });
    const result = track(backoff.execute(() => hang()));
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(DeadlineExceededError);
    expect(result.at).toBe(100);
    await t.clock.tickAsync(100); // the hook's rejection comes and is swallowed
  });

  it('an onGiveup that throws synchronously replaces the DeadlineExceededError', async () => {
    const hookError = new Error('hook broke');
    const backoff = new Backoff({
      deadline: 100,
      onGiveup: () => {
        throw hookError;
      },
    });
    const result = track(backoff.execute(() => hang()));
    await t.clock.tickAsync(100);
    expect(result.error).toBe(hookError);
    expect(backoff.statistics.giveUps).toBe(1);
  });
});

describe('executions nested in an attempt', () => {
  it('one started after its enclosing attempt ended is not bounded by it', async () => {
    const outer = new Backoff({ attemptTimeout: 100 });
    const inner = new Backoff({ deadline: 1000 });
    let later: ReturnType<typeof track<string>> | undefined;
    await outer.execute(async () => {
      // Work the attempt leaves running (in its async context): it starts once the attempt answered.
      void sleep(10).then(() => {
        later = track(inner.execute(() => sleep(500).then(() => 'done')));
      });
      return 'answered';
    });
    await t.clock.tickAsync(600);
    expect(later?.value).toBe('done');
  });

  it("one started when its enclosing attempt has no time left waits for that attempt's timer and rejects with its verdict, without calling its function", async () => {
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const inner = new Backoff();
    const fn = vi.fn(async () => 'ran');
    let innerResult: ReturnType<typeof track<string>> | undefined;
    let inAttempt: (<R>(run: () => R) => R) | undefined;
    // Armed before the outer attempt's timer, for the same instant: it runs first, while the attempt
    // is out of time but not yet ended (as a busy event loop would run it).
    setTimeout(() => {
      innerResult = track(inAttempt!(() => inner.execute(fn)));
    }, 100);
    const outerResult = track(
      outer.execute(() => {
        inAttempt = AsyncLocalStorage.snapshot();
        return hang();
      }),
    );
    await t.clock.tickAsync(100);
    // Not a DeadlineExceededError "after 0 attempts" of its own, which the outer attempt would
    // then fail with instead of timing out: the enclosing attempt's timeout is the verdict.
    expect(outerResult.error).toBeInstanceOf(AttemptTimeoutError);
    expect(innerResult?.error).toBe(outerResult.error);
    expect(fn).not.toHaveBeenCalled();
  });
});

describe('warnings about values that are not errors', () => {
  it('name a thrown non-Error by its description', async () => {
    const backoff = new Backoff({ maxTries: 3 });
    await expect(backoff.execute(() => Promise.reject('nope'))).rejects.toBe('nope');
    expect(warnings.map((w) => w.code)).toEqual(['ASYNCBACKOFF_NO_RETRY_FILTER']);
    expect(warnings[0]!.message).toMatch(
      /rejected with 'nope' \(a string\), which is not retriable/,
    );
  });

  it("a failing onLateResult's non-Error is described; one that cannot even be inspected is said so", async () => {
    const unshowable = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error('no prototype for you');
        },
      },
    );
    const thrown: unknown[] = ['release failed', unshowable];
    const backoff = new Backoff({
      attemptTimeout: 10,
      maxTries: 1,
      onLateResult: () => {
        throw thrown.shift();
      },
    });
    for (let i = 0; i < 2; i++) {
      const result = track(backoff.execute(() => sleep(20).then(() => 'late')));
      await t.clock.tickAsync(20);
      expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    }
    expect(warnings).toEqual([
      {
        message:
          "asyncbackoff: a late result's handler (onLateResult, or withLock releasing a late lease) threw or rejected: 'release failed' (a string)",
        code: 'ASYNCBACKOFF_LATE_RESULT_FAILED',
      },
      {
        message:
          "asyncbackoff: a late result's handler (onLateResult, or withLock releasing a late lease) threw or rejected: a value that cannot be shown",
        code: 'ASYNCBACKOFF_LATE_RESULT_FAILED',
      },
    ]);
  });
});

describe('elapsed in hook events counts from when the execution started', () => {
  it('policy info, onRetry, onSuccess and onGiveup events report time since execute(), not since the clock began', async () => {
    await t.clock.tickAsync(1000);
    const elapsed: Record<string, number[]> = { policy: [], onRetry: [], onSuccess: [] };
    let calls = 0;
    const backoff = new Backoff({
      retryAll: true,
      maxTries: 3,
      policy: (_attempt, _error, info) => {
        elapsed.policy!.push(info.elapsed);
        return { abandon: false, delay: 10 };
      },
      onRetry: (event) => void elapsed.onRetry!.push(event.elapsed),
      onSuccess: (event) => void elapsed.onSuccess!.push(event.elapsed),
    });
    const result = track(
      backoff.execute(async () => {
        if (++calls < 3) throw new TransientError('down');
        return 'ok';
      }),
    );
    await t.clock.tickAsync(100);
    expect(result.value).toBe('ok');
    expect(elapsed).toEqual({ policy: [0, 10], onRetry: [0, 10], onSuccess: [20] });

    const events: GiveupEvent[] = [];
    const failing = new Backoff({
      retryAll: true,
      maxTries: 2,
      pause: 5,
      onGiveup: (event) => void events.push(event),
    });
    const failed = track(failing.execute(() => Promise.reject(new TransientError('down'))));
    await t.clock.tickAsync(100);
    expect(failed.error).toBeInstanceOf(TransientError);
    expect(events.map((event) => event.elapsed)).toEqual([5]);
  });
});

describe('a hook given as a method name that execute() has no `this` for', () => {
  const message = (option: string) =>
    `Backoff: '${option}' names the method 'missing', but this.missing is undefined`;

  it.each([
    ['onRetry', { retryAll: true, maxTries: 2, onRetry: 'missing' }],
    ['afterFailure', { retryAll: true, maxTries: 2, afterFailure: 'missing' }],
    ['policy', { retryAll: true, maxTries: 2, policy: 'missing' }],
    ['onGiveup', { maxTries: 1, onGiveup: 'missing' }],
  ] as const)(
    '%s: rejects with a TypeError naming the option and the method',
    async (option, options) => {
      const backoff = new Backoff(options);
      const error = await backoff
        .execute(() => Promise.reject(new TransientError('down')))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toBe(message(option));
    },
  );

  it('onSuccess: rejects with a TypeError naming the option and the method', async () => {
    const backoff = new Backoff({ onSuccess: 'missing' });
    const error = await backoff.execute(async () => 'value').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(message('onSuccess'));
  });

  it('onGiveup at the deadline: rejects with a TypeError naming the option and the method', async () => {
    const backoff = new Backoff({ deadline: 100, onGiveup: 'missing' });
    const result = track(backoff.execute(() => hang()));
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(TypeError);
    expect((result.error as Error).message).toBe(message('onGiveup'));
  });
});

describe('the no-retry-filter warning', () => {
  it('states the number of tries the policy allows, or "more" when they are unlimited', async () => {
    await expect(
      new Backoff({ maxTries: 3 }).execute(() => Promise.reject(new TransientError('x'))),
    ).rejects.toThrow('x');
    await expect(
      new Backoff({ maxTries: Number.POSITIVE_INFINITY }).execute(() =>
        Promise.reject(new TransientError('x')),
      ),
    ).rejects.toThrow('x');
    expect(warnings.map((w) => w.message)).toEqual([
      expect.stringContaining('although its policy allows 3 tries:'),
      expect.stringContaining('although its policy allows more tries:'),
    ]);
  });
});

describe('a breaker whose bookkeeping throws', () => {
  it('is reported as an AsyncBackoffWarning, and the execution still resolves', async () => {
    const backoff = new Backoff({
      breaker: breaker({
        recordSuccess: () => {
          throw new Error('lost count');
        },
      }),
    });
    await expect(backoff.execute(async () => 'value')).resolves.toBe('value');
    expect(warnings).toEqual([
      {
        message: 'asyncbackoff: the breaker threw or rejected: lost count',
        code: 'ASYNCBACKOFF_BREAKER_FAILED',
      },
    ]);
    expect(vi.mocked(process.emitWarning).mock.calls[0]![1]).toMatchObject({
      type: 'AsyncBackoffWarning',
    });
  });
});

describe("a breaker that refuses ('fail')", () => {
  it("tells onGiveup the reason 'breaker' and the kind 'error'", async () => {
    const events: GiveupEvent[] = [];
    const backoff = new Backoff({
      onGiveup: (event) => void events.push(event),
      breaker: breaker({ whenOpen: 'fail', tryPass: () => undefined, retryAfter: () => 100 }),
    });
    await expect(backoff.execute(async () => 'ran')).rejects.toThrow();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ reason: 'breaker', kind: 'error', attempt: 0 });
  });
});

describe("a breaker that holds the attempt ('wait')", () => {
  it('counts one refusal for the wait, however often it is asked again while waiting', async () => {
    let ready: (() => void) | undefined;
    let refusals = 0;
    const backoff = new Backoff({
      breaker: breaker({
        tryPass: () => (++refusals <= 3 ? undefined : ({ probe: false } as BreakerPass)),
        onReady: (callback) => {
          ready = callback;
          return () => {};
        },
      }),
    });
    const result = track(backoff.execute(async () => 'ran'));
    await t.clock.tickAsync(0);
    ready!();
    await t.clock.tickAsync(0);
    ready!();
    await t.clock.tickAsync(0);
    expect(backoff.statistics.breakerRefusals).toBe(1);
    ready!();
    await t.clock.tickAsync(0);
    expect(result.value).toBe('ran');
    expect(backoff.statistics.breakerRefusals).toBe(1);
  });
});

describe('late results', () => {
  it('without onLateResult are counted, and no warning is emitted', async () => {
    const backoff = new Backoff({ attemptTimeout: 10, maxTries: 1 });
    const result = track(backoff.execute(() => sleep(20).then(() => 'late')));
    await t.clock.tickAsync(30);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(backoff.statistics.lateResults).toBe(1);
    expect(warnings).toEqual([]);
  });

  it('of a retry (awaited by the relay) are counted and handed to onLateResult too', async () => {
    const late: Array<[unknown, number]> = [];
    const backoff = new Backoff({
      attemptTimeout: 10,
      maxTries: 2,
      onLateResult: (value, info) => void late.push([value, info.attempt]),
    });
    let calls = 0;
    const result = track(
      backoff.execute(() => {
        const n = ++calls;
        return sleep(20).then(() => `late ${n}`);
      }),
    );
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(late).toEqual([
      ['late 1', 1],
      ['late 2', 2],
    ]);
    expect(backoff.statistics.lateResults).toBe(2);
  });
});

describe('returnLastResult', () => {
  it('resolves with the last result retryIf rejected, and counts it as a give-up', async () => {
    const backoff = new Backoff({ maxTries: 2, retryIf: () => true, returnLastResult: true });
    await expect(backoff.execute(async () => 'not yet')).resolves.toBe('not yet');
    expect(backoff.statistics).toMatchObject({ giveUps: 1, successes: 0 });
  });

  it('still rejects when the last failure was a thrown error', async () => {
    const backoff = new Backoff({
      maxTries: 2,
      retryAll: true,
      retryIf: () => true,
      returnLastResult: true,
    });
    const error = new TransientError('down');
    await expect(backoff.execute(() => Promise.reject(error))).rejects.toBe(error);
  });
});

describe('the deadline while an async onGiveup is pending', () => {
  it('settles with the failure onGiveup was told of, without calling onGiveup again', async () => {
    const onGiveup = vi.fn(() => hang<void>());
    const backoff = new Backoff({ deadline: 100, maxTries: 1, onGiveup });
    const error = new TransientError('down');
    const result = track(backoff.execute(() => Promise.reject(error)));
    await t.clock.tickAsync(50);
    expect(result.status).toBe('pending');
    await t.clock.tickAsync(50);
    expect(result.error).toBe(error);
    expect(onGiveup).toHaveBeenCalledTimes(1);
  });
});

describe('the code-block form and the execution', () => {
  it('an attempt that timed out while its body ran is retried once the body goes on', async () => {
    const backoff = new Backoff({ attemptTimeout: 10, maxTries: 2 });
    const seen: number[] = [];
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        seen.push(attempt.attempt);
        if (attempt.attempt === 1) await sleep(20);
        else attempt.succeed();
      }
      return 'done';
    };
    const result = track(run());
    await t.clock.tickAsync(100);
    expect(result.value).toBe('done');
    expect(seen).toEqual([1, 2]);
    expect(backoff.statistics).toMatchObject({ attempts: 2, timeouts: 1, done: 2, successes: 1 });
  });

  it('leaving the loop after the attempt timed out counts that attempt as ended once', async () => {
    const backoff = new Backoff({ attemptTimeout: 10, maxTries: 3 });
    const run = async () => {
      for await (const _attempt of backoff.attempts()) {
        await sleep(20);
        break;
      }
    };
    const result = track(run());
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    expect(backoff.statistics).toMatchObject({ attempts: 1, done: 1, giveUps: 1 });
  });

  it("leaving the loop after a success that retryIf rejects gives up with the reason 'max-tries'", async () => {
    const events: GiveupEvent[] = [];
    const backoff = new Backoff({
      maxTries: 5,
      retryIf: () => true,
      onGiveup: (event) => void events.push(event),
    });
    const run = async () => {
      for await (const attempt of backoff.attempts()) {
        attempt.succeed('not good enough');
        break;
      }
    };
    const result = track(run());
    await t.clock.tickAsync(100);
    expect(result.status).toBe('rejected');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ reason: 'max-tries', kind: 'result', attempt: 1 });
  });
});

describe('verdicts before aborts: a timer that ends an execution', () => {
  /** An attempt that records its signal and when its abort listener ran, and never settles. */
  function watched(log: string[]) {
    let signal: AbortSignal | undefined;
    const fn = () => {
      signal = currentAttempt()!.signal;
      signal.addEventListener('abort', () => log.push(`abort: ${(signal!.reason as Error).name}`));
      return hang();
    };
    return { fn, signal: () => signal! };
  }

  it("a last attempt timed out: the caller's handler runs before the signal's listeners, which run before any timer", async () => {
    const log: string[] = [];
    const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const { fn, signal } = watched(log);
    backoff.execute(fn).catch((error: Error) => {
      log.push(`caller: ${error.name}, signal aborted: ${signal().aborted}`);
    });
    setTimeout(() => log.push('next timer'), 100); // armed after the queue's timer, for the same instant
    await t.clock.tickAsync(100);
    expect(log).toEqual([
      'caller: AttemptTimeoutError, signal aborted: false',
      'abort: AttemptTimeoutError',
      'next timer',
    ]);
    expect(signal().reason).toBeInstanceOf(AttemptTimeoutError);
  });

  it('the callers of every verdict due together hear before any of their signals aborts', async () => {
    const log: string[] = [];
    const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    for (const name of ['a', 'b']) {
      const { fn } = watched(log);
      backoff.execute(fn).catch(() => log.push(`caller ${name}`));
    }
    await t.clock.tickAsync(100);
    expect(log).toEqual([
      'caller a',
      'caller b',
      'abort: AttemptTimeoutError',
      'abort: AttemptTimeoutError',
    ]);
  });

  it('the attempt reads as aborted from the verdict on: a late result is told the reason', async () => {
    const late: unknown[] = [];
    const backoff = new Backoff({
      attemptTimeout: 100,
      maxTries: 1,
      onLateResult: (value, info) => void late.push(value, info.reason),
    });
    let answer!: (value: string) => void;
    let attempt: ReturnType<typeof currentAttempt>;
    const result = track(
      backoff.execute(() => {
        attempt = currentAttempt();
        return new Promise<string>((resolve) => {
          answer = resolve;
        });
      }),
    );
    await t.clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(AttemptTimeoutError);
    answer('late');
    await t.clock.tickAsync(0);
    expect(late).toEqual(['late', result.error]);
    expect(attempt!.signal.aborted).toBe(true);
  });

  it('the deadline: the caller hears first, and the listener runs in the caller’s async context', async () => {
    const log: string[] = [];
    const requestId = new AsyncLocalStorage<string>();
    const backoff = new Backoff({ deadline: 100 });
    const p = requestId.run('request-1', () =>
      backoff.execute(() => {
        const signal = currentAttempt()!.signal;
        signal.addEventListener('abort', () => log.push(`abort in ${requestId.getStore()}`));
        return hang();
      }),
    );
    p.catch((error: Error) => log.push(`caller: ${error.name}`));
    // Another call arms nothing new: both share the instance's deadline timer.
    requestId.run('request-2', () => backoff.execute(() => hang()).catch(() => {}));
    await t.clock.tickAsync(100);
    expect(log).toEqual(['caller: DeadlineExceededError', 'abort in request-1']);
  });

  it('with a try left, the signal aborts before the retry starts, and before onRetry runs', async () => {
    const log: string[] = [];
    let signal: AbortSignal | undefined;
    const backoff = new Backoff({
      attemptTimeout: 100,
      maxTries: 2,
      pause: 0,
      onRetry: () => void log.push(`onRetry, aborted: ${signal!.aborted}`),
    });
    const result = track(
      backoff.execute(() => {
        if (signal === undefined) {
          signal = currentAttempt()!.signal;
          signal.addEventListener('abort', () => log.push('abort'));
          return hang();
        }
        log.push('retry');
        return 'ok';
      }),
    );
    await t.clock.tickAsync(100);
    expect(result.value).toBe('ok');
    expect(log).toEqual(['abort', 'onRetry, aborted: true', 'retry']);
  });

  it('a hook to tell (onGiveup) hears of an attempt whose signal has aborted', async () => {
    const log: string[] = [];
    let signal: AbortSignal | undefined;
    for (const options of [{ attemptTimeout: 100, maxTries: 1 }, { deadline: 100 }] as const) {
      log.length = 0;
      const backoff = new Backoff({
        ...options,
        onGiveup: () => void log.push(`onGiveup, aborted: ${signal!.aborted}`),
      });
      const result = track(
        backoff.execute(() => {
          signal = currentAttempt()!.signal;
          return hang();
        }),
      );
      await t.clock.tickAsync(100);
      expect(result.status).toBe('rejected');
      expect(log).toEqual(['onGiveup, aborted: true']);
    }
  });

  it("a nested execution in the attempt is cancelled with the verdict's reason", async () => {
    const outer = new Backoff({ attemptTimeout: 100, maxTries: 1 });
    const inner = new Backoff();
    let innerResult: ReturnType<typeof track<unknown>> | undefined;
    const outerResult = track(
      outer.execute(() => {
        innerResult = track(inner.execute(() => hang()));
        return hang();
      }),
    );
    await t.clock.tickAsync(100);
    expect(outerResult.error).toBeInstanceOf(AttemptTimeoutError);
    expect(innerResult!.error).toBe(outerResult.error);
  });

  it('a breaker or a budget to tell: the signal aborts with the verdict, as before', async () => {
    const budget: RetryBudget = {
      recordFailure: () => {},
      tryAcquire: () => true,
      recordSuccess: () => {},
    };
    for (const options of [{ breaker: breaker() }, { budget }]) {
      const log: string[] = [];
      const backoff = new Backoff({ attemptTimeout: 100, maxTries: 1, ...options });
      const { fn, signal } = watched(log);
      backoff.execute(fn).catch(() => log.push(`caller, aborted: ${signal().aborted}`));
      await t.clock.tickAsync(100);
      expect(log).toEqual(['abort: AttemptTimeoutError', 'caller, aborted: true']);
    }
  });
});
