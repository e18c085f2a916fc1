/**
 * Regressions found by a review of the rewritten engine: each test reproduces, through the public
 * API, a defect the reviewed commit had, and passes now. Each is named after the defect it guards
 * against ("X happens" means: X must not happen).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  Backoff,
  type CircuitBreaker,
  circuitBreaker,
  currentAttempt,
  type RetryBudget,
} from '../src/index.js';
import type { BreakerPass } from '../src/types.js';
import { installFakeClock } from './support/clock.js';
import { sleep, TransientError, track, useFakeClock } from './support/harness.js';

const t = useFakeClock();
const setImmediateReal = globalThis.setImmediate;

/** Opens a consecutiveFailures: 1 breaker through `b` and waits until it is half-open. */
async function openThenHalfOpen(b: Backoff, breaker: ReturnType<typeof circuitBreaker>) {
  const r = track(
    b.execute(async () => {
      throw new TransientError('down');
    }),
  );
  await t.clock.tickAsync(0);
  expect(r.status).toBe('rejected');
  expect(breaker.state).toBe('open');
  await t.clock.tickAsync(100);
  expect(breaker.state).toBe('half-open');
}

/** Passes handed out that were never reported back (recordSuccess/recordFailure/release). */
const leaked = (breaker: ReturnType<typeof circuitBreaker>) => {
  const s = breaker.stats;
  return s.passed - s.successes - s.failures - s.released;
};

describe('breaker passes leaked by the engine', () => {
  it('a retryOn that throws leaks the probe pass: the shared breaker stays half-open for good', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    class Odd extends Error {}
    const b = new Backoff({
      deadline: 10_000,
      maxTries: 1,
      retryOn: (error) => {
        if (error instanceof Odd) throw new TypeError('classifier bug');
        return true;
      },
      breaker,
    });
    await openThenHalfOpen(b, breaker);
    const probe = track(
      b.execute(async () => {
        throw new Odd('odd');
      }),
    );
    await t.clock.tickAsync(0);
    expect(probe.status).toBe('rejected');
    expect(leaked(breaker)).toBe(0);
    // Another call, long after: the probe slot should be free again.
    await t.clock.tickAsync(10_000);
    const later = track(b.execute(async () => 'ok'));
    await t.clock.tickAsync(0);
    expect(later.status).toBe('fulfilled');
  });

  it('block form: an uncaught throw in the loop body leaks the probe pass (breaker wedged half-open)', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    const b = new Backoff({ deadline: 10_000, maxTries: 3, retryAll: true, breaker });
    await openThenHalfOpen(b, breaker);
    const loop = track(
      (async () => {
        for await (const _attempt of b.attempts()) {
          throw new Error('bug in the body');
        }
      })(),
    );
    await t.clock.tickAsync(0);
    expect(loop.status).toBe('rejected');
    expect(leaked(breaker)).toBe(0);
    const later = track(b.execute(async () => 'ok'));
    await t.clock.tickAsync(0);
    expect(later.status).toBe('fulfilled');
  });

  it('block form: fail(error) then break leaks the pass', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 5 });
    const b = new Backoff({ deadline: 10_000, maxTries: 3, retryAll: true, breaker });
    const loop = track(
      (async () => {
        for await (const attempt of b.attempts()) {
          attempt.fail(new TransientError('x'));
          break;
        }
      })(),
    );
    await t.clock.tickAsync(0);
    expect(loop.status).toBe('rejected');
    expect(leaked(breaker)).toBe(0);
  });

  it('block form: an attempt that timed out and the deadline passing before the body reports leaks the pass', async () => {
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100 });
    const b = new Backoff({ attemptTimeout: 50, deadline: 80, retryAll: true, breaker });
    await openThenHalfOpen(b, breaker);
    const loop = track(
      (async () => {
        for await (const attempt of b.attempts()) {
          await sleep(200); // ignores its signal
          attempt.fail(new TransientError('late'));
        }
      })(),
    );
    // The probe timed out at 150: that failure re-opened the breaker (until 250), whatever the
    // body reports later.
    await t.clock.tickAsync(100);
    expect(leaked(breaker)).toBe(0);
    expect(breaker.state).toBe('open');
    await t.clock.tickAsync(200);
    expect(loop.status).toBe('rejected');
    expect(leaked(breaker)).toBe(0);
  });
});

