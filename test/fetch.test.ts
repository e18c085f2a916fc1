/**
 * createFetch without sockets: option validation, which requests are retried, bodies, hooks and
 * the error it throws, with an injected `fetch`. Real loopback servers are in
 * test/integration/fetch.test.ts.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import FakeTimers from '@sinonjs/fake-timers';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  createFetch,
  type FetchResponseEvent,
  HttpStatusError,
  type RetryingFetch,
} from '../src/fetch.js';
import { AttemptTimeoutError, Backoff, type GiveupEvent } from '../src/index.js';

/** A scripted fetch: each call takes the next step (a status, an error to throw, or a function). */
function script(...steps: (number | Error | ((request: Request) => Promise<Response>))[]) {
  const requests: Request[] = [];
  const bodies: string[] = [];
  const fetch = vi.fn(async (request: Request): Promise<Response> => {
    requests.push(request);
    bodies.push(request.body === null ? '' : await request.clone().text());
    const step = steps[Math.min(requests.length, steps.length) - 1]!;
    if (step instanceof Error) throw step;
    if (typeof step === 'function') return step(request);
    return new Response(step === 204 ? null : `status ${step}`, { status: step });
  });
  return { fetch, requests, bodies };
}

/** Pauses of 0 so nothing waits on timers (full jitter of a random source that returns 0). */
const fast = { random: () => 0 } as const;

describe('createFetch options', () => {
  it('returns a function with the signature of fetch', () => {
    const http = createFetch();
    expectTypeOf(http).toEqualTypeOf<RetryingFetch>();
    expectTypeOf(http).toMatchTypeOf<typeof fetch>();
    expect(typeof http).toBe('function');
  });

  it.each([
    [{ statuses: [503, 1000] }, RangeError, "'statuses[1]' must be an HTTP status"],
    [{ statuses: [503.5] }, RangeError, "'statuses[0]'"],
    [
      { statuses: '503' },
      TypeError,
      "'statuses' must be an array of HTTP statuses or a function, got '503'",
    ],
    [{ methods: 'GET' }, TypeError, "'methods' must be an array"],
    [
      { methods: ['GET', 'BAD METHOD'] },
      TypeError,
      "'methods[1]' must be an HTTP method name, got 'BAD METHOD'",
    ],
    [{ retryNonIdempotent: 1 }, TypeError, "'retryNonIdempotent' must be a boolean, got 1"],
    [{ bufferBody: 'yes' }, TypeError, "'bufferBody' must be a boolean"],
    [{ throwOnStatus: null }, TypeError, "'throwOnStatus' must be a boolean, got null"],
    [{ attempts: [] }, RangeError, "'attempts' must not be an empty array"],
    [{ attempts: [{}, 'x'] }, TypeError, "'attempts[1]' must be an object"],
    [
      { attempts: 3 },
      TypeError,
      "'attempts' must be an array of request overrides or a function, got 3",
    ],
    [{ onRequest: {} }, TypeError, "'onRequest' must be a function"],
    [{ onResponse: 1 }, TypeError, "'onResponse' must be a function"],
    [{ fetch: 'fetch' }, TypeError, "'fetch' must be a function"],
  ])('rejects %j', (options, type, message) => {
    expect(() => createFetch(options as never)).toThrow(type);
    expect(() => createFetch(options as never)).toThrow(message);
    // The same checks apply in the Backoff form.
    expect(() => createFetch(new Backoff(), options as never)).toThrow(message);
  });

  it('validates the Backoff options of the options form like Backoff does', () => {
    expect(() => createFetch({ maxTries: 0 })).toThrow(RangeError);
    expect(() => createFetch({ maxTries: 0 })).toThrow(/^createFetch: 'maxTries'/);
    expect(() => createFetch({ attemptTimeout: -1 })).toThrow("'attemptTimeout'");
    expect(() => createFetch({ foo: 1 } as never)).toThrow("unknown option 'foo'");
  });

  it('rejects policy options next to a Backoff, and stray arguments', () => {
    expect(() => createFetch(new Backoff(), { maxTries: 2 } as never)).toThrow(
      "createFetch: unknown option 'maxTries' (with a Backoff given, set policy options on the Backoff)",
    );
    expect(() => createFetch({} as never, {} as never)).toThrow(
      'a second argument is only accepted after a Backoff',
    );
    expect(() => createFetch(42 as never)).toThrow(
      'expected a Backoff or an options object, got 42',
    );
    expect(() => createFetch(new Backoff(), 'x' as never)).toThrow('options must be an object');
    // An array is not an options object (it used to pass, having no unknown keys).
    expect(() => createFetch(new Backoff(), [] as never)).toThrow(
      new TypeError('createFetch: options must be an object, got an array'),
    );
  });

  it('rejects context: false, in the options or on the Backoff: the request needs the attempt signal', () => {
    expect(() => createFetch({ context: false })).toThrow(TypeError);
    expect(() => createFetch({ context: false })).toThrow("'context: false' is not supported");
    expect(() => createFetch(new Backoff({ context: false }))).toThrow(
      "'context: false' is not supported",
    );
  });

  it('rejects a Backoff whose hooks are method names', () => {
    expect(() => createFetch(new Backoff({ onRetry: 'log' }))).toThrow(
      "the backoff's 'onRetry' names a method, got 'log' (a string)",
    );
  });

  it('defaults to 3 tries', async () => {
    const { fetch } = script(503);
    const response = await createFetch({ ...fast, fetch })('http://api.test/');
    expect(response.status).toBe(503);
    expect(fetch).toHaveBeenCalledTimes(3);
  });
});

