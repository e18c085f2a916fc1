/**
 * Discrete-event models for the retry-storm study. Time is virtual (milliseconds on an event
 * queue): nothing sleeps, so a run of thousands of simulated seconds takes milliseconds.
 *
 * Two models:
 *
 * - {@link simulateContention}: the model of the AWS Architecture Blog post "Exponential Backoff
 *   and Jitter" (Marc Brooker, 2015). N clients start together; each wants to update one row once
 *   under optimistic concurrency control: it reads the row's version, then sends a conditional
 *   write with that version. The write commits only if nobody committed since the read; otherwise
 *   the client pauses (the delay strategy under test) and starts over with a fresh read. Every
 *   network hop takes |Normal(10 ms, 2 ms)|. "Calls" counts writes, as the post does.
 * - {@link simulateOutage}: M clients each start a request every `interval` ms (open loop, as
 *   traffic arrives whatever happens downstream); every call fails with probability `failureRate`
 *   (1 = a total outage) after a round trip. Each request retries up to `maxTries` attempts, each
 *   client process holding its own retry budget. The load multiplier is calls / first attempts.
 *
 * The models drive the library's `DelayStrategy` and `RetryBudget` objects exactly as the engine
 * does: `recordFailure(kind)` after each failed attempt, `tryAcquire(kind)` before each retry,
 * `recordSuccess(lastRetryKind)` on success, and `strategy.delay(context)` for each pause.
 */
import type { DelayContext, DelayStrategy, FailureKind, RetryBudget } from '../../src/types.js';

/** A min-heap of events ordered by time, then by insertion order (so runs are deterministic). */
export class EventQueue {
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly actions: Array<() => void> = [];
  private seq = 0;
  /** The time of the event being processed (or last processed). */
  now = 0;
  /** Events processed so far. */
  processed = 0;

  get size(): number {
    return this.times.length;
  }

  /** Schedules `action` at absolute virtual time `time` (never in the past). */
  at(time: number, action: () => void): void {
    if (!(time >= this.now)) throw new RangeError(`event at ${time} is before now (${this.now})`);
    const times = this.times;
    const seqs = this.seqs;
    const actions = this.actions;
    const seq = this.seq++;
    let i = times.length;
    times.push(time);
    seqs.push(seq);
    actions.push(action);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent]!;
      if (pt < time || (pt === time && seqs[parent]! < seq)) break;
      times[i] = pt;
      seqs[i] = seqs[parent]!;
      actions[i] = actions[parent]!;
      i = parent;
    }
    times[i] = time;
    seqs[i] = seq;
    actions[i] = action;
  }

  /** Schedules `action` `delay` ms from now. */
  after(delay: number, action: () => void): void {
    this.at(this.now + delay, action);
  }

  private pop(): () => void {
    const times = this.times;
    const seqs = this.seqs;
    const actions = this.actions;
    const top = actions[0]!;
    this.now = times[0]!;
    const lastTime = times.pop()!;
    const lastSeq = seqs.pop()!;
    const lastAction = actions.pop()!;
    const n = times.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        let child = left;
        if (
          right < n &&
          (times[right]! < times[left]! ||
            (times[right] === times[left] && seqs[right]! < seqs[left]!))
        )
          child = right;
        const ct = times[child]!;
        if (ct > lastTime || (ct === lastTime && seqs[child]! > lastSeq)) break;
        times[i] = ct;
        seqs[i] = seqs[child]!;
        actions[i] = actions[child]!;
        i = child;
      }
      times[i] = lastTime;
      seqs[i] = lastSeq;
      actions[i] = lastAction;
    }
    return top;
  }

  /** Runs events until none is left; returns the time of the last one. */
  run(): number {
    while (this.times.length > 0) {
      this.pop()();
      this.processed++;
    }
    return this.now;
  }
}

/** Network latency of one hop: |Normal(mean, sd)| (Box-Muller over `random`). */
export function networkDelay(random: () => number, mean = 10, sd = 2): () => number {
  let spare: number | undefined;
  return () => {
    let z: number;
    if (spare !== undefined) {
      z = spare;
      spare = undefined;
    } else {
      const u = 1 - random(); // (0, 1]
      const v = random();
      const r = Math.sqrt(-2 * Math.log(u));
      z = r * Math.cos(2 * Math.PI * v);
      spare = r * Math.sin(2 * Math.PI * v);
    }
    return Math.abs(mean + sd * z);
  };
}

/** The per-execution state a strategy sees, built the way the engine builds it. */
function delayContext(
  attempt: number,
  kind: FailureKind,
  previousDelay: number | undefined,
  elapsed: number,
  random: () => number,
): DelayContext {
  return {
    attempt,
    fails: attempt,
    kind,
    error: kind === 'result' ? undefined : new Error('conflict'),
    result: undefined,
    previousDelay,
    elapsed,
    remaining: Number.POSITIVE_INFINITY,
    random,
  };
}

