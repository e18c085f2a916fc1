/**
 * A flaky "database" behind HTTP, running in this very process on 127.0.0.1.
 *
 * `GET /rows/<id>?attempt=<n>` answers, depending on a seeded dice roll:
 * - quickly with a row (most requests), after a few ms of latency jitter;
 * - with `503 Service Unavailable` (a transient error: overloaded, failing over, ...);
 * - slowly, after 300-800 ms (a lock wait, a slow replica), far longer than the attempt timeout;
 * - never (a hung connection): only the client giving up ends such a request.
 *
 * The server notices when a client abandons a request (the connection closes before the response
 * was sent), stops the work it was doing for it, and counts it as "aborted". That is how the demo
 * shows that asyncbackoff cancels abandoned attempts instead of leaving them running.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * mulberry32: a tiny, fast, seeded PRNG (uniform in [0, 1)). Good enough for fault injection and
 * reproducible: the same seed gives the same sequence on every machine.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How often each fault happens, as probabilities; the rest are fast successes. */
export interface FaultProfile {
  /** A fast `503`. */
  readonly error: number;
  /** A 200 after `slowMs`. */
  readonly slow: number;
  /** No answer at all. */
  readonly hang: number;
  /** Latency of a slow answer: [min, max] ms. */
  readonly slowMs: readonly [number, number];
  /** Latency of a normal answer (and of a 503): [min, max] ms. */
  readonly jitterMs: readonly [number, number];
}

/** What the server saw; reset by {@link FlakyServer.drain}. */
export interface ServerCounters {
  /** Requests received. */
  requests: number;
  /** Fast 200s sent. */
  ok: number;
  /** 503s sent. */
  errors: number;
  /** Requests that rolled "slow" (answered late, or aborted by the client first). */
  slow: number;
  /** Requests that rolled "hang" (only ever ended by the client). */
  hung: number;
  /** Requests the client abandoned before the response was sent; their work was cancelled. */
  aborted: number;
  /** Requests still being worked on when the counters were taken (should be 0). */
  inFlight: number;
}

export interface FlakyServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /**
   * Waits (up to `maxWaitMs`) until no request is in flight, then returns the counters since the
   * last drain and resets them. Aborts travel over the network, so the server may see the last
   * ones a moment after the client gave up.
   */
  drain(maxWaitMs?: number): Promise<ServerCounters>;
  /** Stops listening and closes every connection, idle keep-alive ones included. */
  close(): Promise<void>;
}

type Fate = 'ok' | 'error' | 'slow' | 'hang';

/**
 * The dice for one request. The roll is keyed by (seed, row id, attempt number), so attempt 1 of
 * row 1234 meets the same fate in the run with asyncbackoff and in the run without it: the two
 * runs are compared on identical luck. A retry (attempt 2, 3, ...) rolls again, like a real retry.
 */
function diceFor(seed: number, id: number, attempt: number): () => number {
  const random = mulberry32(seed ^ Math.imul(id + 1, 0x9e3779b1) ^ Math.imul(attempt, 0x85ebca6b));
  random(); // discard the first draw: nearby seeds should not start alike
  return random;
}

function between(random: () => number, [min, max]: readonly [number, number]): number {
  return min + random() * (max - min);
}

export async function startFlakyServer(seed: number, faults: FaultProfile): Promise<FlakyServer> {
  const emptyCounters = (): ServerCounters => ({
    requests: 0,
    ok: 0,
    errors: 0,
    slow: 0,
    hung: 0,
    aborted: 0,
    inFlight: 0,
  });
  let counters = emptyCounters();
  let inFlight = 0;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    counters.requests++;
    inFlight++;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const id = Number(url.pathname.split('/')[2] ?? 0);
    const attempt = Number(url.searchParams.get('attempt') ?? 1);

    const dice = diceFor(seed, id, attempt);
    const roll = dice();
    const fate: Fate =
      roll < faults.error
        ? 'error'
        : roll < faults.error + faults.slow
          ? 'slow'
          : roll < faults.error + faults.slow + faults.hang
            ? 'hang'
            : 'ok';

    // The "work" for this request: a timer standing in for a query.
    let work: NodeJS.Timeout | undefined;

    // 'close' on the response fires when the exchange is over, whatever happened. If the response
    // was not fully sent by then, the client went away: cancel the work, count the abort.
    // (req's 'close' fires at the same moment on Node 20, but its meaning has changed between Node
    // versions; the response's 'close' plus `writableFinished` is the unambiguous test.)
    res.on('close', () => {
      inFlight--;
      if (!res.writableFinished) {
        counters.aborted++;
        clearTimeout(work);
      }
    });

    switch (fate) {
      case 'hang':
        counters.hung++;
        return; // never answer
      case 'slow':
        counters.slow++;
        work = setTimeout(() => reply(res, 200, { id, attempt }), between(dice, faults.slowMs));
        return;
      case 'error':
        work = setTimeout(
          () => {
            counters.errors++;
            reply(res, 503, { error: 'service unavailable, try again' });
          },
          between(dice, faults.jitterMs),
        );
        return;
      case 'ok':
        work = setTimeout(
          () => {
            counters.ok++;
            reply(res, 200, { id, attempt });
          },
          between(dice, faults.jitterMs),
        );
        return;
    }
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Port 0: the OS picks a free port. 127.0.0.1 only: nothing outside this machine can connect.
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    async drain(maxWaitMs = 2000) {
      for (let waited = 0; inFlight > 0 && waited < maxWaitMs; waited += 10) await sleep(10);
      const taken = { ...counters, inFlight };
      counters = emptyCounters();
      return taken;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        // close() stops accepting connections and calls back once all are gone;
        // closeAllConnections() ends them now, idle keep-alive connections included.
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}