describe('what is retried', () => {
  it.each(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'put'])('retries %s', async (method) => {
    const { fetch } = script(503, 200);
    const response = await createFetch({ ...fast, fetch })('http://api.test/', { method });
    expect(response.status).toBe(200);
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it.each(['POST', 'PATCH'])('sends %s once by default', async (method) => {
    const { fetch } = script(503, 200);
    const response = await createFetch({ ...fast, fetch })('http://api.test/', { method });
    expect(response.status).toBe(503);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('sends POST once even on a network error', async () => {
    const error = new TypeError('fetch failed');
    const { fetch } = script(error, 200);
    await expect(
      createFetch({ ...fast, fetch })('http://api.test/', { method: 'POST' }),
    ).rejects.toBe(error);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('retries POST with retryNonIdempotent, or with an Idempotency-Key header', async () => {
    const a = script(503, 200);
    await createFetch({ ...fast, fetch: a.fetch, retryNonIdempotent: true })('http://api.test/', {
      method: 'POST',
    });
    expect(a.fetch).toHaveBeenCalledTimes(2);

    const b = script(503, 200);
    await createFetch({ ...fast, fetch: b.fetch })('http://api.test/', {
      method: 'POST',
      headers: { 'Idempotency-Key': 'abc' },
    });
    expect(b.fetch).toHaveBeenCalledTimes(2);

    const c = script(503, 200);
    const request = new Request('http://api.test/', {
      method: 'PATCH',
      headers: { 'idempotency-key': 'abc' },
    });
    await createFetch({ ...fast, fetch: c.fetch })(request);
    expect(c.fetch).toHaveBeenCalledTimes(2);
  });

  it('takes the set of retried methods from `methods`', async () => {
    const { fetch } = script(503, 200);
    const http = createFetch({ ...fast, fetch, methods: ['GET', 'POST'] });
    await http('http://api.test/', { method: 'POST' });
    expect(fetch).toHaveBeenCalledTimes(2);
    await http('http://api.test/', { method: 'PUT' });
    expect(fetch).toHaveBeenCalledTimes(3);
  });

  it('retries the statuses listed, or those a predicate picks', async () => {
    const a = script(404, 200);
    expect((await createFetch({ ...fast, fetch: a.fetch })('http://x.test/')).status).toBe(404);
    const b = script(404, 200);
    expect(
      (await createFetch({ ...fast, fetch: b.fetch, statuses: [404] })('http://x.test/')).status,
    ).toBe(200);
    const c = script(418, 200);
    const statuses = vi.fn((response: Response) => response.status === 418);
    expect(
      (await createFetch({ ...fast, fetch: c.fetch, statuses })('http://x.test/')).status,
    ).toBe(200);
    expect(statuses).toHaveBeenCalledTimes(2);
  });

  it('awaits an async statuses predicate (it may read the body), in both forms', async () => {
    for (const form of ['options', 'backoff'] as const) {
      const { fetch } = script(503, 503, 200, 200);
      const seen: number[] = [];
      const statuses = async (response: Response) => {
        seen.push(response.status);
        const text = await response.clone().text();
        return text.length >= 0 && response.status === 503;
      };
      const http =
        form === 'options'
          ? createFetch({ ...fast, maxTries: 5, fetch, statuses })
          : createFetch(new Backoff({ maxTries: 5, pause: 0 }), { fetch, statuses });
      expect((await http('http://x.test/')).status).toBe(200);
      expect(seen).toEqual([503, 503, 200]);
      expect(fetch).toHaveBeenCalledTimes(3);
    }
  });

  it('an async statuses predicate that says no, or rejects, is not a retry', async () => {
    const no = script(503, 200);
    const http = createFetch({ ...fast, fetch: no.fetch, statuses: async () => false });
    expect((await http('http://x.test/')).status).toBe(503);
    expect(no.fetch).toHaveBeenCalledTimes(1);

    const broken = script(503, 200);
    const failure = new Error('predicate broke');
    const failing = createFetch({
      ...fast,
      fetch: broken.fetch,
      statuses: () => Promise.reject(failure),
    });
    await expect(failing('http://x.test/')).rejects.toBe(failure);
    expect(broken.fetch).toHaveBeenCalledTimes(1);
  });

  it("retries fetch's TypeError but not a TypeError from elsewhere", async () => {
    const { fetch } = script(new TypeError('fetch failed'), 200);
    expect((await createFetch({ ...fast, fetch })('http://x.test/')).status).toBe(200);

    const attempts = vi.fn((attempt: number) => {
      if (attempt === 1) throw new TypeError('bad override');
      return undefined;
    });
    const other = script(200);
    await expect(
      createFetch({ ...fast, fetch: other.fetch, attempts })('http://x.test/'),
    ).rejects.toThrow('bad override');
    expect(attempts).toHaveBeenCalledTimes(1);
    expect(other.fetch).not.toHaveBeenCalled();
  });

  it('does not retry other errors unless the backoff lists them', async () => {
    class Flaky extends Error {}
    const a = script(new Flaky('x'), 200);
    await expect(createFetch({ ...fast, fetch: a.fetch })('http://x.test/')).rejects.toBeInstanceOf(
      Flaky,
    );
    const b = script(new Flaky('x'), 200);
    const http = createFetch({ ...fast, fetch: b.fetch, exceptions: [Flaky] });
    expect((await http('http://x.test/')).status).toBe(200);
  });
});

describe('bodies', () => {
  it('replays a string body on every attempt', async () => {
    const { fetch, bodies } = script(503, 200);
    await createFetch({ ...fast, fetch })('http://x.test/', { method: 'PUT', body: 'payload' });
    expect(bodies).toEqual(['payload', 'payload']);
  });

  it('rejects the body of a Request object on a retriable request, unless bufferBody', async () => {
    const a = script(503, 200);
    const request = () => new Request('http://x.test/', { method: 'PUT', body: 'from-request' });
    await expect(createFetch({ ...fast, fetch: a.fetch })(request())).rejects.toThrow(
      /body of a Request object.*bufferBody: true/,
    );
    expect(a.fetch).not.toHaveBeenCalled();

    const b = script(503, 200);
    const response = await createFetch({ ...fast, fetch: b.fetch, bufferBody: true })(request());
    expect(response.status).toBe(200);
    expect(b.bodies).toEqual(['from-request', 'from-request']);
    expect(b.requests.map((r) => r.method)).toEqual(['PUT', 'PUT']);
  });

  it('rejects a generator body (a one-shot iterator)', async () => {
    const { fetch } = script(200);
    function* chunks() {
      yield new TextEncoder().encode('x');
    }
    await expect(
      createFetch({ ...fast, fetch })('http://x.test/', {
        method: 'PUT',
        body: chunks() as never,
      }),
    ).rejects.toThrow(TypeError);
    expect(fetch).not.toHaveBeenCalled();
  });

  it('rejects an async-iterable body on a retriable request, and replays it with bufferBody', async () => {
    async function* chunks() {
      yield new TextEncoder().encode('stream');
      yield new TextEncoder().encode('ed');
    }
    const a = script(503, 200);
    await expect(
      createFetch({ ...fast, fetch: a.fetch })('http://x.test/', {
        method: 'PUT',
        body: chunks() as never,
        duplex: 'half',
      }),
    ).rejects.toThrow(/request body is a one-shot stream.*bufferBody: true/);
    expect(a.fetch).not.toHaveBeenCalled();

    const b = script(503, 200);
    const response = await createFetch({ ...fast, fetch: b.fetch, bufferBody: true })(
      'http://x.test/',
      { method: 'PUT', body: chunks() as never, duplex: 'half' },
    );
    expect(response.status).toBe(200);
    expect(b.bodies).toEqual(['streamed', 'streamed']);
  });

  it('accepts a one-shot body when only one try is allowed', async () => {
    const { fetch, bodies } = script(200);
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('once'));
        controller.close();
      },
    });
    await createFetch({ ...fast, fetch, maxTries: 1 })('http://x.test/', {
      method: 'PUT',
      body,
      duplex: 'half',
    });
    expect(bodies).toEqual(['once']);
  });

  it('cancels the body of a retried response and keeps the final one', async () => {
    const cancelled: number[] = [];
    const streaming = (status: number) => async () =>
      new Response(
        new ReadableStream({
          pull(controller) {
            controller.enqueue(new TextEncoder().encode(`chunk of ${status}`));
          },
          cancel() {
            cancelled.push(status);
          },
        }),
        { status },
      );
    const { fetch } = script(streaming(503), streaming(502), async () => new Response('done'));
    const response = await createFetch({ ...fast, fetch })('http://x.test/');
    expect(cancelled).toEqual([503, 502]);
    expect(await response.text()).toBe('done');
  });
});

describe('per-attempt requests', () => {
  it('applies array overrides by attempt, repeating the last; headers merge', async () => {
    const { fetch, requests } = script(503, 503, 503, 200);
    await createFetch({
      ...fast,
      fetch,
      maxTries: 4,
      attempts: [
        {},
        { url: 'http://replica.test/v2/items', headers: { 'x-replica': '1' } },
        { url: '/fallback?page=2', method: 'HEAD' },
      ],
    })('http://primary.test/v1/items', { headers: { accept: 'application/json' } });
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET http://primary.test/v1/items',
      'GET http://replica.test/v2/items',
      'HEAD http://primary.test/fallback?page=2',
      'HEAD http://primary.test/fallback?page=2',
    ]);
    expect(requests.map((r) => [r.headers.get('accept'), r.headers.get('x-replica')])).toEqual([
      ['application/json', null],
      ['application/json', '1'],
      ['application/json', null],
      ['application/json', null],
    ]);
  });

  it('takes a Request, overrides or nothing from the function form', async () => {
    const { fetch, requests } = script(503, 503, 200);
    await createFetch({
      ...fast,
      fetch,
      attempts: (attempt, request) => {
        if (attempt === 1) {
          request.headers.set('x-attempt', '1');
          return undefined;
        }
        if (attempt === 2) return new Request('http://other.test/', request);
        return { headers: { 'x-attempt': String(attempt) } };
      },
    })('http://x.test/');
    expect(requests.map((r) => `${r.url} ${r.headers.get('x-attempt')}`)).toEqual([
      'http://x.test/ 1',
      'http://other.test/ null',
      'http://x.test/ 3',
    ]);
    // Every attempt's request carries that attempt's signal.
    expect(requests.every((r) => r.signal instanceof AbortSignal)).toBe(true);
  });

  it('sends the very request the function form returns when it is the one it was given', async () => {
    const seen: Request[] = [];
    const { fetch, requests } = script(200);
    await createFetch({
      ...fast,
      fetch,
      attempts: (_attempt, request) => {
        seen.push(request);
        return request;
      },
    })('http://x.test/');
    expect(requests).toEqual(seen);
    expect(requests[0]).toBe(seen[0]);
  });

  it('rejects a function that returns something else', async () => {
    const { fetch } = script(200);
    await expect(
      createFetch({ ...fast, fetch, attempts: () => 'http://x.test' as never })('http://x.test/'),
    ).rejects.toThrow("'attempts' must return a Request, request overrides or undefined");
  });
});