describe('block form: leaving the loop', () => {
  it('break after fail(error) swallows the error once the deadline has passed', async () => {
    const b = new Backoff({ deadline: 100, retryAll: true });
    const failure = new TransientError('boom');
    const loop = track(
      (async () => {
        for await (const attempt of b.attempts()) {
          await sleep(150); // past the deadline; the body ignores its signal
          attempt.fail(failure);
          break; // "break after fail(error): error is thrown"
        }
        return 'loop ended normally';
      })(),
    );
    await t.clock.tickAsync(200);
    expect(loop.status).toBe('rejected');
  });

  it('break after succeed() past the deadline ends the loop as a success although the execution rejected', async () => {
    const b = new Backoff({ deadline: 100, retryAll: true });
    const loop = track(
      (async () => {
        for await (const attempt of b.attempts()) {
          await sleep(150);
          attempt.succeed('value');
          break;
        }
        return 'loop ended normally';
      })(),
    );
    await t.clock.tickAsync(200);
    // The statistics say the execution gave up; the caller was told it succeeded.
    expect(b.statistics.giveUps).toBe(1);
    expect(loop.status).toBe('rejected');
  });
});

describe('deadline during a pending onSuccess', () => {
  it("aborts the successful attempt's signal (the resolved value's stream dies)", async () => {
    let signal: AbortSignal | undefined;
    const b = new Backoff({
      deadline: 100,
      onSuccess: () => sleep(1_000),
    });
    const r = track(
      b.execute(async () => {
        // What fetch does: the response body keeps reading through this signal after fn returned.
        signal = (await import('../src/index.js')).currentAttempt()!.signal;
        return 'response';
      }),
    );
    await t.clock.tickAsync(150);
    expect(r.status).toBe('fulfilled');
    expect(signal!.aborted).toBe(false);
  });
});

describe('unbounded fast path vs Execution: statistics', () => {
  function throwingBudget(): RetryBudget {
    return {
      recordFailure() {},
      tryAcquire: () => true,
      recordSuccess() {
        throw new Error('budget broke');
      },
    };
  }

  it('a budget whose recordSuccess throws: the fast path counts neither a success nor a give-up', async () => {
    const b = new Backoff({ maxTries: 3, retryAll: true, budget: throwingBudget() });
    await expect(b.execute(async () => 'ok')).rejects.toThrow('budget broke');
    const s = b.statistics;
    // One settled execution: successes + giveUps (no cancellation) must be 1, as on the Execution path.
    expect(s.successes + s.giveUps).toBe(1);
  });

  it('(control) the same on the Execution path counts a give-up', async () => {
    const b = new Backoff({
      maxTries: 3,
      deadline: 1000,
      retryAll: true,
      budget: throwingBudget(),
    });
    const r = track(b.execute(async () => 'ok'));
    await t.clock.tickAsync(0);
    expect(r.status).toBe('rejected');
    const s = b.statistics;
    expect(s.successes + s.giveUps).toBe(1);
  });
});

describe('signals', () => {
  it('fn is called although the signal is already aborted (a listener that ran before the hub)', async () => {
    const controller = new AbortController();
    const b = new Backoff({ retryAll: true });
    const view = b.withSignal(controller.signal);
    let calledAfterAbort = 0;
    // The application's own abort listener, registered first, does a last retried call.
    let late: Promise<unknown> | undefined;
    controller.signal.addEventListener('abort', () => {
      late = view.execute(async () => {
        if (controller.signal.aborted) calledAfterAbort++;
        return 'x';
      });
      late.catch(() => {});
    });
    // An execution in flight makes the hub listen (after the application's listener).
    const first = track(view.execute(() => new Promise(() => {})));
    controller.abort(new Error('shutdown'));
    await t.clock.tickAsync(0);
    expect(first.status).toBe('rejected');
    expect(calledAfterAbort).toBe(0);
    await expect(late).rejects.toThrow('shutdown');
  });
});