export interface ContentionOptions {
  /** Clients contending for the row; all start at time 0. */
  readonly clients: number;
  /** The pause between a conflicting write and the next read. */
  readonly strategy: DelayStrategy;
  /** One budget shared by all clients (N concurrent writers in one service), or none. */
  readonly budget?: RetryBudget | undefined;
  /** Attempts per client (read + write pairs); unbounded by default, as in the AWS model. */
  readonly maxTries?: number | undefined;
  /** Randomness of the network. */
  readonly networkRandom: () => number;
  /** Randomness handed to the strategy (`DelayContext.random`). */
  readonly jitterRandom: () => number;
  /** Mean and standard deviation of one network hop, ms. @defaultValue 10 and 2 */
  readonly netMean?: number;
  readonly netSd?: number;
}

export interface ContentionResult {
  /** Write calls reaching the server (the AWS post's "calls"). */
  readonly calls: number;
  /** Read calls reaching the server. */
  readonly reads: number;
  /** Virtual ms until the last client finished (committed or gave up). */
  readonly time: number;
  /** Clients whose write committed. */
  readonly committed: number;
  /** Clients that gave up (budget refused a retry, or out of tries). */
  readonly gaveUp: number;
}

/** Runs the AWS OCC contention model once. */
export function simulateContention(options: ContentionOptions): ContentionResult {
  const { clients, strategy, budget, jitterRandom } = options;
  const maxTries = options.maxTries ?? Number.POSITIVE_INFINITY;
  const hop = networkDelay(options.networkRandom, options.netMean, options.netSd);
  const queue = new EventQueue();
  let version = 0;
  let calls = 0;
  let reads = 0;
  let committed = 0;
  let gaveUp = 0;

  for (let c = 0; c < clients; c++) {
    let attempt = 0;
    let previousDelay: number | undefined;
    let lastRetryKind: FailureKind | undefined;

    const read = (): void => {
      // request reaches the server, which answers with the current version
      queue.after(hop(), () => {
        reads++;
        const seen = version;
        queue.after(hop(), () => write(seen));
      });
    };
    const write = (seen: number): void => {
      queue.after(hop(), () => {
        calls++;
        const ok = seen === version;
        if (ok) version++;
        queue.after(hop(), () => (ok ? succeed() : conflict()));
      });
    };
    const succeed = (): void => {
      committed++;
      budget?.recordSuccess(lastRetryKind);
    };
    const conflict = (): void => {
      attempt++;
      budget?.recordFailure('error');
      if (attempt >= maxTries || (budget !== undefined && !budget.tryAcquire('error'))) {
        gaveUp++;
        return;
      }
      const delay = strategy.delay(
        delayContext(attempt, 'error', previousDelay, queue.now, jitterRandom),
      );
      previousDelay = delay;
      lastRetryKind = 'error';
      queue.after(delay, read);
    };
    queue.at(0, read);
  }
  const time = queue.run();
  return { calls, reads, time, committed, gaveUp };
}

export interface OutageOptions {
  /** Client processes, each with its own budget. */
  readonly clients: number;
  /** Each client starts a new request every `interval` virtual ms. */
  readonly interval: number;
  /** First attempts are started during [0, window); their retries may run past it. */
  readonly window: number;
  /** Attempts per request, the first included. */
  readonly maxTries: number;
  /** Probability that a call fails (1 = total outage). */
  readonly failureRate: number;
  /** The pause between attempts. */
  readonly strategy: DelayStrategy;
  /** Makes the budget of one client process; `undefined` for no budget. */
  readonly budget?: (() => RetryBudget) | undefined;
  readonly networkRandom: () => number;
  readonly jitterRandom: () => number;
}

export interface OutageResult {
  /** Requests started (= first attempts). */
  readonly requests: number;
  /** Calls sent, retries included. */
  readonly calls: number;
  /** Requests that eventually succeeded. */
  readonly succeeded: number;
  /** Retries the budgets refused. */
  readonly refused: number;
  /** calls / requests. */
  readonly loadMultiplier: number;
}

/** Runs the steady-traffic outage model once. */
export function simulateOutage(options: OutageOptions): OutageResult {
  const { clients, interval, window, maxTries, failureRate, strategy, jitterRandom } = options;
  const random = options.networkRandom;
  const hop = networkDelay(random);
  const queue = new EventQueue();
  let requests = 0;
  let calls = 0;
  let succeeded = 0;
  let refused = 0;

  for (let c = 0; c < clients; c++) {
    const budget = options.budget?.();
    const request = (): void => {
      requests++;
      let attempt = 0;
      let previousDelay: number | undefined;
      let lastRetryKind: FailureKind | undefined;
      const call = (): void => {
        attempt++;
        calls++;
        const failed = failureRate >= 1 || random() < failureRate;
        queue.after(hop() + hop(), () => {
          if (!failed) {
            succeeded++;
            budget?.recordSuccess(lastRetryKind);
            return;
          }
          budget?.recordFailure('error');
          if (attempt >= maxTries) return;
          if (budget !== undefined && !budget.tryAcquire('error')) {
            refused++;
            return;
          }
          const delay = strategy.delay(
            delayContext(attempt, 'error', previousDelay, queue.now, jitterRandom),
          );
          previousDelay = delay;
          lastRetryKind = 'error';
          queue.after(delay, call);
        });
      };
      call();
    };
    // Spread the clients' phases over one interval so arrivals are steady, not in bursts.
    const tick = (): void => {
      request();
      if (queue.now + interval < window) queue.after(interval, tick);
    };
    queue.at(random() * interval, tick);
  }
  queue.run();
  return { requests, calls, succeeded, refused, loadMultiplier: calls / requests };
}
