/**
 * A model-based test of the engine on a fake clock: random policies (attemptTimeout, deadline,
 * pause including 0, maxTries, async predicates), random scripted attempts (succeed or fail after
 * d ms, hang, throw at once, hostile return values, results retryIf marks, nested executions) and
 * random cancellations, one execution or several sharing an instance. Whatever happens, the
 * invariants in checkRun hold, nothing is left behind, and a timer scheduled alongside keeps
 * firing on time (so a pause of 0 never starves the event loop).
 *
 * 10,000 schedules by default (7,000 single, 3,000 concurrent); PROPERTY_RUNS scales both.
 */
import FakeTimers from '@sinonjs/fake-timers';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type AttemptContext,
  AttemptTimeoutError,
  Backoff,
  type BackoffOptions,
  currentAttempt,
  DeadlineExceededError,
  RetryConditionError,
} from '../src/index.js';
import { FAKED, type InstalledClock } from './support/clock.js';

/** Schedules in all; raise with PROPERTY_RUNS=100000 for a deeper search. */
const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 10_000);
const SINGLE_RUNS = Math.ceil(NUM_RUNS * 0.7);
const CONCURRENT_RUNS = Math.ceil(NUM_RUNS * 0.3);
const TEST_TIMEOUT = Math.max(60_000, NUM_RUNS * 20);

/** Long enough for every bounded scenario to end (the longest takes well under 1000 ms). */
const HORIZON = 1500;

class TransientError extends Error {
  override name = 'TransientError';
}
class FatalError extends Error {
  override name = 'FatalError';
}

type Behaviour =
  | { readonly kind: 'succeed'; readonly after: number }
  | { readonly kind: 'fail'; readonly after: number; readonly fatal: boolean }
  | { readonly kind: 'hang' }
  | { readonly kind: 'hangUntilAborted' }
  | { readonly kind: 'throwSync' }
  | { readonly kind: 'rejectNow' }
  /** Returns an object whose `then` getter throws a TransientError. */
  | { readonly kind: 'getterThrows' }
  /** Returns a thenable that fulfils twice and then throws, after d ms. */
  | { readonly kind: 'thenableTwice'; readonly after: number }
  /** Resolves with 'again' after d ms: retryIf marks it "not done yet". */
  | { readonly kind: 'again'; readonly after: number }
  /** Runs a nested execution (fails once, then succeeds after d ms) and resolves with 'ok'. */
  | { readonly kind: 'nested'; readonly after: number };

/** What an attempt does once the script is exhausted. */
const LAST: Behaviour = { kind: 'succeed', after: 1 };

/**
 * A duration in [min, max] ms; half the time a multiple of 10, so that instants coincide often
 * (a pause ending exactly at the deadline, a result arriving exactly at a timeout).
 */
const ms = (min: number, max: number): fc.Arbitrary<number> =>
  fc.oneof(
    fc.integer({ min: Math.ceil(min / 10), max: Math.floor(max / 10) }).map((n) => n * 10),
    fc.integer({ min, max }),
  );

const behaviourArb: fc.Arbitrary<Behaviour> = fc.oneof(
  fc.record({ kind: fc.constant('succeed' as const), after: ms(0, 60) }),
  fc.record({
    kind: fc.constant('fail' as const),
    after: ms(0, 60),
    fatal: fc.boolean(),
  }),
  fc.constant({ kind: 'hang' as const }),
  fc.constant({ kind: 'hangUntilAborted' as const }),
  fc.constant({ kind: 'throwSync' as const }),
  fc.constant({ kind: 'rejectNow' as const }),
  fc.constant({ kind: 'getterThrows' as const }),
  fc.record({ kind: fc.constant('thenableTwice' as const), after: ms(0, 60) }),
  fc.record({ kind: fc.constant('again' as const), after: ms(0, 60) }),
  fc.record({ kind: fc.constant('nested' as const), after: ms(0, 40) }),
);