describe('a breaker that throws (the protocol is public: any object with its methods is accepted)', () => {
  it('recordSuccess throwing: an unhandled rejection, and the execution never settles', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const breaker = {
        state: 'closed',
        whenOpen: 'fail',
        tryPass: () => ({ probe: false }),
        recordSuccess: (_p: BreakerPass) => {
          throw new Error('metrics backend down');
        },
        recordFailure: () => {},
        release: () => {},
        retryAfter: () => 0,
        onReady: () => () => {},
      } as unknown as CircuitBreaker;
      const b = new Backoff({ breaker }); // no deadline: nothing ever ends it
      const r = track(b.execute(async () => 'ok'));
      await t.clock.tickAsync(60_000);
      await new Promise((resolve) => setImmediateReal(resolve));
      expect(r.status).not.toBe('pending');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('a synchronous user callback that cancels the execution', () => {
  it('onRetry aborting the signal: fn is called again after the cancellation (pause goes on)', async () => {
    const controller = new AbortController();
    const b = new Backoff({
      pause: 10,
      maxTries: 5,
      retryAll: true,
      onRetry: () => controller.abort(new Error('cancelled by hook')),
    }).withSignal(controller.signal);
    let calls = 0;
    const r = track(
      b.execute(async () => {
        calls++;
        throw new TransientError(`attempt ${calls}`);
      }),
    );
    await t.clock.tickAsync(100);
    expect(r.status).toBe('rejected');
    expect((r.error as Error).message).toBe('cancelled by hook');
    expect(calls).toBe(1); // rule 6: fn is never called after the cancellation
    expect(t.clock.countTimers()).toBe(0);
  });

  it('onStateChange of the breaker aborting the signal: fn is called again after the cancellation', async () => {
    const controller = new AbortController();
    const breaker = circuitBreaker({
      consecutiveFailures: 1,
      whenOpen: 'wait',
      onStateChange: ({ to }) => {
        if (to === 'open') controller.abort(new Error('circuit opened: stop'));
      },
    });
    const b = new Backoff({ deadline: 10_000, pause: 10, maxTries: 5, retryAll: true, breaker });
    let calls = 0;
    const r = track(
      b.withSignal(controller.signal).execute(async () => {
        calls++;
        throw new TransientError(`attempt ${calls}`);
      }),
    );
    await t.clock.tickAsync(5_000);
    expect(r.status).toBe('rejected');
    expect(calls).toBe(1);
    expect(b.statistics.attempts).toBe(1);
  });

  it('retryIf aborting the signal: the execution is counted as cancelled and as a success', async () => {
    const controller = new AbortController();
    const b = new Backoff({
      retryIf: () => {
        controller.abort(new Error('stop'));
        return false;
      },
    }).withSignal(controller.signal);
    const r = track(b.execute(async () => 'value'));
    await t.clock.tickAsync(0);
    expect(r.status).toBe('rejected');
    // One execution, cancelled: no success may be counted.
    expect(b.statistics.successes).toBe(0);
  });
});

describe('batch from an async source', () => {
  it('lets items already processed go while the batch runs (no Promise.race against a never-settling promise)', async () => {
    t.clock.uninstall(); // real timers for this one; reinstalled for the afterEach
    try {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      const refs: WeakRef<object>[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      async function* source() {
        for (let i = 0; i < 2000; i++) {
          const item = { i, payload: new Array(1000).fill(i) };
          if (i < 1000) refs.push(new WeakRef(item));
          yield item;
        }
        await gate; // the batch is still running
      }
      const b = new Backoff({ retryAll: true, maxTries: 2 });
      const done = b.map(source(), async (item) => item.i, { concurrency: 4 });
      for (let k = 0; k < 50; k++) await new Promise((resolve) => setImmediate(resolve));
      gc();
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      const alive = refs.filter((ref) => ref.deref() !== undefined).length;
      release();
      await done;
      // Items already processed must be collectable: a long async source would grow without bound.
      // (Before the fix all 1000 were reachable; a collector may keep a stray one for a cycle.)
      expect(alive).toBeLessThanOrEqual(4);
    } finally {
      (t as { clock: ReturnType<typeof installFakeClock> }).clock = installFakeClock();
    }
  });
});

describe('block form: break after succeed(value) that retryIf rejects', () => {
  it('waits out a whole pause, runs onRetry and counts an attempt nobody runs before throwing', async () => {
    const retries: number[] = [];
    const b = new Backoff({
      pause: 5_000,
      maxTries: 3,
      retryIf: (r: unknown) => r === 'pending',
      onRetry: ({ attempt }) => void retries.push(attempt),
    });
    const loop = track(
      (async () => {
        for await (const attempt of b.attempts()) {
          attempt.succeed('pending');
          break;
        }
      })(),
    );
    await t.clock.tickAsync(0);
    // Leaving the loop ends the execution at once (as a bare break or break after fail() does).
    expect(loop.status).toBe('rejected');
    await t.clock.tickAsync(10_000);
    expect(b.statistics.attempts).toBe(1);
    expect(retries).toEqual([]);
  });
});

describe('unbounded fast path vs Execution: budget calls', () => {
  it('a retryOn that throws: the fast path reports a failure to the budget, the Execution path does not', async () => {
    const calls = (bounded: boolean) => {
      const log: string[] = [];
      const budget: RetryBudget = {
        recordFailure: () => void log.push('recordFailure'),
        tryAcquire: () => true,
        recordSuccess: () => void log.push('recordSuccess'),
      };
      const b = new Backoff({
        maxTries: 3,
        retryOn: () => {
          throw new Error('classifier bug');
        },
        budget,
        ...(bounded ? { deadline: 1_000_000 } : {}),
      });
      return { log, run: b.execute(async () => Promise.reject(new Error('e'))) };
    };
    const unbounded = calls(false);
    const bounded = calls(true);
    await expect(unbounded.run).rejects.toThrow('classifier bug');
    await expect(bounded.run).rejects.toThrow('classifier bug');
    expect(unbounded.log).toEqual(bounded.log);
  });
});

describe('withLock and long-lived signals', () => {
  it('adds one abort listener per held lock to the instance signal (rule 6: one per signal)', async () => {
    const shutdown = new AbortController();
    const b = new Backoff({ signal: shutdown.signal, deadline: 1_000 });
    const lock = { acquire: async () => ({}), release: async () => {} };
    const bodies = Array.from({ length: 20 }, () =>
      b.withLock(lock, () => new Promise<void>((resolve) => setTimeout(resolve, 100))),
    );
    await t.clock.tickAsync(10);
    const listeners = getEventListeners(shutdown.signal, 'abort').length;
    await t.clock.tickAsync(200);
    await Promise.all(bodies);
    expect(listeners).toBeLessThanOrEqual(1);
  });
});

describe('map and long-lived signals', () => {
  // Found by the soak (scripts/soak.ts): each batch added its own listener to its `signal`, so 11
  // batches in flight on one shutdown signal raised a MaxListenersExceededWarning.
  it("adds one abort listener per batch to its 'signal' (rule 6: one per signal)", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const shutdown = new AbortController();
      const b = new Backoff({ deadline: 1_000 });
      const reason = new Error('shutdown');
      const seen: unknown[] = [];
      const batches = Array.from({ length: 20 }, (_, i) =>
        track(
          b.map(
            [i, i + 100],
            (item) =>
              new Promise<number>((resolve, reject) => {
                const signal = currentAttempt()!.signal;
                const timer = setTimeout(() => resolve(item), 100);
                signal.addEventListener('abort', () => {
                  clearTimeout(timer);
                  seen.push(signal.reason);
                  reject(signal.reason);
                });
              }),
            { signal: shutdown.signal },
          ),
        ),
      );
      await t.clock.tickAsync(10);
      expect(getEventListeners(shutdown.signal, 'abort').length).toBeLessThanOrEqual(1);
      shutdown.abort(reason);
      await t.clock.tickAsync(0);
      for (const batch of batches) {
        expect(batch.status).toBe('rejected');
        expect(batch.error).toBe(reason);
      }
      expect(seen).toHaveLength(40);
      expect(seen.every((r) => r === reason)).toBe(true);
      expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
      await new Promise<void>((resolve) => setImmediateReal(resolve));
      expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('leaves no listener on a batch signal that never aborts, once the batches settled', async () => {
    const request = new AbortController();
    const b = new Backoff();
    const batches = Array.from({ length: 20 }, (_, i) =>
      b.map([i], (item) => sleep(10).then(() => item), { signal: request.signal }),
    );
    await t.clock.tickAsync(5);
    expect(getEventListeners(request.signal, 'abort').length).toBeLessThanOrEqual(1);
    await t.clock.tickAsync(20);
    expect(await Promise.all(batches)).toEqual(Array.from({ length: 20 }, (_, i) => [i]));
    await t.clock.tickAsync(0);
    expect(getEventListeners(request.signal, 'abort')).toHaveLength(0);
  });
});

describe("the caller's async context (other AsyncLocalStorage stores: tracing, request ids)", () => {
  // Real timers: a fake clock runs every callback in the context of whoever ticks it, so it cannot
  // show which context a timer's callback runs in.
  async function withRealTimers(body: () => Promise<void>) {
    t.clock.uninstall();
    try {
      await body();
    } finally {
      (t as { clock: ReturnType<typeof installFakeClock> }).clock = installFakeClock();
    }
  }

  it("after an attempt timeout, the retry of one call runs in another call's context (shared timer)", () =>
    withRealTimers(async () => {
      const requestId = new AsyncLocalStorage<string>();
      const b = new Backoff({ attemptTimeout: 20, maxTries: 2 });
      const seen: Record<string, (string | undefined)[]> = { A: [], B: [] };
      const call = (id: 'A' | 'B') =>
        requestId.run(id, () =>
          b.execute(async () => {
            seen[id]!.push(requestId.getStore());
            if (seen[id]!.length === 1) return new Promise(() => {}); // times out
            return 'ok';
          }),
        );
      await Promise.all([call('A'), call('B')]);
      expect(seen).toEqual({ A: ['A', 'A'], B: ['B', 'B'] });
    }));

  it("a pause-0 retry deferred to the check phase runs in another call's context", () =>
    withRealTimers(async () => {
      const requestId = new AsyncLocalStorage<string>();
      const b = new Backoff({ maxTries: 4, retryAll: true, deadline: 10_000 });
      const seen: Record<string, (string | undefined)[]> = { A: [], B: [] };
      const call = (id: 'A' | 'B') =>
        requestId.run(id, () =>
          b.execute(async () => {
            seen[id]!.push(requestId.getStore());
            if (seen[id]!.length < 4) throw new TransientError(id);
            return 'ok';
          }),
        );
      await Promise.all([call('A'), call('B')]);
      expect(seen).toEqual({ A: ['A', 'A', 'A', 'A'], B: ['B', 'B', 'B', 'B'] });
    }));

  // The verdicts that end an execution and call back nothing (the last try's timeout, a deadline)
  // skip the caller's context; what does call back (the signal's listeners, nested executions)
  // still runs in it. Both calls expire in one timer callback, armed in A's context.
  for (const bound of ['attemptTimeout', 'deadline'] as const)
    it(`a quiet ${bound} verdict: each call's abort listener and handler run in its own context`, () =>
      withRealTimers(async () => {
        const requestId = new AsyncLocalStorage<string>();
        const b = new Backoff(
          bound === 'attemptTimeout' ? { attemptTimeout: 20, maxTries: 1 } : { deadline: 20 },
        );
        const seen: string[] = [];
        const call = (id: 'A' | 'B') =>
          requestId.run(id, () =>
            b
              .execute(() => {
                currentAttempt()!.signal.addEventListener('abort', () =>
                  seen.push(`${id} listener in ${requestId.getStore()}`),
                );
                return new Promise(() => {});
              })
              .catch((error: Error) => seen.push(`${id} ${error.name} in ${requestId.getStore()}`)),
          );
        await Promise.all([call('A'), call('B')]);
        await new Promise((resolve) => setImmediate(resolve)); // the listeners run after the verdicts
        const name = bound === 'attemptTimeout' ? 'AttemptTimeoutError' : 'DeadlineExceededError';
        expect(seen.sort()).toEqual([
          `A ${name} in A`,
          'A listener in A',
          `B ${name} in B`,
          'B listener in B',
        ]);
      }));

  it("a nested execution cut by its parent's quiet verdict hears the abort in its caller's context", () =>
    withRealTimers(async () => {
      const requestId = new AsyncLocalStorage<string>();
      const outer = new Backoff({ attemptTimeout: 20, maxTries: 1 });
      const inner = new Backoff();
      const heard: (string | undefined)[] = [];
      const call = (id: 'A' | 'B') =>
        requestId.run(id, () =>
          outer.execute(() =>
            inner.execute(() => {
              currentAttempt()!.signal.addEventListener('abort', () =>
                heard.push(`${id} in ${requestId.getStore()}`),
              );
              return new Promise(() => {});
            }),
          ),
        );
      const settled = await Promise.allSettled([call('A'), call('B')]);
      expect(settled.map((result) => result.status)).toEqual(['rejected', 'rejected']);
      expect(heard.sort()).toEqual(['A in A', 'B in B']);
    }));

  it("a call held by a 'wait' breaker resumes in the context of the probe's caller", () =>
    withRealTimers(async () => {
      const requestId = new AsyncLocalStorage<string>();
      const breaker = circuitBreaker({
        whenOpen: 'wait',
        consecutiveFailures: 1,
        halfOpenAfter: 20,
      });
      const b = new Backoff({ deadline: 5_000, retryAll: true, pause: 1, breaker });
      const opener = new Backoff({ deadline: 5_000, maxTries: 1, retryAll: true, breaker });
      await opener
        .execute(async () => {
          throw new TransientError('down');
        })
        .catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 30)); // half-open
      const seen: (string | undefined)[] = [];
      const probe = requestId.run('probe', () =>
        b.execute(() => new Promise((resolve) => setTimeout(() => resolve('ok'), 10))),
      );
      const held = requestId.run('held', () =>
        b.execute(async () => {
          seen.push(requestId.getStore());
          return 'ok';
        }),
      );
      await Promise.all([probe, held]);
      expect(seen).toEqual(['held']);
    }));
});

describe('how the function is called', () => {
  // The engine calls fn through Reflect.apply(fn, thisArg, args), inline on the fast path and
  // through AsyncLocalStorage.run on the Execution path: every route must pass `this` undefined
  // (AsyncLocalStorage.run(store, fn) alone would pass `this` = null).
  it.each([
    ['with the attempt context', true],
    ['with context: false', false],
  ])('%s: `this` is undefined on every attempt, with or without arguments', async (_, context) => {
    const seen: unknown[] = [];
    const backoff = new Backoff({ context, retryAll: true, maxTries: 2, pause: 0 });
    let calls = 0;
    async function fn(this: unknown, ...args: unknown[]): Promise<number> {
      seen.push(this, args.length);
      if (++calls % 2 === 1) throw new Error('once');
      return 1;
    }
    await backoff.execute(fn);
    await backoff.execute(fn, 'a');
    await new Backoff({ context, retryAll: true, maxTries: 2, attemptTimeout: 1000 }).execute(fn);
    expect(seen).toEqual([
      undefined,
      0,
      undefined,
      0,
      undefined,
      1,
      undefined,
      1,
      undefined,
      0,
      undefined,
      0,
    ]);
  });
});

describe('a retry that cancels its own execution, then returns a promise', () => {
  it('rejects with the cancel reason (the relay kept its conclusion), and the value is a late result', async () => {
    const controller = new AbortController();
    const stop = new Error('stop');
    const backoff = new Backoff({ maxTries: 5, retryAll: true, pause: 0 }).withSignal(
      controller.signal,
    );
    let calls = 0;
    let release: (value: string) => void = () => {};
    const result = track(
      backoff.execute(() => {
        calls++;
        if (calls === 1) return Promise.reject(new Error('first'));
        controller.abort(stop);
        return new Promise<string>((resolve) => {
          release = resolve;
        });
      }),
    );
    await t.clock.tickAsync(10);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(stop);
    expect(calls).toBe(2);
    release('late');
    await t.clock.tickAsync(10);
    expect(backoff.statistics).toMatchObject({ cancels: 1, lateResults: 1 });
  });
});
