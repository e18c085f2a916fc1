/**
 * createFetch against real `node:http` servers on 127.0.0.1 with injected faults: 503 bursts,
 * Retry-After, connection resets, hanging and slow responses, non-idempotent methods, one-shot
 * bodies, per-attempt failover and diagnostics_channel tracing. Real timers; every wait is on an
 * event or a promise, never a sleep.
 *
 * "No socket held" is checked on the server side after each test: no request is still in flight
 * (every response finished, or was closed by the client when an attempt was abandoned or a body
 * cancelled). Idle keep-alive connections that undici pools for reuse are not counted as held.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createFetch,
  type FetchRequestEvent,
  type FetchResponseEvent,
  type FetchRetryEvent,
  HttpStatusError,
} from '../../src/fetch.js';
import { AttemptTimeoutError, Backoff } from '../../src/index.js';

type Handler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  n: number,
  body: string,
) => void;

interface TestServer {
  readonly url: string;
  readonly server: http.Server;
  /** Requests received, with their bodies. */
  readonly requests: {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: string;
  }[];
  /** Requests whose response has neither finished nor been closed. */
  inFlight: number;
  /** Per request, as it arrives: resolves when its response closes, telling whether it had finished. */
  readonly outcomes: Promise<{ finished: boolean }>[];
  readonly sockets: Set<Socket>;
}

const servers: TestServer[] = [];

/** Starts a server on 127.0.0.1:0; `handler` gets the 1-based request number and the request body. */
async function serve(handler: Handler, options: http.ServerOptions = {}): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const state: TestServer = {
    url: '',
    server: undefined as unknown as http.Server,
    requests: [],
    inFlight: 0,
    outcomes: [],
    sockets,
  };
  const server = http.createServer(options, (req, res) => {
    state.inFlight++;
    res.on('close', () => state.inFlight--);
    state.outcomes.push(closed(res));
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      state.requests.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body,
      });
      handler(req, res, state.requests.length, body);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  Object.assign(state, { server, url: `http://127.0.0.1:${port}` });
  servers.push(state);
  return state;
}

/**
 * Nothing is held mid-request: every response the server started has finished or was closed by
 * the client (an aborted attempt, a cancelled body). What may remain are idle keep-alive
 * connections in undici's pool (finished ones, and spare ones undici opened without sending a
 * request, which `closeIdleConnections` does not count as idle); those are closed here so the next
 * test starts clean.
 */
async function expectNoSocketHeld(s: TestServer): Promise<void> {
  expect(s.inFlight).toBe(0);
  const closing = [...s.sockets].map((socket) => once(socket, 'close'));
  s.server.closeAllConnections();
  await Promise.all(closing);
}

/** Resolves when the response of the request it is attached to closes; tells whether it finished. */
function closed(res: http.ServerResponse): Promise<{ finished: boolean }> {
  return new Promise((resolve) =>
    res.on('close', () => resolve({ finished: res.writableFinished })),
  );
}

// Node loads its fetch implementation (undici) lazily, on the first call: do that once here, so the
// short attempt timeouts below measure requests, not module loading.
beforeAll(async () => {
  const s = await serve((_req, res) => res.end());
  await (await fetch(s.url)).arrayBuffer();
});

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.server.closeAllConnections();
    s.server.close();
    await once(s.server, 'close');
  }
});