describe('hooks and results', () => {
  it('calls onRequest and onResponse per attempt, with willRetry', async () => {
    const { fetch, requests } = script(503, 200);
    const events: string[] = [];
    const http = createFetch({
      ...fast,
      fetch,
      onRequest: ({ attempt, request }) => {
        request.headers.set('x-trace', `t-${attempt}`);
        events.push(`request ${attempt}`);
      },
      onResponse: async ({ attempt, response, willRetry }: FetchResponseEvent) => {
        events.push(`response ${attempt} ${response.status} ${willRetry}`);
      },
      onRetry: ({ attempt, delay }) => {
        events.push(`retry ${attempt} ${delay}`);
      },
    });
    await http('http://x.test/');
    expect(events).toEqual([
      'request 1',
      'response 1 503 true',
      'retry 1 0',
      'request 2',
      'response 2 200 false',
    ]);
    expect(requests.map((r) => r.headers.get('x-trace'))).toEqual(['t-1', 't-2']);
  });

  it('rejects with an HttpStatusError with throwOnStatus, the very one the policy saw', async () => {
    const { fetch } = script(503);
    const onGiveup = vi.fn<(event: GiveupEvent) => void>();
    const http = createFetch({ ...fast, fetch, maxTries: 2, throwOnStatus: true, onGiveup });
    const error = (await http('http://x.test/a').catch((e: unknown) => e)) as HttpStatusError;
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error).toMatchObject({ status: 503, attempt: 2, code: 'ASYNCBACKOFF_HTTP_STATUS' });
    expect(error.message).toBe('HTTP 503 (attempt 2)');
    expect(await error.response.text()).toBe('status 503');
    expect(onGiveup.mock.calls[0]![0]).toMatchObject({ reason: 'max-tries', error });
  });

  it('rejects a final non-retriable 4xx with throwOnStatus too', async () => {
    const { fetch } = script(404);
    const error = await createFetch({ ...fast, fetch, throwOnStatus: true })(
      'http://x.test/',
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'HttpStatusError', status: 404, attempt: 1 });
  });

  it('gives the backoff giveup the HttpStatusError', async () => {
    const { fetch } = script(501, 200);
    const giveup = (error: unknown) => error instanceof HttpStatusError && error.status === 501;
    const response = await createFetch({ ...fast, fetch, giveup })('http://x.test/');
    expect(response.status).toBe(501);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('names the origin and path of the response URL in the error, never its query or credentials', async () => {
    const { fetch } = script(async () => {
      const response = new Response('nope', { status: 404, statusText: 'Not Found' });
      Object.defineProperty(response, 'url', {
        value: 'https://user:secret@api.test/v1/items?token=abc',
      });
      return response;
    });
    const error = await createFetch({ ...fast, fetch, throwOnStatus: true })(
      'https://api.test/v1/items?token=abc',
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe(
      'HTTP 404 Not Found from https://api.test/v1/items (attempt 1)',
    );
  });

  it("takes another fetch implementation's response (duck-typed), retrying its statuses", async () => {
    const foreign = (status: number, url: string) => ({
      status,
      statusText: '',
      ok: status < 300,
      url,
      headers: new Headers(),
      body: null,
      bodyUsed: false,
    });
    const { fetch } = script(
      async () => foreign(503, 'not a url') as unknown as Response,
      async () => foreign(418, 'not a url') as unknown as Response,
    );
    const error = await createFetch({ ...fast, fetch, throwOnStatus: true })(
      'http://x.test/',
    ).catch((e: unknown) => e);
    expect(fetch).toHaveBeenCalledTimes(2);
    // An unparsable URL is left out of the message.
    expect(error).toMatchObject({ status: 418, attempt: 2, message: 'HTTP 418 (attempt 2)' });
  });

  it('rejects, without retrying, when the fetch resolves with something that is not a response', async () => {
    const { fetch } = script(async () => ({ status: '200' }) as unknown as Response);
    await expect(createFetch({ ...fast, fetch })('http://x.test/')).rejects.toThrow(
      "createFetch: 'fetch' must resolve with a Response, got an object",
    );
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('an onResponse that throws on the final response rejects the call and releases the body', async () => {
    let cancelled = false;
    const { fetch } = script(
      async () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              controller.enqueue(new TextEncoder().encode('data'));
            },
            cancel() {
              cancelled = true;
            },
          }),
        ),
    );
    const broken = new Error('logger down');
    const http = createFetch({
      ...fast,
      fetch,
      onResponse: () => {
        throw broken;
      },
    });
    await expect(http('http://x.test/')).rejects.toBe(broken);
    expect(cancelled).toBe(true);
  });

  it('tells onResponse once about a Response object the fetch hands back on every attempt, and rejects with its HttpStatusError', async () => {
    const cached = new Response(null, { status: 503 });
    const { fetch } = script(async () => cached);
    const events: boolean[] = [];
    const error = await createFetch({
      ...fast,
      fetch,
      onResponse: ({ willRetry }) => {
        events.push(willRetry);
      },
    })('http://x.test/').catch((e: unknown) => e);
    // Its body was released by the first retry, so it is not handed back: its HttpStatusError is.
    expect(error).toMatchObject({ name: 'HttpStatusError', status: 503, attempt: 3 });
    expect((error as HttpStatusError).response).toBe(cached);
    expect(fetch).toHaveBeenCalledTimes(3);
    expect(events).toEqual([true]);
  });

  it("an HttpStatusError a hook throws is retried like a status; onResponse hears only of the fetch's responses", async () => {
    const { fetch } = script(200);
    let released = false;
    const upstream = new Response(
      new ReadableStream({
        pull(controller) {
          controller.enqueue(new TextEncoder().encode('token service down'));
        },
        cancel() {
          released = true;
        },
      }),
      { status: 503 },
    );
    const events: string[] = [];
    const response = await createFetch({
      ...fast,
      fetch,
      onRequest: ({ attempt }) => {
        if (attempt === 1) throw new HttpStatusError(upstream, 1);
      },
      onResponse: ({ attempt, response: r }) => {
        events.push(`${attempt} ${r.status}`);
      },
    })('http://x.test/');
    expect(response.status).toBe(200);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(events).toEqual(['2 200']);
    // The upstream body is released before the pause, as for a retried status.
    expect(released).toBe(true);
  });

  it('uses the global fetch, read at call time, when none is given', async () => {
    const global = vi.fn(async () => new Response('from the global fetch'));
    const http = createFetch({ ...fast });
    vi.stubGlobal('fetch', global);
    try {
      const response = await http('http://x.test/');
      expect(await response.text()).toBe('from the global fetch');
      expect(global).toHaveBeenCalledTimes(1);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('rejects at once on an aborted caller signal, without calling fetch', async () => {
    const { fetch } = script(200);
    const reason = new Error('gone');
    await expect(
      createFetch({ fetch })('http://x.test/', { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
    expect(fetch).not.toHaveBeenCalled();
  });
});

describe('HttpStatusError', () => {
  it('has a literal name, a stable code, and keeps the response out of enumeration', () => {
    const response = new Response('x', { status: 502, statusText: 'Bad Gateway' });
    const error = new HttpStatusError(response, 3);
    expect(error.name).toBe('HttpStatusError');
    expect(error.message).toBe('HTTP 502 Bad Gateway (attempt 3)');
    expect(error.response).toBe(response);
    expect(Object.keys(error)).not.toContain('response');
    expect(error).toBeInstanceOf(Error);
  });

  it('is recognised across package copies through its Symbol.for brand', () => {
    const foreign = Object.assign(new Error('x'), {
      [Symbol.for('asyncbackoff.HttpStatusError')]: true,
    });
    expect(foreign).toBeInstanceOf(HttpStatusError);
    expect(new Error('x')).not.toBeInstanceOf(HttpStatusError);
    class Sub extends HttpStatusError {}
    expect(new HttpStatusError(new Response(null, { status: 500 }), 1)).not.toBeInstanceOf(Sub);
  });
});

describe('through a shared Backoff', () => {
  it('shares its statistics and keeps its own policy intact', async () => {
    class DbError extends Error {}
    const backoff = new Backoff({ maxTries: 3, exceptions: [DbError] });
    const { fetch } = script(503, new TypeError('fetch failed'), 200);
    const response = await createFetch(backoff, { fetch })('http://x.test/');
    expect(response.status).toBe(200);
    expect(backoff.statistics).toMatchObject({ attempts: 3, retries: 2, successes: 1 });

    // The backoff itself still retries only what it lists.
    const typeError = new TypeError('not retried here');
    await expect(
      backoff.execute(() => {
        throw typeError;
      }),
    ).rejects.toBe(typeError);
    expect(backoff.statistics.attempts).toBe(4);
  });

  it("retries the responses the backoff's retryIf picks, releasing their bodies", async () => {
    const { fetch } = script(202, 200);
    const events: string[] = [];
    const backoff = new Backoff<Response>({
      ...fast,
      maxTries: 3,
      retryIf: (response) => response.status === 202,
    });
    const response = await createFetch(backoff, {
      fetch,
      onResponse: ({ attempt, response: r, willRetry }) => {
        events.push(`${attempt} ${r.status} ${willRetry} ${r.bodyUsed}`);
      },
    })('http://x.test/');
    expect(response.status).toBe(200);
    expect(events).toEqual(['1 202 true false', '2 200 false false']);
  });

  it('retries a non-object the fetch throws when the backoff retries everything', async () => {
    const { fetch } = script(async () => {
      throw 'socket hang up';
    }, 200);
    const seen: unknown[] = [];
    const backoff = new Backoff({
      ...fast,
      maxTries: 2,
      retryAll: true,
      onRetry: ({ error }) => {
        seen.push(error);
      },
    });
    const response = await createFetch(backoff, { fetch })('http://x.test/');
    expect(response.status).toBe(200);
    expect(seen).toEqual(['socket hang up']);
  });

  it('stops on its instance signal', async () => {
    const controller = new AbortController();
    const backoff = new Backoff({ signal: controller.signal });
    const { fetch } = script(async (request) => {
      controller.abort(new Error('shutdown'));
      expect(request.signal.aborted).toBe(true);
      return new Response('late');
    });
    await expect(createFetch(backoff, { fetch })('http://x.test/')).rejects.toThrow('shutdown');
  });
});

describe('diagnostics channels', () => {
  it('publishes each request, response and retry to its asyncbackoff:fetch channel', async () => {
    const messages: string[] = [];
    const onRequest = (message: unknown) => {
      const { attempt, request } = message as { attempt: number; request: Request };
      messages.push(`request ${attempt} ${request.url}`);
    };
    const onResponse = (message: unknown) => {
      const { attempt, response, willRetry } = message as FetchResponseEvent;
      messages.push(`response ${attempt} ${response.status} ${willRetry}`);
    };
    const onRetry = (message: unknown) => {
      const { attempt, request, kind, response, delay } = message as {
        attempt: number;
        request: Request | undefined;
        kind: string;
        response: Response | undefined;
        delay: number;
      };
      messages.push(`retry ${attempt} ${request?.url} ${kind} ${response?.status} ${delay}`);
    };
    diagnosticsChannel.subscribe('asyncbackoff:fetch:request', onRequest);
    diagnosticsChannel.subscribe('asyncbackoff:fetch:response', onResponse);
    diagnosticsChannel.subscribe('asyncbackoff:fetch:retry', onRetry);
    try {
      const { fetch } = script(503, 200);
      await createFetch({ ...fast, fetch })('http://x.test/a');
    } finally {
      diagnosticsChannel.unsubscribe('asyncbackoff:fetch:request', onRequest);
      diagnosticsChannel.unsubscribe('asyncbackoff:fetch:response', onResponse);
      diagnosticsChannel.unsubscribe('asyncbackoff:fetch:retry', onRetry);
    }
    expect(messages).toEqual([
      'request 1 http://x.test/a',
      'response 1 503 true',
      'retry 1 http://x.test/a error 503 0',
      'request 2 http://x.test/a',
      'response 2 200 false',
    ]);
  });
});

describe('on a fake clock', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  beforeEach(() => {
    clock = FakeTimers.install({
      toFake: [
        'setTimeout',
        'clearTimeout',
        'setImmediate',
        'clearImmediate',
        'Date',
        'performance',
      ],
    });
  });
  afterEach(() => {
    clock.uninstall();
  });

  it('waits for Retry-After (seconds) before the next attempt', async () => {
    const times: number[] = [];
    const { fetch } = script(
      async () => {
        times.push(Date.now());
        return new Response(null, { status: 503, headers: { 'retry-after': '2' } });
      },
      async () => {
        times.push(Date.now());
        return new Response('ok');
      },
    );
    const pending = createFetch({ pause: 10, fetch })('http://x.test/');
    await clock.tickAsync(1999);
    expect(times).toHaveLength(1);
    await clock.tickAsync(1);
    expect((await pending).status).toBe(200);
    expect(times[1]! - times[0]!).toBe(2000);
  });

  it('returns the response at once when Retry-After exceeds maxRetryAfter (60 s by default)', async () => {
    const { fetch } = script(
      async () => new Response(null, { status: 429, headers: { 'retry-after': '61' } }),
    );
    const settled = vi.fn();
    const pending = createFetch({ fetch })('http://x.test/');
    pending.then(settled, settled);
    await clock.tickAsync(0);
    expect(settled).toHaveBeenCalledTimes(1);
    expect((await pending).status).toBe(429);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('takes maxRetryAfter from the options: a longer Retry-After returns the response at once', async () => {
    const { fetch } = script(
      async () => new Response(null, { status: 503, headers: { 'retry-after': '2' } }),
      200,
    );
    const pending = createFetch({ fetch, maxRetryAfter: 1_000 })('http://x.test/');
    await clock.tickAsync(0);
    expect((await pending).status).toBe(503);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('aborts the request of an attempt that times out, then retries', async () => {
    const { fetch, requests } = script(
      (request) =>
        new Promise<Response>((_resolve, reject) => {
          request.signal.addEventListener('abort', () => reject(request.signal.reason));
        }),
      200,
    );
    const pending = createFetch({ attemptTimeout: 100, ...fast, fetch })('http://x.test/');
    await clock.tickAsync(100);
    expect((await pending).status).toBe(200);
    expect(requests[0]!.signal.reason).toBeInstanceOf(AttemptTimeoutError);
  });

  it('rejects with the retried HttpStatusError when the deadline cuts the next attempt short', async () => {
    const { fetch } = script(503, () => new Promise<Response>(() => {}));
    const pending = createFetch({ deadline: 500, pause: 100, fetch })('http://x.test/').catch(
      (e: unknown) => e,
    );
    await clock.tickAsync(500);
    const error = await pending;
    // The 503's body was released when it was retried, so it is reported as an error.
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error).toMatchObject({ status: 503, attempt: 1 });
  });
});

describe('memory', () => {
  it('keeps no request alive once its response is dropped (no cycle through the signal)', async () => {
    // A forced GC in this worker: the flag, then V8's gc() from a fresh context.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const requests: WeakRef<Request>[] = [];
    const http = createFetch({
      attemptTimeout: 1_000,
      maxTries: 2,
      fetch: async (request) => {
        requests.push(new WeakRef(request));
        return new Response('ok');
      },
    });
    for (let i = 0; i < 50; i++) await (await http('http://memory.invalid/')).text();
    // Finalization runs between turns: let it, and collect again.
    for (let round = 0; round < 5; round++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const alive = requests.filter((ref) => ref.deref() !== undefined).length;
    expect(alive).toBeLessThanOrEqual(1);
  });
});

/** The modules evaluated afresh inside the test, module-level tables included. */
async function freshModules() {
  vi.resetModules();
  return import('../src/index.js');
}

describe('module-level tables (evaluated afresh)', () => {
  it('retries each default status: 408, 429, 500, 502, 503, 504, and not 404', async () => {
    const fresh = await freshModules();
    for (const status of [408, 429, 500, 502, 503, 504]) {
      const { fetch } = script(status, 200);
      const response = await fresh.createFetch({ ...fast, fetch })('http://x.test/');
      expect([status, response.status]).toEqual([status, 200]);
      expect(fetch).toHaveBeenCalledTimes(2);
    }
    const { fetch } = script(404, 200);
    expect((await fresh.createFetch({ ...fast, fetch })('http://x.test/')).status).toBe(404);
  });

  it('retries each default method: GET, HEAD, OPTIONS, PUT, DELETE, and not POST', async () => {
    const fresh = await freshModules();
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) {
      const { fetch } = script(503, 200);
      const response = await fresh.createFetch({ ...fast, fetch })('http://x.test/', { method });
      expect([method, response.status]).toEqual([method, 200]);
    }
    const { fetch } = script(503, 200);
    const response = await fresh.createFetch({ ...fast, fetch })('http://x.test/', {
      method: 'POST',
    });
    expect(response.status).toBe(503);
  });

  it('takes every fetch option in both forms, and Backoff options next to them in the options form', async () => {
    const fresh = await freshModules();
    const cases: [string, (fetch: (request: Request) => Promise<Response>) => object][] = [
      ['statuses', () => ({ statuses: [404] })],
      ['methods', () => ({ methods: ['POST'] })],
      ['retryNonIdempotent', () => ({ retryNonIdempotent: true })],
      ['bufferBody', () => ({ bufferBody: true })],
      ['attempts', () => ({ attempts: [{ headers: { 'x-override': '1' } }] })],
      ['onRequest', () => ({ onRequest: () => {} })],
      ['onResponse', () => ({ onResponse: () => {} })],
      ['throwOnStatus', () => ({ throwOnStatus: true })],
      ['fetch', (fetch) => ({ fetch })],
    ];
    for (const [name, make] of cases) {
      const { fetch, requests } = script(200);
      const backoff = new fresh.Backoff({ ...fast, maxTries: 2 });
      const forms = [
        () => fresh.createFetch({ fetch, ...make(fetch) }),
        () => fresh.createFetch(backoff, { fetch, ...make(fetch) }),
      ];
      for (const form of forms) {
        expect(() => form(), name).not.toThrow();
        expect((await form()('http://x.test/')).status, name).toBe(200);
      }
      expect(requests, name).toHaveLength(2);
    }
    // The split: Backoff options go to the Backoff, fetch options stay with the fetch.
    const { fetch } = script(503, 503, 200);
    const response = await fresh.createFetch({ ...fast, maxTries: 2, fetch })('http://x.test/');
    expect(response.status).toBe(503);
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('publishes on the asyncbackoff:fetch:request, :response and :retry channels', async () => {
    const fresh = await freshModules();
    const messages: string[] = [];
    const listeners = ['request', 'response', 'retry'].map((name) => {
      const channel = `asyncbackoff:fetch:${name}`;
      const listener = (message: unknown) => {
        messages.push(`${name} ${(message as { attempt: number }).attempt}`);
      };
      diagnosticsChannel.subscribe(channel, listener);
      return () => diagnosticsChannel.unsubscribe(channel, listener);
    });
    try {
      const { fetch } = script(503, 200);
      await fresh.createFetch({ ...fast, fetch })('http://x.test/');
    } finally {
      for (const unsubscribe of listeners) unsubscribe();
    }
    expect(messages).toEqual(['request 1', 'response 1', 'retry 1', 'request 2', 'response 2']);
  });

  it('brands HttpStatusError with Symbol.for, so two copies of the module recognise each other', async () => {
    const fresh = await freshModules();
    const response = new Response(null, { status: 503 });
    expect(new fresh.HttpStatusError(response, 1)).toBeInstanceOf(HttpStatusError);
    expect(new HttpStatusError(response, 1)).toBeInstanceOf(fresh.HttpStatusError);
  });
});

describe('createFetch edge cases', () => {
  it('HttpStatusError recognises only objects with the brand: not null, primitives or branded functions', () => {
    const brand = Symbol.for('asyncbackoff.HttpStatusError');
    const isHttpStatusError = (value: unknown) => HttpStatusError[Symbol.hasInstance](value);
    expect(isHttpStatusError(null)).toBe(false);
    expect(isHttpStatusError(undefined)).toBe(false);
    expect(isHttpStatusError('HttpStatusError')).toBe(false);
    expect(isHttpStatusError(Object.assign(() => {}, { [brand]: true }))).toBe(false);
    expect(isHttpStatusError({ [brand]: true })).toBe(true);
  });

  it('accepts statuses from 100 to 599 and rejects 99 and 600', async () => {
    expect(() => createFetch({ statuses: [100, 599] })).not.toThrow();
    expect(() => createFetch({ statuses: [99] })).toThrow(RangeError);
    expect(() => createFetch({ statuses: [600] })).toThrow(RangeError);
    const { fetch } = script(599, 200);
    const http = createFetch({ ...fast, fetch, statuses: [100, 599] });
    expect((await http('http://x.test/')).status).toBe(200);
  });

  it('rejects a null options argument and a null attempts entry', () => {
    expect(() => createFetch(null as never)).toThrow(
      new TypeError('createFetch: expected a Backoff or an options object, got null'),
    );
    expect(() => createFetch({ attempts: [null as never] })).toThrow(
      new TypeError("createFetch: 'attempts[0]' must be an object of request overrides, got null"),
    );
  });

  it('rejects when the fetch resolves with null, a headerless status, or headers without a numeric status', async () => {
    for (const value of [null, { status: 200 }, { status: '200', headers: new Headers() }]) {
      const { fetch } = script(async () => value as unknown as Response);
      await expect(createFetch({ ...fast, fetch })('http://x.test/')).rejects.toThrow(
        "createFetch: 'fetch' must resolve with a Response, got ",
      );
      expect(fetch).toHaveBeenCalledTimes(1);
    }
  });

  it('rejects with exactly what the fetch threw, null and undefined included', async () => {
    for (const value of [null, undefined]) {
      const { fetch } = script(async () => {
        throw value;
      });
      const outcome = await createFetch({ ...fast, fetch })('http://x.test/').then(
        () => 'resolved',
        (error: unknown) => ({ error }),
      );
      expect(outcome).toEqual({ error: value });
    }
  });

  it('replays bytes, Blob, URLSearchParams and iterable-less bodies without bufferBody', async () => {
    const bodies: [NonNullable<RequestInit['body']>, string][] = [
      [new TextEncoder().encode('bytes'), 'bytes'],
      [new TextEncoder().encode('buffer').buffer, 'buffer'],
      [new Blob(['blob']), 'blob'],
      [new URLSearchParams({ a: '1' }), 'a=1'],
      // Has `next` but is no iterator: converted to a string, so it can be sent again.
      [{ next() {}, toString: () => 'iterator-like' } as never, 'iterator-like'],
    ];
    for (const [body, text] of bodies) {
      const { fetch, bodies: sent } = script(503, 200);
      const response = await createFetch({ ...fast, fetch })('http://x.test/', {
        method: 'PUT',
        body,
      });
      expect(response.status).toBe(200);
      expect(sent).toEqual([text, text]);
    }
  });

  it('treats a null init.body like none: the body of the Request object is still refused, or buffered', async () => {
    const request = () => new Request('http://x.test/', { method: 'PUT', body: 'from-request' });
    const a = script(503, 200);
    await expect(
      createFetch({ ...fast, fetch: a.fetch })(request(), { body: null }),
    ).rejects.toThrow(/^createFetch: the body of a Request object is a one-shot stream/);
    expect(a.fetch).not.toHaveBeenCalled();

    const b = script(503, 200);
    const response = await createFetch({ ...fast, fetch: b.fetch, bufferBody: true })(request(), {
      body: null,
    });
    expect(response.status).toBe(200);
    expect(b.bodies).toEqual(['from-request', 'from-request']);
  });

  it('sends a non-idempotent request once even when the backoff retries its error', async () => {
    class Flaky extends Error {}
    const { fetch } = script(new Flaky('x'), 200);
    const http = createFetch({ ...fast, fetch, exceptions: [Flaky] });
    await expect(http('http://x.test/', { method: 'POST' })).rejects.toBeInstanceOf(Flaky);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('rejects an attempts function that returns null', async () => {
    const { fetch } = script(200);
    await expect(
      createFetch({ ...fast, fetch, attempts: () => null as never })('http://x.test/'),
    ).rejects.toThrow(
      new TypeError(
        "createFetch: 'attempts' must return a Request, request overrides or undefined, got null",
      ),
    );
    expect(fetch).not.toHaveBeenCalled();
  });

  it("keeps the caller's signal on the request after the response is returned (it bounds the body)", async () => {
    const { fetch, requests } = script(200);
    const controller = new AbortController();
    await createFetch({ ...fast, fetch })('http://x.test/', { signal: controller.signal });
    expect(requests[0]!.signal.aborted).toBe(false);
    const reason = new Error('caller left');
    controller.abort(reason);
    expect(requests[0]!.signal.aborted).toBe(true);
    expect(requests[0]!.signal.reason).toBe(reason);
  });

  it("consults the backoff's retryAfter when a retried response has no Retry-After", async () => {
    const retryAfter = vi.fn((_outcome: unknown, _kind: string) => undefined);
    const backoff = new Backoff({ ...fast, maxTries: 2, retryAfter });
    const { fetch } = script(503, 200);
    expect((await createFetch(backoff, { fetch })('http://x.test/')).status).toBe(200);
    expect(retryAfter).toHaveBeenCalledTimes(1);
    expect(retryAfter.mock.calls[0]![0]).toBeInstanceOf(HttpStatusError);
    expect(retryAfter.mock.calls[0]![0]).toMatchObject({ status: 503 });
    expect(retryAfter.mock.calls[0]![1]).toBe('error');
  });

  it('hands the policy the very HttpStatusError it rejects with under throwOnStatus', async () => {
    const { fetch } = script(503);
    const onGiveup = vi.fn<(event: GiveupEvent) => void>();
    const http = createFetch({ ...fast, fetch, maxTries: 2, throwOnStatus: true, onGiveup });
    const error = await http('http://x.test/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(onGiveup.mock.calls[0]![0].error).toBe(error);
  });

  it('a giveup that throws on a retriable response rejects with its error and releases the body', async () => {
    let cancelled = 0;
    const { fetch } = script(
      async () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              controller.enqueue(new TextEncoder().encode('busy'));
            },
            cancel() {
              cancelled++;
            },
          }),
          { status: 503 },
        ),
    );
    const broken = new Error('giveup broke');
    const onResponse = vi.fn();
    const http = createFetch({
      ...fast,
      fetch,
      onResponse,
      giveup: () => {
        throw broken;
      },
    });
    await expect(http('http://x.test/')).rejects.toBe(broken);
    expect(cancelled).toBe(1);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('leaves the body of a retried response alone once onResponse started reading it', async () => {
    let cancelled = false;
    const { fetch } = script(
      async () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              controller.enqueue(new TextEncoder().encode('chunk'));
            },
            cancel() {
              cancelled = true;
            },
          }),
          { status: 503 },
        ),
      200,
    );
    const firstChunks: string[] = [];
    const response = await createFetch({
      ...fast,
      fetch,
      onResponse: async ({ response: r, willRetry }) => {
        if (!willRetry) return;
        const reader = r.body!.getReader();
        firstChunks.push(new TextDecoder().decode((await reader.read()).value));
        reader.releaseLock();
      },
    })('http://x.test/');
    expect(response.status).toBe(200);
    expect(firstChunks).toEqual(['chunk']);
    expect(cancelled).toBe(false);
  });

  it('retries a duck-typed response that has no body property (nothing to release)', async () => {
    const bodiless = { status: 503, statusText: '', headers: new Headers() };
    const { fetch } = script(async () => bodiless as unknown as Response, 200);
    const response = await createFetch({ ...fast, fetch })('http://x.test/');
    expect(response.status).toBe(200);
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('a Response the fetch throws is an error, not a response: no onResponse, body left alone', async () => {
    let cancelled = false;
    const thrown = new Response(
      new ReadableStream({
        pull(controller) {
          controller.enqueue(new TextEncoder().encode('thrown'));
        },
        cancel() {
          cancelled = true;
        },
      }),
      { status: 503 },
    );
    const { fetch } = script(async () => {
      throw thrown;
    }, 200);
    const events: string[] = [];
    const backoff = new Backoff({ ...fast, maxTries: 2, retryAll: true });
    const response = await createFetch(backoff, {
      fetch,
      onResponse: ({ attempt, response: r, willRetry }) => {
        events.push(`${attempt} ${r.status} ${willRetry}`);
      },
    })('http://x.test/');
    expect(response.status).toBe(200);
    expect(events).toEqual(['2 200 false']);
    expect(cancelled).toBe(false);
  });

  it('publishes the request of each retried failure: a network error, a thrown function; none for a string', async () => {
    const retries: { attempt: number; request: Request | undefined }[] = [];
    const onRetry = (message: unknown) => {
      const { attempt, request } = message as { attempt: number; request: Request | undefined };
      retries.push({ attempt, request });
    };
    const thrownFunction = () => 'callable failure';
    const { fetch, requests } = script(
      new TypeError('fetch failed'),
      async () => {
        throw thrownFunction;
      },
      async () => {
        throw 'socket hang up';
      },
      200,
    );
    const backoff = new Backoff({ ...fast, maxTries: 4, retryAll: true });
    diagnosticsChannel.subscribe('asyncbackoff:fetch:retry', onRetry);
    try {
      const response = await createFetch(backoff, { fetch })('http://x.test/');
      expect(response.status).toBe(200);
    } finally {
      diagnosticsChannel.unsubscribe('asyncbackoff:fetch:retry', onRetry);
    }
    expect(retries).toHaveLength(3);
    expect(retries[0]!.request).toBe(requests[0]);
    expect(retries[1]!.request).toBe(requests[1]);
    expect(retries[2]).toEqual({ attempt: 3, request: undefined });
  });
});

describe('createFetch on a fake clock', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  beforeEach(() => {
    clock = FakeTimers.install({
      toFake: [
        'setTimeout',
        'clearTimeout',
        'setImmediate',
        'clearImmediate',
        'Date',
        'performance',
      ],
    });
  });
  afterEach(() => {
    clock.uninstall();
  });

  it('pauses with full jitter on 100 ms, doubling, by default', async () => {
    const delays: number[] = [];
    const { fetch } = script(503, 503, 200);
    const pending = createFetch({
      random: () => 0.5,
      fetch,
      onRetry: ({ delay }) => {
        delays.push(delay);
      },
    })('http://x.test/');
    await clock.tickAsync(49);
    expect(fetch).toHaveBeenCalledTimes(1);
    await clock.tickAsync(1);
    expect(fetch).toHaveBeenCalledTimes(2);
    await clock.tickAsync(100);
    expect((await pending).status).toBe(200);
    expect(delays).toEqual([50, 100]);
  });

  it('aborts a Request the attempts function built on its own when its attempt times out', async () => {
    const { fetch, requests } = script(() => new Promise<Response>(() => {}), 200);
    const pending = createFetch({
      ...fast,
      attemptTimeout: 100,
      fetch,
      attempts: (attempt) => new Request(`http://other.test/${attempt}`),
    })('http://x.test/');
    await clock.tickAsync(100);
    expect((await pending).status).toBe(200);
    expect(requests.map((r) => r.url)).toEqual(['http://other.test/1', 'http://other.test/2']);
    expect(requests[0]!.signal.reason).toBeInstanceOf(AttemptTimeoutError);
  });

  it('publishes the request of an attempt that timed out', async () => {
    const retries: { kind: string; request: Request | undefined }[] = [];
    const onRetry = (message: unknown) => {
      const { kind, request } = message as { kind: string; request: Request | undefined };
      retries.push({ kind, request });
    };
    const { fetch, requests } = script(() => new Promise<Response>(() => {}), 200);
    diagnosticsChannel.subscribe('asyncbackoff:fetch:retry', onRetry);
    try {
      const pending = createFetch({ ...fast, attemptTimeout: 100, fetch })('http://x.test/');
      await clock.tickAsync(100);
      expect((await pending).status).toBe(200);
    } finally {
      diagnosticsChannel.unsubscribe('asyncbackoff:fetch:retry', onRetry);
    }
    expect(retries).toHaveLength(1);
    expect(retries[0]!.kind).toBe('timeout');
    expect(retries[0]!.request).toBe(requests[0]);
  });

  it('releases the body of a response that arrives after its attempt timed out', async () => {
    let cancelled = false;
    const late = () =>
      new Promise<Response>((resolve) => {
        setTimeout(() => {
          resolve(
            new Response(
              new ReadableStream({
                pull(controller) {
                  controller.enqueue(new TextEncoder().encode('late'));
                },
                cancel() {
                  cancelled = true;
                },
              }),
            ),
          );
        }, 150);
      });
    const { fetch } = script(late, () => new Promise<Response>(() => {}));
    const pending = createFetch({ ...fast, attemptTimeout: 100, maxTries: 2, fetch })(
      'http://x.test/',
    ).catch((e: unknown) => e);
    await clock.tickAsync(150);
    expect(cancelled).toBe(true);
    await clock.tickAsync(50);
    expect(await pending).toBeInstanceOf(AttemptTimeoutError);
  });

  it('rejects with the reason of a caller abort, even a string, while the request is in flight', async () => {
    const { fetch } = script(() => new Promise<Response>(() => {}));
    const controller = new AbortController();
    const pending = createFetch({ ...fast, fetch })('http://x.test/', {
      signal: controller.signal,
    }).catch((e: unknown) => e);
    await clock.tickAsync(10);
    controller.abort('stop');
    expect(await pending).toBe('stop');
  });
});