interface Policy {
  readonly attemptTimeout: number | undefined;
  readonly deadline: number | undefined;
  readonly pause: number;
  readonly maxTries: number | undefined;
  /** giveup, retryIf: synchronous, or answering in a later microtask. */
  readonly asyncPredicates: boolean;
}

const policyArb: fc.Arbitrary<Policy> = fc.record({
  attemptTimeout: fc.option(ms(1, 50), { nil: undefined }),
  deadline: fc.option(ms(0, 300), { nil: undefined }),
  pause: fc.oneof(fc.constant(0), ms(0, 40)),
  maxTries: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
  asyncPredicates: fc.boolean(),
});

function toOptions(policy: Policy): BackoffOptions {
  const answer = (value: boolean) => (policy.asyncPredicates ? Promise.resolve(value) : value);
  const options: BackoffOptions = {
    pause: policy.pause,
    exceptions: [TransientError],
    giveup: () => answer(false),
    retryIf: (result) => answer(result === 'again'),
  };
  if (policy.attemptTimeout !== undefined) options.attemptTimeout = policy.attemptTimeout;
  if (policy.deadline !== undefined) options.deadline = policy.deadline;
  if (policy.maxTries !== undefined) options.maxTries = policy.maxTries;
  return options;
}

// ---- the harness ---------------------------------------------------------------------------------

let clock: InstalledClock;
let live: Map<EventTarget, Set<unknown>>;
const originalAdd = EventTarget.prototype.addEventListener;
const originalRemove = EventTarget.prototype.removeEventListener;