describe('createFetch against node:http', { timeout: 2_000 }, () => {
  it('retries a burst of 503s, then returns the 200', async () => {
    const s = await serve((_req, res, n) => {
      if (n <= 2) res.writeHead(503).end('busy');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
    });
    const backoff = new Backoff({ pause: 5, maxTries: 5 });
    const http = createFetch(backoff);
    const response = await http(`${s.url}/items`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('hello');
    expect(s.requests.map((r) => r.url)).toEqual(['/items', '/items', '/items']);
    expect(backoff.statistics).toMatchObject({ attempts: 3, retries: 2, successes: 1 });
    await expectNoSocketHeld(s);
  });

  it('returns the last retriable response as is when out of tries', async () => {
    const s = await serve((_req, res) => res.writeHead(503, { 'x-try': 'last' }).end('still busy'));
    const http = createFetch({ pause: 0, maxTries: 3 });
    const response = await http(s.url);
    expect(response.status).toBe(503);
    expect(response.headers.get('x-try')).toBe('last');
    expect(await response.text()).toBe('still busy');
    expect(s.requests).toHaveLength(3);
    await expectNoSocketHeld(s);
  });

  it('honours Retry-After in seconds', async () => {
    const times: number[] = [];
    const s = await serve((_req, res, n) => {
      times.push(performance.now());
      if (n === 1) res.writeHead(503, { 'retry-after': '1' }).end();
      else res.writeHead(200).end('ok');
    });
    const http = createFetch({ pause: 10, deadline: 1_900 });
    const response = await http(s.url);
    expect(response.status).toBe(200);
    expect(times).toHaveLength(2);
    // The pause is at least the hint (a little slack for timer granularity).
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(995);
    await response.arrayBuffer();
    await expectNoSocketHeld(s);
  });

  it('honours Retry-After as an HTTP-date', async () => {
    let retryAt = 0;
    const times: number[] = [];
    const s = await serve((_req, res, n) => {
      times.push(Date.now());
      if (n === 1) {
        // HTTP-dates have whole seconds: the next second boundary at least 200 ms away.
        retryAt = Math.ceil((Date.now() + 200) / 1000) * 1000;
        res.writeHead(429, { 'retry-after': new Date(retryAt).toUTCString() }).end();
      } else res.writeHead(200).end('ok');
    });
    const http = createFetch({ pause: 0, deadline: 1_900 });
    const response = await http(s.url);
    expect(response.status).toBe(200);
    expect(times[1]!).toBeGreaterThanOrEqual(retryAt - 5);
    await response.arrayBuffer();
    await expectNoSocketHeld(s);
  });

  it('returns the response at once when Retry-After passes the deadline', async () => {
    const s = await serve((_req, res) => res.writeHead(503, { 'retry-after': '30' }).end('later'));
    const started = performance.now();
    const http = createFetch({ pause: 10, deadline: 1_000 });
    const response = await http(s.url);
    expect(performance.now() - started).toBeLessThan(500);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('30');
    expect(await response.text()).toBe('later');
    expect(s.requests).toHaveLength(1);
    await expectNoSocketHeld(s);
  });

  it('retries connection resets (fetch TypeError)', async () => {
    const s = await serve((req, res, n) => {
      if (n <= 2) req.socket.destroy();
      else res.writeHead(200).end('ok');
    });
    const http = createFetch({ pause: 0, maxTries: 3 });
    const response = await http(s.url);
    expect(await response.text()).toBe('ok');
    expect(s.requests).toHaveLength(3);
    await expectNoSocketHeld(s);
  });

  it("rejects with fetch's own TypeError when resets persist", async () => {
    const s = await serve((req) => req.socket.destroy());
    const http = createFetch({ pause: 0, maxTries: 2 });
    const error = await http(s.url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('fetch failed');
    expect(s.requests).toHaveLength(2);
    await expectNoSocketHeld(s);
  });

  it('aborts a response that hangs past the attempt timeout, and the server sees it close', async () => {
    let firstClosed: Promise<{ finished: boolean }> | undefined;
    const s = await serve((_req, res, n) => {
      if (n === 1)
        firstClosed = closed(res); // never answers
      else res.writeHead(200).end('second');
    });
    const backoff = new Backoff({ attemptTimeout: 100, deadline: 1_500, maxTries: 3 });
    const http = createFetch(backoff);
    const response = await http(s.url);
    expect(await response.text()).toBe('second');
    await expect(firstClosed).resolves.toEqual({ finished: false });
    expect(backoff.statistics).toMatchObject({ timeouts: 1, attempts: 2 });
    await expectNoSocketHeld(s);
  });

  it('rejects with the AttemptTimeoutError when every attempt hangs', async () => {
    const s = await serve(() => {}); // never answers
    const backoff = new Backoff({ attemptTimeout: 60, maxTries: 2 });
    const http = createFetch(backoff);
    await expect(http(s.url)).rejects.toBeInstanceOf(AttemptTimeoutError);
    expect(backoff.statistics).toMatchObject({ attempts: 2, timeouts: 2 });
    // Every request that reached the server was closed by the client before it was answered.
    expect(s.outcomes.length).toBeGreaterThanOrEqual(1);
    for (const outcome of await Promise.all(s.outcomes))
      expect(outcome).toEqual({ finished: false });
    await expectNoSocketHeld(s);
  });

  it('lets a slow body of the final response finish past the attempt timeout', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.write('a');
      let ticks = 0;
      const timer = setInterval(() => {
        if (++ticks < 4) res.write('b');
        else {
          clearInterval(timer);
          res.end('c');
        }
      }, 40);
    });
    const http = createFetch({ attemptTimeout: 50, maxTries: 1 });
    const response = await http(s.url);
    // The attempt timeout bounds the time to the response headers, not the body read after.
    expect(await response.text()).toBe('abbbc');
    await expectNoSocketHeld(s);
  });

  it('cancels the body of a retried response whose body never ends', async () => {
    let firstClosed: Promise<{ finished: boolean }> | undefined;
    const s = await serve((_req, res, n) => {
      if (n === 1) {
        firstClosed = closed(res);
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.write('partial'); // headers and a first chunk, then nothing
      } else res.writeHead(200).end('ok');
    });
    const http = createFetch({ pause: 0 });
    const response = await http(s.url);
    expect(await response.text()).toBe('ok');
    await expect(firstClosed).resolves.toEqual({ finished: false });
    await expectNoSocketHeld(s);
  });

  it('leaves the server with no open connection once the call is done (Connection: close)', async () => {
    // With `Connection: close` the server ends every connection after its response, so pooled
    // keep-alive sockets cannot hide anything: a connection still open afterwards would be one the
    // client holds, such as a retried response whose endless body was never cancelled.
    // A server that also drops connections which never send a request (undici opens a spare one
    // ahead of need) within a few hundred ms, so the count can really reach zero.
    const timeouts = { connectionsCheckingInterval: 50, headersTimeout: 300, requestTimeout: 300 };
    const s = await serve((_req, res, n) => {
      res.setHeader('connection', 'close');
      if (n === 1) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.write('partial'); // then nothing, ever
      } else if (n === 2) {
        res.writeHead(502);
        const tick = setInterval(() => res.write('.'), 5); // an endless body
        res.on('close', () => clearInterval(tick));
      } else res.writeHead(200).end('ok');
    }, timeouts);
    const used = new Set<Socket>();
    s.server.on('request', (req: http.IncomingMessage) => used.add(req.socket));
    const http = createFetch({ pause: 0 });
    const response = await http(s.url);
    expect(await response.text()).toBe('ok');
    expect(s.requests).toHaveLength(3);
    expect(used.size).toBe(3);
    // Every connection that carried a request closes by itself (no closeAllConnections here).
    await Promise.all([...used].map((socket) => (socket.destroyed ? null : once(socket, 'close'))));
    expect(s.inFlight).toBe(0);
    // What may remain is a spare connection undici opened ahead of need, never used for a request;
    // the server's headers timeout closes it. Then the server-side connection count is zero.
    for (const socket of s.sockets) expect(used.has(socket)).toBe(false);
    // (The server destroys it with a timeout error, so wait for 'close' alone, not events.once.)
    await Promise.all(
      [...s.sockets].map((socket) => new Promise((resolve) => socket.on('close', resolve))),
    );
    expect(s.sockets.size).toBe(0);
  });

  it("cancels everything on the caller's signal, mid-request", async () => {
    let reached!: () => void;
    const requestReached = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let firstClosed: Promise<{ finished: boolean }> | undefined;
    const s = await serve((_req, res) => {
      firstClosed = closed(res);
      reached();
    });
    const controller = new AbortController();
    const http = createFetch({ attemptTimeout: 1_000 });
    const pending = http(s.url, { signal: controller.signal });
    await requestReached;
    const reason = new Error('client went away');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect(firstClosed).resolves.toEqual({ finished: false });
    await expectNoSocketHeld(s);
  });

  it("cancels the returned response's body on the caller's signal", async () => {
    let bodyClosed: Promise<{ finished: boolean }> | undefined;
    const s = await serve((_req, res) => {
      bodyClosed = closed(res);
      res.writeHead(200);
      res.write('start');
    });
    const controller = new AbortController();
    const http = createFetch({});
    const response = await http(s.url, { signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    const reason = new Error('stop reading');
    controller.abort(reason);
    await expect(reader.read()).rejects.toBe(reason);
    await expect(bodyClosed).resolves.toEqual({ finished: false });
    await expectNoSocketHeld(s);
  });

  it('does not retry a POST by default', async () => {
    const s = await serve((_req, res) => res.writeHead(503).end('busy'));
    const http = createFetch({ pause: 0 });
    const response = await http(s.url, { method: 'POST', body: 'payload' });
    expect(response.status).toBe(503);
    await response.arrayBuffer();
    expect(s.requests).toHaveLength(1);
    await expectNoSocketHeld(s);
  });

  it('does not retry a POST after a connection reset either', async () => {
    const s = await serve((req) => req.socket.destroy());
    const http = createFetch({ pause: 0 });
    await expect(http(s.url, { method: 'POST', body: 'x' })).rejects.toThrow('fetch failed');
    expect(s.requests).toHaveLength(1);
    await expectNoSocketHeld(s);
  });

  it('retries a POST that carries an Idempotency-Key, replaying its body', async () => {
    const s = await serve((_req, res, n) => {
      if (n === 1) res.writeHead(503).end();
      else res.writeHead(201).end('created');
    });
    const http = createFetch({ pause: 0 });
    const response = await http(s.url, {
      method: 'POST',
      headers: { 'idempotency-key': 'k-123', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x' }),
    });
    expect(response.status).toBe(201);
    await response.arrayBuffer();
    expect(s.requests.map((r) => [r.method, r.headers['idempotency-key'], r.body])).toEqual([
      ['POST', 'k-123', '{"name":"x"}'],
      ['POST', 'k-123', '{"name":"x"}'],
    ]);
    await expectNoSocketHeld(s);
  });

  it('rejects a one-shot stream body before sending anything', async () => {
    const s = await serve((_req, res) => res.writeHead(200).end());
    const http = createFetch({ pause: 0 });
    const body = Readable.from(['a', 'b']);
    await expect(
      http(s.url, { method: 'PUT', body: body as unknown as ReadableStream, duplex: 'half' }),
    ).rejects.toThrow(/one-shot stream.*bufferBody: true/);
    const web = new ReadableStream({ start: (c) => c.close() });
    await expect(http(s.url, { method: 'PUT', body: web, duplex: 'half' })).rejects.toThrow(
      TypeError,
    );
    expect(s.requests).toHaveLength(0);
  });

  it('buffers a one-shot stream body once with bufferBody: true', async () => {
    const s = await serve((_req, res, n) => {
      if (n === 1) res.writeHead(503).end();
      else res.writeHead(200).end('stored');
    });
    const http = createFetch({ pause: 0, bufferBody: true });
    const body = Readable.from([Buffer.from('chunk-1,'), Buffer.from('chunk-2')]);
    const response = await http(s.url, {
      method: 'PUT',
      body: body as unknown as ReadableStream,
      duplex: 'half',
    });
    expect(await response.text()).toBe('stored');
    expect(s.requests.map((r) => r.body)).toEqual(['chunk-1,chunk-2', 'chunk-1,chunk-2']);
    await expectNoSocketHeld(s);
  });

  it('sends a stream body once, unbuffered, when the request is not retried', async () => {
    const s = await serve((_req, res) => res.writeHead(200).end('ok'));
    const http = createFetch({ pause: 0 });
    const body = Readable.from([Buffer.from('streamed')]);
    const response = await http(s.url, {
      method: 'POST',
      body: body as unknown as ReadableStream,
      duplex: 'half',
    });
    expect(await response.text()).toBe('ok');
    expect(s.requests.map((r) => r.body)).toEqual(['streamed']);
    await expectNoSocketHeld(s);
  });

  it('fails over to another URL on later attempts', async () => {
    const primary = await serve((req) => req.socket.destroy());
    const backup = await serve((req, res) => res.writeHead(200).end(`backup ${req.url}`));
    const http = createFetch({
      pause: 0,
      maxTries: 3,
      attempts: [{}, { url: `${backup.url}/v1/items?x=1` }],
    });
    const response = await http(`${primary.url}/v1/items?x=1`);
    expect(await response.text()).toBe('backup /v1/items?x=1');
    expect(primary.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(1);
    await expectNoSocketHeld(primary);
    await expectNoSocketHeld(backup);
  });

  it('rotates a header per attempt with the function form', async () => {
    const s = await serve((req, res) => {
      if (req.headers.authorization === 'Bearer token-2') res.writeHead(200).end('ok');
      else res.writeHead(503).end();
    });
    const http = createFetch({
      pause: 0,
      attempts: (attempt) => ({ headers: { authorization: `Bearer token-${attempt}` } }),
    });
    const response = await http(s.url, { headers: { accept: 'text/plain' } });
    expect(await response.text()).toBe('ok');
    expect(s.requests.map((r) => [r.headers.authorization, r.headers.accept])).toEqual([
      ['Bearer token-1', 'text/plain'],
      ['Bearer token-2', 'text/plain'],
    ]);
    await expectNoSocketHeld(s);
  });

  it('publishes request, response and retry events on diagnostics_channel', async () => {
    const s = await serve((_req, res, n) => {
      if (n === 1) res.writeHead(503, { 'retry-after': '0' }).end();
      else res.writeHead(200).end('ok');
    });
    const seen: string[] = [];
    const onRequest = (message: unknown) => {
      const { attempt, request } = message as FetchRequestEvent;
      seen.push(`request ${attempt} ${request.method} ${new URL(request.url).pathname}`);
    };
    const onResponse = (message: unknown) => {
      const { attempt, response, willRetry } = message as FetchResponseEvent;
      seen.push(`response ${attempt} ${response.status} willRetry=${willRetry}`);
    };
    const onRetry = (message: unknown) => {
      const { attempt, delay, response, request, error } = message as FetchRetryEvent;
      seen.push(
        `retry ${attempt} delay=${delay} ${response?.status} ${request?.method} ${error instanceof HttpStatusError}`,
      );
    };
    diagnosticsChannel.subscribe('asyncbackoff:fetch:request', onRequest);
    diagnosticsChannel.subscribe('asyncbackoff:fetch:response', onResponse);
    diagnosticsChannel.subscribe('asyncbackoff:fetch:retry', onRetry);
    try {
      const http = createFetch({ pause: 0 });
      const response = await http(`${s.url}/traced`);
      expect(await response.text()).toBe('ok');
    } finally {
      diagnosticsChannel.unsubscribe('asyncbackoff:fetch:request', onRequest);
      diagnosticsChannel.unsubscribe('asyncbackoff:fetch:response', onResponse);
      diagnosticsChannel.unsubscribe('asyncbackoff:fetch:retry', onRetry);
    }
    expect(seen).toEqual([
      'request 1 GET /traced',
      'response 1 503 willRetry=true',
      'retry 1 delay=0 503 GET true',
      'request 2 GET /traced',
      'response 2 200 willRetry=false',
    ]);
    await expectNoSocketHeld(s);
  });

  it('rejects with HttpStatusError on a final non-ok status with throwOnStatus', async () => {
    const s = await serve((_req, res) => res.writeHead(404).end('nope'));
    const http = createFetch({ pause: 0, throwOnStatus: true });
    const error = (await http(s.url).catch((e: unknown) => e)) as HttpStatusError;
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error.status).toBe(404);
    expect(await error.response.text()).toBe('nope');
    expect(s.requests).toHaveLength(1);
    await expectNoSocketHeld(s);
  });
});
