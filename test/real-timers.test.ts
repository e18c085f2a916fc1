/**
 * A few checks on real time (no fake clock): the attempt timeout, the deadline and cancellation
 * fire on the real event loop with small durations. Bounds are generous; every test awaits the
 * execution itself rather than sleeping.
 */
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  type AttemptContext,
  AttemptTimeoutError,
  Backoff,
  currentAttempt,
  DeadlineExceededError,
} from '../src/index.js';

/** Generous upper bound: a loaded CI machine may be slow, but not by a second. */
const SLACK = 1000;
/** Node timers may fire up to ~1 ms early relative to performance.now(). */
const EARLY = 2;

const hang = (): Promise<never> => new Promise<never>(() => {});

/**
 * Starts `call` and awaits its rejection; returns the error and the elapsed real time, measured
 * from before the call (a slow call must not make the bound look early).
 */
async function timeRejection(
  call: () => Promise<unknown>,
): Promise<{ error: unknown; ms: number }> {
  const start = performance.now();
  try {
    await call();
  } catch (error) {
    return { error, ms: performance.now() - start };
  }
  throw new Error('expected a rejection');
}

function activeTimeouts(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

describe('on real timers', () => {
  it('times out attempts that ignore their signal, retries, and rejects with the last AttemptTimeoutError', async () => {
    const backoff = new Backoff({ attemptTimeout: 20, maxTries: 3 });
    const contexts: AttemptContext[] = [];
    const { error, ms } = await timeRejection(() =>
      backoff.execute(() => {
        contexts.push(currentAttempt()!);
        return hang();
      }),
    );
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    expect((error as AttemptTimeoutError).attempt).toBe(3);
    expect(contexts.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(contexts[2]!.signal.reason).toBe(error);
    expect(contexts.every((c) => c.signal.reason instanceof AttemptTimeoutError)).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(60 - 3 * EARLY);
    expect(ms).toBeLessThan(60 + SLACK);
    expect(backoff.statistics.timeouts).toBe(3);
  });

  it('stops at the deadline: DeadlineExceededError when nothing failed, the last error otherwise', async () => {
    const quiet = new Backoff({ deadline: 100 });
    let signal: AbortSignal | undefined;
    const first = await timeRejection(() =>
      quiet.execute(() => {
        signal = currentAttempt()!.signal;
        return hang();
      }),
    );
    expect(first.error).toBeInstanceOf(DeadlineExceededError);
    expect(signal!.reason).toBe(first.error);
    expect(first.ms).toBeGreaterThanOrEqual(100 - EARLY);
    expect(first.ms).toBeLessThan(100 + SLACK);

    const timingOut = new Backoff({ attemptTimeout: 20, deadline: 100 });
    let calls = 0;
    const second = await timeRejection(() =>
      timingOut.execute(() => {
        calls++;
        return hang();
      }),
    );
    expect(second.error).toBeInstanceOf(AttemptTimeoutError);
    expect(second.ms).toBeGreaterThanOrEqual(100 - EARLY);
    expect(second.ms).toBeLessThan(100 + SLACK);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(5);
  });

  it('fails fast on real time: a pause that would cross the deadline is not slept', async () => {
    const failure = new Error('down');
    const backoff = new Backoff({ deadline: 5000, pause: 10_000, retryAll: true });
    const { error, ms } = await timeRejection(() =>
      backoff.execute(() => new Promise<never>((_, reject) => setTimeout(reject, 20, failure))),
    );
    expect(error).toBe(failure);
    expect(ms).toBeLessThan(20 + SLACK); // far below the 5 s deadline
  });

  it('outside any attempt currentAttempt() stays undefined, even where a shared timer was armed inside another execution’s attempt', async () => {
    // `shared` first runs inside an attempt of `outer`: its attempt-timeout timer is armed there.
    // A second execution of `shared`, started outside any attempt, times out through that same
    // timer; its hooks and giveup run outside any attempt and must not see `outer`'s.
    const seenInCallbacks: unknown[] = [];
    const shared = new Backoff({
      attemptTimeout: 30,
      maxTries: 2,
      giveup: () => {
        seenInCallbacks.push(currentAttempt());
        return false;
      },
      onRetry: () => {
        seenInCallbacks.push(currentAttempt());
      },
    });
    const outer = new Backoff();
    let releaseOuter: (() => void) | undefined;
    const outerDone = outer.execute(async () => {
      await shared.execute(() => new Promise((resolve) => setTimeout(resolve, 10, 'quick')));
      await new Promise<void>((resolve) => {
        releaseOuter = resolve;
      });
    });
    expect(currentAttempt()).toBeUndefined();
    const { error } = await timeRejection(() => shared.execute(hang));
    releaseOuter?.();
    await outerDone;
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    expect(seenInCallbacks.length).toBeGreaterThan(0);
    expect(seenInCallbacks).toEqual(seenInCallbacks.map(() => undefined));
  });

  it('cancels on a signal aborted in real time, with the exact reason, and releases its timers', async () => {
    const baseline = activeTimeouts();
    const controller = new AbortController();
    const backoff = new Backoff({
      attemptTimeout: 1000,
      deadline: 5000,
      signal: controller.signal,
    });
    const reason = new Error('shutdown');
    let attemptSignal: AbortSignal | undefined;
    const { error, ms } = await timeRejection(() =>
      backoff.execute(() => {
        attemptSignal = currentAttempt()!.signal;
        // Aborted from outside by a real timer while the attempt runs.
        setTimeout(() => controller.abort(reason), 30);
        return new Promise<never>((_, reject) => {
          attemptSignal!.addEventListener('abort', () => reject(attemptSignal!.reason));
        });
      }),
    );
    expect(error).toBe(reason);
    expect(attemptSignal!.reason).toBe(reason);
    expect(ms).toBeGreaterThanOrEqual(30 - EARLY);
    expect(ms).toBeLessThan(30 + SLACK);
    // The engine's timers are released by the end of the turn in which it settled.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(activeTimeouts()).toBeLessThanOrEqual(baseline);
  });
});

describe('on a saturated event loop', () => {
  /** Keeps the event loop busy for `ms`, as a CPU-bound request handler would. */
  function block(ms: number): void {
    const end = performance.now() + ms;
    while (performance.now() < end) {}
  }

  /** A connected loopback socket pair: what the server writes lands in the client's buffer at once. */
  async function socketPair(): Promise<{ client: net.Socket; peer: net.Socket; close(): void }> {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const accepted = once(server, 'connection');
    const client = net.connect(port, '127.0.0.1');
    await once(client, 'connect');
    const [peer] = (await accepted) as [net.Socket];
    return {
      client,
      peer,
      close() {
        client.destroy();
        peer.destroy();
        server.close();
      },
    };
  }

  it.each([
    ['attemptTimeout', { attemptTimeout: 20, maxTries: 1 }],
    ['deadline', { deadline: 20 }],
  ] as const)(
    'a %s that ran late does not beat a response that had already arrived',
    async (_, options) => {
      const { client, peer, close } = await socketPair();
      try {
        const backoff = new Backoff(options);
        const reply = backoff.execute(
          () =>
            new Promise<string>((resolve) => client.once('data', (data) => resolve(String(data)))),
        );
        peer.write('pong'); // in the client's socket buffer from now on
        block(60); // past the limit before the loop can read it
        await expect(reply).resolves.toBe('pong');
      } finally {
        close();
      }
    },
  );

  it('an attempt that really runs late still times out, in the first turn after the block', async () => {
    const backoff = new Backoff({ attemptTimeout: 20, maxTries: 1 });
    const result = backoff.execute(hang).catch((error: unknown) => ({
      error,
      at: performance.now(),
    }));
    block(60);
    const unblocked = performance.now();
    const { error, at } = (await result) as { error: unknown; at: number };
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    // One timers phase and one check phase later; a busy CI machine may add a little.
    expect(at - unblocked).toBeLessThan(50);
  });
});

describe('on real timers: nothing outlives the executions, nothing starves', () => {
  it('no timer is left a turn after 10,000 bounded executions settle', async () => {
    const before = activeTimeouts();
    const backoff = new Backoff({ attemptTimeout: 1000, deadline: 5000, retryAll: true });
    let n = 0;
    await Promise.all(
      Array.from({ length: 10_000 }, () =>
        backoff.execute(async () => {
          if (++n % 7 === 0) throw new Error('retried once');
          return n;
        }),
      ),
    );
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // (Another test's timer may have ended meanwhile, never one of these.)
    expect(activeTimeouts()).toBeLessThanOrEqual(before);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Immediate')).toEqual([]);
  });

  it('a fast-failing fn with pause 0 lets a 10 ms interval tick and an abort at 20 ms end it', async () => {
    const shutdown = new AbortController();
    const backoff = new Backoff({ deadline: 300, retryAll: true, signal: shutdown.signal });
    let ticks = 0;
    const interval = setInterval(() => ticks++, 10);
    const reason = new Error('shutdown');
    setTimeout(() => shutdown.abort(reason), 20);
    const { error, ms } = await timeRejection(() =>
      backoff.execute(() => {
        throw new Error('fails at once, no I/O');
      }),
    );
    clearInterval(interval);
    expect(error).toBe(reason);
    expect(ms).toBeLessThan(20 + SLACK / 4);
    expect(ticks).toBeGreaterThanOrEqual(1);
  });
});