beforeEach(() => {
  live = new Map();
  vi.spyOn(AbortSignal.prototype, 'addEventListener').mockImplementation(function (
    this: AbortSignal,
    type,
    listener,
    options,
  ) {
    let set = live.get(this);
    if (set === undefined) {
      set = new Set();
      live.set(this, set);
    }
    set.add(listener);
    return originalAdd.call(this, type, listener, options);
  });
  vi.spyOn(AbortSignal.prototype, 'removeEventListener').mockImplementation(function (
    this: AbortSignal,
    type,
    listener,
    options,
  ) {
    live.get(this)?.delete(listener);
    return originalRemove.call(this, type, listener, options);
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const now = () => performance.now();

/** Timers of the test itself (scripted attempts, scheduled aborts), so they can be told apart. */
class UserTimers {
  private readonly pending = new Set<unknown>();
  after(ms: number, callback: () => void): void {
    const handle: unknown = setTimeout(() => {
      this.pending.delete(handle);
      callback();
    }, ms);
    this.pending.add(handle);
  }
  get size(): number {
    return this.pending.size;
  }
}

interface CallRecord {
  readonly at: number;
  readonly ctx: AttemptContext;
  /** The cancelling signal was already aborted when fn was called. */
  readonly afterAbort: boolean;
  /** Settled executions' count of calls when fn was called (a call after settling is a bug). */
  readonly afterSettle: boolean;
}

interface Run {
  readonly startAt: number;
  /** execute() has been called. */
  started: boolean;
  readonly calls: CallRecord[];
  readonly thrown: Set<unknown>;
  /** For each thrown error: the attempt (0-based) that threw it and when it was thrown. */
  readonly failures: Map<unknown, { readonly index: number; readonly at: number }>;
  status: 'pending' | 'fulfilled' | 'rejected';
  value: unknown;
  error: unknown;
  settledAt: number;
  settlements: number;
  /** Whether the execution was still pending when the abort fired. */
  pendingAtAbort: boolean | undefined;
  /** When each attempt that returned 'again' (a result retryIf marks) delivered it. */
  readonly agains: Map<number, number>;
  /** Nested executions started inside attempts: how many have not settled. */
  nestedPending: number;
}

/** Starts one execution through `target` at `startAt`, playing `script`. */
function startRun(
  timers: UserTimers,
  target: () => Backoff,
  signal: AbortSignal,
  script: readonly Behaviour[],
  startAt: number,
): Run {
  const run: Run = {
    startAt,
    started: false,
    calls: [],
    thrown: new Set(),
    failures: new Map(),
    status: 'pending',
    value: undefined,
    error: undefined,
    settledAt: Number.NaN,
    settlements: 0,
    pendingAtAbort: undefined,
    agains: new Map(),
    nestedPending: 0,
  };
  const inner = new Backoff({ retryAll: true, maxTries: 2 });
  const fn = (): unknown => {
    const ctx = currentAttempt();
    if (ctx === undefined) throw new Error('currentAttempt() is undefined inside fn');
    const behaviour = script[run.calls.length] ?? LAST;
    run.calls.push({
      at: now(),
      ctx,
      afterAbort: signal.aborted,
      afterSettle: run.status !== 'pending',
    });
    const index = run.calls.length - 1;
    const failure = (fatal: boolean) => {
      const error = fatal ? new FatalError('fatal') : new TransientError('transient');
      run.thrown.add(error);
      return error;
    };
    const thrownNow = (error: unknown) => {
      run.failures.set(error, { index, at: now() });
      return error;
    };
    switch (behaviour.kind) {
      case 'succeed':
        return new Promise((resolve) => timers.after(behaviour.after, () => resolve('ok')));
      case 'fail': {
        const error = failure(behaviour.fatal);
        return new Promise((_, reject) =>
          timers.after(behaviour.after, () => reject(thrownNow(error))),
        );
      }
      case 'hang':
        return new Promise(() => {});
      case 'hangUntilAborted':
        return new Promise((_, reject) => {
          const attemptSignal = ctx.signal;
          attemptSignal.addEventListener('abort', () => reject(attemptSignal.reason), {
            once: true,
          });
        });
      case 'throwSync':
        throw thrownNow(failure(false));
      case 'rejectNow':
        return Promise.reject(thrownNow(failure(false)));
      case 'getterThrows': {
        const error = failure(false);
        return {
          get then(): never {
            throw thrownNow(error);
          },
        };
      }
      case 'thenableTwice':
        return {
          then(resolve: (value: string) => void) {
            if (behaviour.after > 0)
              timers.after(behaviour.after, () => {
                resolve('ok');
                resolve('second');
              });
            else {
              resolve('ok');
              resolve('second');
              throw new Error('a throw after the thenable fulfilled is ignored');
            }
          },
        };
      case 'again':
        return new Promise((resolve) =>
          timers.after(behaviour.after, () => {
            // Only a result its attempt delivers counts; an abandoned attempt's is dropped.
            if (!ctx.signal.aborted) run.agains.set(index, now());
            resolve('again');
          }),
        );
      case 'nested': {
        run.nestedPending++;
        let innerCalls = 0;
        const nested = inner.execute(() =>
          ++innerCalls === 1
            ? Promise.reject(new TransientError('inner'))
            : new Promise((resolve) => timers.after(behaviour.after, () => resolve('ok'))),
        );
        nested.then(
          () => run.nestedPending--,
          () => run.nestedPending--,
        );
        return nested;
      }
    }
  };
  const begin = () => {
    run.started = true;
    target()
      .execute(fn)
      .then(
        (value) => {
          run.status = 'fulfilled';
          run.value = value;
          run.settledAt = now();
          run.settlements++;
        },
        (error: unknown) => {
          run.status = 'rejected';
          run.error = error;
          run.settledAt = now();
          run.settlements++;
        },
      );
  };
  if (startAt === 0) begin();
  else timers.after(startAt, begin);
  return run;
}

/** The invariants every execution satisfies, whatever the policy, script and cancellation. */
function checkRun(
  run: Run,
  policy: Policy,
  abort: { readonly at: number | undefined; readonly reason: unknown },
): void {
  const { calls } = run;
  const deadlineAt = policy.deadline === undefined ? undefined : run.startAt + policy.deadline;

  // It settled exactly once (a bounded or cancelled execution always settles).
  expect(run.settlements).toBe(1);

  // Attempts ≤ maxTries, numbered 1..n.
  if (policy.maxTries !== undefined) expect(calls.length).toBeLessThanOrEqual(policy.maxTries);
  expect(calls.map((c) => c.ctx.attempt)).toEqual(calls.map((_, i) => i + 1));

  // No attempt starts after the deadline, after an abort, or after settling.
  for (const call of calls) {
    expect(call.afterAbort).toBe(false);
    expect(call.afterSettle).toBe(false);
    expect(call.at).toBeGreaterThanOrEqual(run.startAt);
    expect(call.at).toBeLessThanOrEqual(run.settledAt);
    if (deadlineAt !== undefined) expect(call.at).toBeLessThan(deadlineAt);
  }

  // It settles no later than the deadline (timer callbacks run at the exact fake time).
  if (deadlineAt !== undefined) expect(run.settledAt).toBeLessThanOrEqual(deadlineAt);

  // An abort that finds it pending ends it at once with the exact reason.
  if (run.pendingAtAbort === true) {
    expect(run.status).toBe('rejected');
    expect(run.error).toBe(abort.reason);
    expect(run.settledAt).toBe(abort.at);
  }
  if (run.status === 'rejected' && run.error === abort.reason) {
    // Aborted while running, or started after the abort (then fn is never called).
    expect(abort.at).toBeDefined();
    expect(run.settledAt).toBe(Math.max(abort.at!, run.startAt));
    if (run.startAt >= abort.at!) expect(calls).toHaveLength(0);
  }

  // What it settles with.
  if (run.status === 'fulfilled') {
    expect(run.value).toBe('ok');
    return;
  }
  const error = run.error;
  if (error === abort.reason) return;
  if (error instanceof RetryConditionError) {
    expect(error.lastResult).toBe('again');
    const [index, at] = [...run.agains].at(-1)!;
    checkLastFailure(run, policy, deadlineAt, { index, at }, false);
    return;
  }
  if (error instanceof DeadlineExceededError) {
    // Only when no attempt failed before: so at most the one attempt the deadline cut.
    expect(deadlineAt).toBeDefined();
    expect(calls.length).toBeLessThanOrEqual(1);
    expect(error.attempts).toBe(calls.length);
    expect(run.settledAt).toBe(deadlineAt);
    if (calls.length === 1) expect(calls[0]!.ctx.signal.reason).toBe(error);
    return;
  }
  let failure: { index: number; at: number };
  if (error instanceof AttemptTimeoutError) {
    // The very error the timed-out attempt's signal was aborted with.
    expect(policy.attemptTimeout).toBeDefined();
    const index = error.attempt - 1;
    expect(calls[index]!.ctx.signal.reason).toBe(error);
    failure = { index, at: calls[index]!.at + policy.attemptTimeout! };
  } else {
    expect(run.thrown.has(error)).toBe(true);
    failure = run.failures.get(error)!;
    expect(failure).toBeDefined();
  }
  checkLastFailure(
    run,
    policy,
    deadlineAt,
    failure,
    error instanceof FatalError || error instanceof TypeError,
  );
}

/** How an execution that rejected with its last failure (at `failure.at`) ended. */
function checkLastFailure(
  run: Run,
  policy: Policy,
  deadlineAt: number | undefined,
  failure: { index: number; at: number },
  fatal: boolean,
): void {
  const { calls } = run;
  if (failure.index === calls.length - 1) {
    // It failed last: the execution rejects right then (no pause after the last attempt, none
    // that would cross the deadline, none after an error that is not retriable). Or a retry
    // without pause waited for the check phase (the fake clock runs it 1 ms later) and the
    // deadline came first.
    const deferred =
      policy.pause === 0 && run.settledAt === deadlineAt && deadlineAt - failure.at <= 1;
    if (!deferred) expect(run.settledAt).toBe(failure.at);
  } else {
    // An earlier attempt failed last: the next one was cut by the deadline.
    expect(failure.index).toBe(calls.length - 2);
    expect(calls[calls.length - 1]!.ctx.signal.reason).toBeInstanceOf(DeadlineExceededError);
    expect(run.settledAt).toBe(deadlineAt);
  }
  // A retriable failure ends the execution only when out of tries or out of time (fail fast).
  if (!fatal) {
    const outOfTries = policy.maxTries !== undefined && calls.length === policy.maxTries;
    const outOfTime = deadlineAt !== undefined && run.settledAt + policy.pause >= deadlineAt;
    expect(outOfTries || outOfTime).toBe(true);
  }
}

/** After settling and the end of the turn: no timer of the engine, no listener on `signal`. */
async function checkReleased(timers: UserTimers, signal: AbortSignal): Promise<void> {
  // fake-timers runs a setImmediate made during a tick 1 ms later: end that turn.
  await clock.tickAsync(1);
  expect(clock.countTimers()).toBe(timers.size);
  expect(live.get(signal)?.size ?? 0).toBe(0);
}

const scenarioArb = fc.record({
  policy: policyArb,
  script: fc.array(behaviourArb, { maxLength: 8 }),
  abortAt: fc.option(ms(0, 400), { nil: undefined }),
  via: fc.constantFrom('instance signal' as const, 'withSignal' as const),
  bystanders: fc.array(ms(1, 400), { minLength: 1, maxLength: 3 }),
});

/**
 * Timers of an unrelated part of the program, scheduled beside the executions: each must fire at
 * its time. An engine that retried in microtasks without end would never let them (nor the test)
 * go on.
 */
function startBystanders(times: readonly number[]): () => void {
  const fired: number[] = [];
  for (const at of times) setTimeout(() => fired.push(now()), at);
  return () => expect(fired).toEqual([...times].sort((a, b) => a - b));
}

describe('engine invariants (fast-check, fake clock)', () => {
  it(
    'one execution: attempts ≤ maxTries, none after the deadline or an abort, settles once and in time, leaks nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArb, async ({ policy, script, abortAt, via, bystanders }) => {
          clock = FakeTimers.install({ toFake: [...FAKED] });
          try {
            const checkBystanders = startBystanders(bystanders);
            const timers = new UserTimers();
            const controller = new AbortController();
            const reason = new Error('aborted');
            const options = toOptions(policy);
            const backoff =
              via === 'instance signal'
                ? new Backoff({ ...options, signal: controller.signal })
                : new Backoff(options);
            const target = () =>
              via === 'instance signal' ? backoff : backoff.withSignal(controller.signal);

            let run: Run | undefined;
            const abort = () => {
              run!.pendingAtAbort = run!.status === 'pending';
              controller.abort(reason);
            };
            if (abortAt === 0) controller.abort(reason);
            else if (abortAt !== undefined) timers.after(abortAt, abort);
            run = startRun(timers, target, controller.signal, script, 0);
            if (abortAt === 0) run.pendingAtAbort = true;

            await clock.tickAsync(HORIZON);
            checkBystanders();

            if (run.status === 'pending') {
              // Only an execution without deadline or abort may still be pending: one whose
              // attempt hangs with no attemptTimeout, or one retrying without maxTries (an attempt
              // that succeeds exactly when attemptTimeout expires keeps timing out).
              expect(policy.deadline).toBeUndefined();
              expect(abortAt).toBeUndefined();
              const lastKind = (script[run.calls.length - 1] ?? LAST).kind;
              const hangs = lastKind === 'hang' || lastKind === 'hangUntilAborted';
              expect(
                (hangs && policy.attemptTimeout === undefined) || policy.maxTries === undefined,
              ).toBe(true);
              // End it now, to check the rest.
              run.pendingAtAbort = true;
              controller.abort(reason);
              await clock.tickAsync(0);
              checkRun(run, policy, { at: HORIZON, reason });
            } else {
              checkRun(run, policy, { at: abortAt, reason });
            }
            await checkReleased(timers, controller.signal);
            expect(run.nestedPending).toBe(0);

            const stats = backoff.statistics;
            expect(stats.attempts).toBe(run.calls.length);
            expect(stats.done).toBe(run.calls.length);
            expect(stats.successes).toBe(run.status === 'fulfilled' ? 1 : 0);
            expect(stats.successes + stats.giveUps).toBe(run.error === reason ? 0 : 1);
            expect(stats.errors).toBeLessThanOrEqual(stats.attempts);
            expect(stats.retries).toBeLessThanOrEqual(Math.max(0, stats.attempts - 1) + 1);
          } finally {
            clock.uninstall();
          }
        }),
        { numRuns: SINGLE_RUNS },
      );
    },
    TEST_TIMEOUT,
  );

  it(
    'concurrent executions sharing one instance and one signal: each keeps the invariants',
    async () => {
      const concurrentArb = fc.record({
        policy: policyArb,
        executions: fc.array(
          fc.record({
            script: fc.array(behaviourArb, { maxLength: 6 }),
            startAt: ms(0, 80),
          }),
          { minLength: 2, maxLength: 6 },
        ),
        abortAt: fc.option(ms(1, 400), { nil: undefined }),
        via: fc.constantFrom('instance signal' as const, 'withSignal' as const),
        bystanders: fc.array(ms(1, 400), { minLength: 1, maxLength: 3 }),
      });
      await fc.assert(
        fc.asyncProperty(
          concurrentArb,
          async ({ policy, executions, abortAt, via, bystanders }) => {
            clock = FakeTimers.install({ toFake: [...FAKED] });
            try {
              const checkBystanders = startBystanders(bystanders);
              const timers = new UserTimers();
              const controller = new AbortController();
              const reason = new Error('aborted');
              const options = toOptions(policy);
              const backoff =
                via === 'instance signal'
                  ? new Backoff({ ...options, signal: controller.signal })
                  : new Backoff(options);
              const target = () =>
                via === 'instance signal' ? backoff : backoff.withSignal(controller.signal);

              const runs: Run[] = [];
              if (abortAt !== undefined)
                timers.after(abortAt, () => {
                  for (const run of runs)
                    run.pendingAtAbort = run.started && run.status === 'pending';
                  controller.abort(reason);
                });
              for (const { script, startAt } of executions)
                runs.push(startRun(timers, target, controller.signal, script, startAt));

              await clock.tickAsync(HORIZON);
              checkBystanders();
              const stillPending = runs.some((run) => run.status === 'pending');
              if (stillPending) {
                expect(policy.deadline).toBeUndefined();
                expect(abortAt).toBeUndefined();
                expect(policy.attemptTimeout === undefined || policy.maxTries === undefined).toBe(
                  true,
                );
                for (const run of runs)
                  run.pendingAtAbort = run.started && run.status === 'pending';
                controller.abort(reason);
                await clock.tickAsync(0);
              }
              for (const run of runs)
                checkRun(run, policy, { at: stillPending ? HORIZON : abortAt, reason });
              await checkReleased(timers, controller.signal);
              for (const run of runs) expect(run.nestedPending).toBe(0);

              const stats = backoff.statistics;
              const calls = runs.reduce((n, run) => n + run.calls.length, 0);
              expect(stats.attempts).toBe(calls);
              expect(stats.done).toBe(calls);
              expect(stats.successes).toBe(runs.filter((run) => run.status === 'fulfilled').length);
              expect(stats.successes + stats.giveUps).toBe(
                runs.filter((run) => run.error !== reason).length,
              );
            } finally {
              clock.uninstall();
            }
          },
        ),
        { numRuns: CONCURRENT_RUNS },
      );
    },
    TEST_TIMEOUT,
  );
});
