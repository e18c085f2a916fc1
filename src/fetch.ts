/**
 * `createFetch`: a drop-in `fetch` whose requests run through a `Backoff` — attempt timeout,
 * deadline, pauses, `maxTries`, cancellation, retry budget and server pushback (`Retry-After`).
 *
 * How it maps onto the engine: each attempt is one call of the underlying `fetch` with the
 * attempt's signal. A network failure (fetch's `TypeError`) and a response with a retriable status
 * (thrown inside the attempt as an {@link HttpStatusError}) are failures the policy retries; the
 * `Retry-After` header of such a response is the engine's `retryAfter` hint. When the policy stops,
 * the last response is handed back as is (no throw on 4xx/5xx unless `throwOnStatus`).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { currentAttempt } from './attempt.js';
import { Backoff, backoffFor, deriveBackoff } from './backoff.js';
import { exponential } from './delays.js';
import { AttemptTimeoutError } from './errors.js';
import { type BackoffOptions, KNOWN, METHOD_NAME_OPTIONS } from './options.js';
import { parseRetryAfter } from './pushback.js';
import { isThenable } from './thenables.js';
import type { FailureKind, HookResult, RetryAfterHint, RetryEvent } from './types.js';
import { checkOptions, describe } from './validate.js';

type BodyInit = NonNullable<RequestInit['body']>;
type HeadersInit = NonNullable<RequestInit['headers']>;

/**
 * A function with the signature of the global `fetch`, as {@link createFetch} returns.
 * @example
 * ```ts
 * const http: RetryingFetch = createFetch({ deadline: 5_000 });
 * const client = new SomeSdk({ fetch: http }); // anything that takes a fetch
 * ```
 */
export type RetryingFetch = (
  input: string | URL | Request,
  init?: RequestInit,
) => Promise<Response>;

/**
 * Overrides for one attempt (see {@link FetchOptions.attempts}): any `RequestInit` field replaces
 * the request's, `headers` are merged into the request's (a name given here replaces the
 * request's value), and `url` (absolute, or relative to the request's URL) replaces the URL.
 * @example
 * ```ts
 * const overrides: FetchAttemptInit[] = [
 *   {},                                                   // attempt 1: the request as given
 *   { url: 'https://eu.api.example.com/v1/items' },       // attempt 2 and later: the EU replica
 * ];
 * ```
 */
export type FetchAttemptInit = Omit<RequestInit, 'signal'> & {
  /** The URL of this attempt: absolute, or relative to the request's URL. */
  url?: string | URL | undefined;
};

/**
 * What {@link FetchOptions.onRequest} is told (and what `asyncbackoff:fetch:request` publishes).
 * @example
 * ```ts
 * createFetch({ onRequest: ({ attempt, request }) => request.headers.set('x-attempt', String(attempt)) });
 * ```
 */
export interface FetchRequestEvent {
  /** The 1-based attempt number. */
  readonly attempt: number;
  /** The request about to be sent; its headers may still be changed. */
  readonly request: Request;
}

/**
 * What {@link FetchOptions.onResponse} is told (and what `asyncbackoff:fetch:response` publishes).
 * @example
 * ```ts
 * createFetch({
 *   onResponse: ({ attempt, request, response, willRetry }) =>
 *     log.info({ attempt, url: request.url, status: response.status, willRetry }, 'http response'),
 * });
 * ```
 */
export interface FetchResponseEvent {
  /** The 1-based attempt number. */
  readonly attempt: number;
  /** The request of this attempt. */
  readonly request: Request;
  /** The response received; its body is unread unless a hook read it. */
  readonly response: Response;
  /**
   * True when another attempt follows: the response is discarded (its body cancelled right after
   * this hook returns, unless the hook consumed it).
   */
  readonly willRetry: boolean;
}

/**
 * What the `asyncbackoff:fetch:retry` diagnostics channel publishes, before each pause.
 * @example
 * ```ts
 * import diagnosticsChannel from 'node:diagnostics_channel';
 * diagnosticsChannel.subscribe('asyncbackoff:fetch:retry', (message) => {
 *   const { attempt, request, error, delay } = message as FetchRetryEvent;
 *   metrics.increment('http.retry', { host: request && new URL(request.url).host });
 * });
 * ```
 */
export interface FetchRetryEvent {
  /** The 1-based number of the attempt that failed. */
  readonly attempt: number;
  /** The request of that attempt (undefined only if it failed before a request was built). */
  readonly request: Request | undefined;
  /** Why it failed: `'error'` (network error or retriable status) or `'timeout'`. */
  readonly kind: FailureKind;
  /** The failure: fetch's `TypeError`, an `AttemptTimeoutError`, an {@link HttpStatusError}, ... */
  readonly error: unknown;
  /** The discarded response, for a retriable status. */
  readonly response: Response | undefined;
  /** The pause (ms) before the next attempt. */
  readonly delay: number;
}

/**
 * Options of {@link createFetch} that concern HTTP (the rest are `Backoff` options).
 * @example
 * ```ts
 * const options: FetchOptions = {
 *   statuses: [429, 503],            // only these are retried
 *   methods: ['GET', 'PUT'],         // DELETE is not idempotent on this API
 *   attempts: (attempt) => ({ headers: { authorization: `Bearer ${tokens[attempt % tokens.length]}` } }),
 * };
 * const http = createFetch(sharedBackoff, options);
 * ```
 */
export interface FetchOptions {
  /**
   * Response statuses worth another attempt, or a predicate on the response. The predicate may be
   * async (it may read a clone of the body): a returned promise is awaited within the attempt, and
   * what it throws or rejects with is the attempt's error.
   * @defaultValue `[408, 429, 500, 502, 503, 504]`
   */
  statuses?:
    | readonly number[]
    | ((response: Response) => boolean | PromiseLike<boolean>)
    | undefined;
  /**
   * Methods retried without further ado (idempotent ones). Others are sent once (still under the
   * attempt timeout, the deadline and the signals) unless `retryNonIdempotent` is set or the
   * request carries an `Idempotency-Key` header.
   * @defaultValue `['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']`
   */
  methods?: readonly string[] | undefined;
  /**
   * Retry every method, POST and PATCH included.
   * @defaultValue `false`
   */
  retryNonIdempotent?: boolean | undefined;
  /**
   * A one-shot request body (a `ReadableStream`, a Node stream, an async iterable, the body of a
   * `Request` object) cannot be sent twice. By default a retriable request with such a body is
   * rejected with a `TypeError` before anything is sent; `bufferBody: true` reads it into memory
   * once and replays the bytes.
   * @defaultValue `false`
   */
  bufferBody?: boolean | undefined;
  /**
   * Per-attempt request changes (aiohttp_retry's `params_list`): an array whose entry n - 1
   * applies to attempt n (the last entry repeats), or a function of the attempt number and the
   * request that returns a `Request`, overrides, or nothing (keep the request, perhaps after
   * changing its headers). To fail over to another host, rotate a token, ...
   */
  attempts?:
    | readonly FetchAttemptInit[]
    | ((attempt: number, request: Request) => Request | FetchAttemptInit | undefined)
    | undefined;
  /** Called before each attempt's request is sent; may return a promise (awaited, within the attempt). */
  onRequest?: ((event: FetchRequestEvent) => HookResult) | undefined;
  /**
   * Called once per response received, once it is known whether another attempt follows; may
   * return a promise (awaited).
   */
  onResponse?: ((event: FetchResponseEvent) => HookResult) | undefined;
  /**
   * Reject with an {@link HttpStatusError} when the final response is not ok (status outside
   * 200-299) instead of resolving with it.
   * @defaultValue `false`
   */
  throwOnStatus?: boolean | undefined;
  /**
   * The fetch that sends each attempt's `Request` (say, one that passes an undici `dispatcher`).
   * @defaultValue the global `fetch` (read at call time)
   */
  fetch?: ((request: Request) => Promise<Response>) | undefined;
}

/**
 * Options of the options form of {@link createFetch}: `Backoff` options plus {@link FetchOptions}.
 * Unlike a plain `Backoff`, three options have safer defaults here: `maxTries: 3`,
 * `pause: exponential({ initial: 100, max: 5000, jitter: 'full' })` and `maxRetryAfter: 60000`.
 * @example
 * ```ts
 * const options: CreateFetchOptions = { attemptTimeout: 1_000, deadline: 8_000, maxTries: 5, statuses: [503] };
 * const http = createFetch(options);
 * ```
 */
export type CreateFetchOptions = BackoffOptions<Response> & FetchOptions;

const kHttpStatus = Symbol.for('asyncbackoff.HttpStatusError');

/** ` from <origin><path>` of a response URL: no query string or credentials, which may be secret. */
function where(url: string): string {
  if (!url) return '';
  try {
    const { origin, pathname } = new URL(url);
    return ` from ${origin}${pathname}`;
  } catch {
    return '';
  }
}

/**
 * A response with a retriable status (thrown inside an attempt so the policy can retry it; a
 * `giveup` or `policy` of the backoff sees it), or, with `throwOnStatus`, the final response that
 * was not ok. The response is in `response`; its body is left unread.
 *
 * @example
 * ```ts
 * const http = createFetch({ deadline: 5_000, throwOnStatus: true,
 *   giveup: (error) => error instanceof HttpStatusError && error.status === 501 });
 * try { await http(url); }
 * catch (error) { if (error instanceof HttpStatusError) log.warn(await error.response.text()); }
 * ```
 */
export class HttpStatusError extends Error {
  /** Always `'HttpStatusError'`. */
  override name = 'HttpStatusError' as const;
  /** Stable machine-readable code. */
  readonly code = 'ASYNCBACKOFF_HTTP_STATUS' as const;
  /** The response's status. */
  readonly status: number;
  /** The 1-based attempt that received the response. */
  readonly attempt: number;
  /** The response (not enumerable, to keep logs short). */
  declare readonly response: Response;

  constructor(response: Response, attempt: number, options?: ErrorOptions) {
    super(
      `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${where(response.url)} (attempt ${attempt})`,
      options,
    );
    this.status = response.status;
    this.attempt = attempt;
    Object.defineProperty(this, 'response', { value: response, enumerable: false });
    Object.defineProperty(this, kHttpStatus, { value: true });
  }

  /**
   * `error instanceof HttpStatusError` holds for an error of any copy of the package (a
   * `Symbol.for` brand); for a subclass, the prototype chain decides.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== HttpStatusError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[kHttpStatus] === true
    );
  }
}

// ---------------------------------------------------------------------------------------------

const requestChannel = diagnosticsChannel.channel('asyncbackoff:fetch:request');
const responseChannel = diagnosticsChannel.channel('asyncbackoff:fetch:response');
const retryChannel = diagnosticsChannel.channel('asyncbackoff:fetch:retry');

const DEFAULT_STATUSES: readonly number[] = [408, 429, 500, 502, 503, 504];
const DEFAULT_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];

const FETCH_KEYS = new Set<string>([
  'statuses',
  'methods',
  'retryNonIdempotent',
  'bufferBody',
  'attempts',
  'onRequest',
  'onResponse',
  'throwOnStatus',
  'fetch',
]);

/** What the options form takes: the `Backoff` options and the fetch options. */
const CREATE_FETCH_KEYS = new Set<string>([...KNOWN, ...FETCH_KEYS]);

/** Errors the underlying fetch rejected with on its own (network failures), by identity. */
const networkErrors = new WeakSet<object>();

/**
 * Matches exactly the network errors recorded above. Listed in the derived policy's `exceptions`,
 * so fetch's `TypeError` is retried while a `TypeError` from anywhere else (a bad URL in an
 * override, a hook) is not.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: an `exceptions` entry must be a class
class NetworkFailure {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && networkErrors.has(value);
  }
}

/** Which attempt and request a failure (error, timeout reason, discarded response) belongs to. */
interface AttemptRecord {
  readonly attempt: number;
  readonly request: Request;
}
const records = new WeakMap<object, AttemptRecord>();
/** Responses whose `onResponse` was already called. */
const reported = new WeakSet<Response>();
/** Responses that were retried (their bodies released). */
const retried = new WeakSet<Response>();

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/** A `Response`, or a response of another fetch implementation (npm undici). */
function isResponse(value: unknown): value is Response {
  return (
    value instanceof Response ||
    (isObject(value) &&
      typeof (value as Response).status === 'number' &&
      typeof (value as Response).headers?.get === 'function')
  );
}

function isOneShot(body: unknown): boolean {
  if (!isObject(body)) return false;
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return true;
  // A sync iterator (a generator object) is consumed by the first send; an array is not.
  return (
    typeof (body as Iterable<unknown>)[Symbol.iterator] === 'function' &&
    typeof (body as Iterator<unknown>).next === 'function'
  );
}

/** Discards `response`, which the caller will not get, and fails with `reason`. */
async function dropped(response: Response, reason: unknown): Promise<never> {
  await discard(response);
  throw reason;
}

/** Cancels an unread body (if there is one) so the connection is not held; never throws. */
async function discard(response: Response): Promise<void> {
  const body = response.body as ReadableStream | null | undefined;
  if (body == null || body.locked || response.bodyUsed) return;
  try {
    await body.cancel();
  } catch {
    // Already errored or cancelled: nothing is held.
  }
}

function optionalBoolean(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean')
    throw new TypeError(`createFetch: '${name}' must be a boolean, got ${describe(value)}`);
  return value;
}

function optionalFunction<T>(name: string, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function')
    throw new TypeError(`createFetch: '${name}' must be a function, got ${describe(value)}`);
  return value as T;
}

interface FetchConfig {
  readonly isRetriableStatus: (response: Response) => boolean | PromiseLike<boolean>;
  readonly methods: ReadonlySet<string>;
  readonly retryNonIdempotent: boolean;
  readonly bufferBody: boolean;
  readonly attempts: FetchOptions['attempts'];
  readonly onRequest: ((event: FetchRequestEvent) => HookResult) | undefined;
  readonly onResponse: ((event: FetchResponseEvent) => HookResult) | undefined;
  readonly throwOnStatus: boolean;
  readonly fetch: ((request: Request) => Promise<Response>) | undefined;
}

function normalizeFetchOptions(options: FetchOptions): FetchConfig {
  // Only undefined takes a default (here and for `methods`): a null is refused as a wrong type.
  const statuses = options.statuses === undefined ? DEFAULT_STATUSES : options.statuses;
  let isRetriableStatus: (response: Response) => boolean | PromiseLike<boolean>;
  if (typeof statuses === 'function') isRetriableStatus = statuses;
  else if (Array.isArray(statuses)) {
    statuses.forEach((status: unknown, index) => {
      if (typeof status !== 'number')
        throw new TypeError(
          `createFetch: 'statuses[${index}]' must be an HTTP status (an integer from 100 to 599), got ${describe(status)}`,
        );
      if (!Number.isInteger(status) || status < 100 || status > 599)
        throw new RangeError(
          `createFetch: 'statuses[${index}]' must be an HTTP status (an integer from 100 to 599), got ${describe(status)}`,
        );
    });
    const set = new Set<number>(statuses);
    isRetriableStatus = (response) => set.has(response.status);
  } else
    throw new TypeError(
      `createFetch: 'statuses' must be an array of HTTP statuses or a function, got ${describe(statuses)}`,
    );

  const methods = options.methods === undefined ? DEFAULT_METHODS : options.methods;
  if (!Array.isArray(methods))
    throw new TypeError(
      `createFetch: 'methods' must be an array of method names, got ${describe(methods)}`,
    );
  methods.forEach((method: unknown, index) => {
    if (typeof method !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(method))
      throw new TypeError(
        `createFetch: 'methods[${index}]' must be an HTTP method name, got ${describe(method)}`,
      );
  });

  const attempts = options.attempts;
  if (attempts !== undefined && typeof attempts !== 'function') {
    if (!Array.isArray(attempts))
      throw new TypeError(
        `createFetch: 'attempts' must be an array of request overrides or a function, got ${describe(attempts)}`,
      );
    if (attempts.length === 0)
      throw new RangeError(`createFetch: 'attempts' must not be an empty array`);
    attempts.forEach((entry: unknown, index) => {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
        throw new TypeError(
          `createFetch: 'attempts[${index}]' must be an object of request overrides, got ${describe(entry)}`,
        );
    });
  }

  return {
    isRetriableStatus,
    methods: new Set(methods.map((method) => method.toUpperCase())),
    retryNonIdempotent: optionalBoolean('retryNonIdempotent', options.retryNonIdempotent),
    bufferBody: optionalBoolean('bufferBody', options.bufferBody),
    attempts,
    onRequest: optionalFunction('onRequest', options.onRequest),
    onResponse: optionalFunction('onResponse', options.onResponse),
    throwOnStatus: optionalBoolean('throwOnStatus', options.throwOnStatus),
    fetch: optionalFunction('fetch', options.fetch),
  };
}

/** Publishes the response to the hook and the channel (once per response). */
async function reportResponse(
  config: FetchConfig,
  record: AttemptRecord,
  response: Response,
  willRetry: boolean,
): Promise<void> {
  if (reported.has(response)) return;
  reported.add(response);
  const event: FetchResponseEvent = {
    attempt: record.attempt,
    request: record.request,
    response,
    willRetry,
  };
  if (responseChannel.hasSubscribers) responseChannel.publish(event);
  if (config.onResponse !== undefined) await config.onResponse(event);
}

/** Applies one attempt's overrides to its request. */
function override(request: Request, changes: FetchAttemptInit, signal: AbortSignal): Request {
  const { url, headers, ...rest } = changes as FetchAttemptInit & { signal?: unknown };
  delete rest.signal;
  const moved = url === undefined ? request : new Request(new URL(url, request.url), request);
  const init: RequestInit = { ...(rest as RequestInit), signal };
  if (headers !== undefined) {
    const merged = new Headers(moved.headers);
    new Headers(headers as HeadersInit).forEach((value, name) => {
      merged.set(name, value);
    });
    init.headers = merged;
  }
  return new Request(moved, init);
}

/**
 * Makes a `fetch` whose requests are retried under a backoff policy: each attempt is bounded by
 * `attemptTimeout` (time to the response headers), all attempts and pauses by `deadline`, and the
 * caller's `init.signal` (or the `Request`'s signal) cancels everything.
 *
 * Two forms:
 * - `createFetch(options)`: `Backoff` options and {@link FetchOptions} in one object; builds its own
 *   `Backoff` with `maxTries: 3`, an exponential full-jitter `pause` (100 ms doubling, at most 5 s)
 *   and `maxRetryAfter: 60000` unless given.
 * - `createFetch(backoff, fetchOptions)`: runs through an existing `Backoff` (its timeouts, pauses,
 *   `maxTries`, `giveup`, hooks, budget, instance signal; its statistics count these requests).
 *   Network failures and retriable statuses are retried in addition to its `exceptions`; its
 *   `retryAfter` is consulted when a response has no `Retry-After`; its `giveup` and `policy` see
 *   an {@link HttpStatusError} for a retriable status, its `retryIf` sees the other responses. The
 *   backoff itself is not changed.
 *
 * What is retried: network errors (fetch's `TypeError`), attempt timeouts, and responses whose
 * status is in `statuses` — for idempotent methods (`methods`), requests with an `Idempotency-Key`
 * header, or any method with `retryNonIdempotent`. Other requests get one attempt. A retriable
 * response's `Retry-After` (seconds or HTTP-date) sets the least pause; a hint past the deadline or
 * above `maxRetryAfter` stops at once. Retried responses have their bodies cancelled.
 *
 * The final response is returned as is, whatever its status (set `throwOnStatus` to reject with an
 * {@link HttpStatusError} when it is not ok). Other failures reject with the last error exactly as
 * fetch threw it, or a timeout/cancellation error as `Backoff.execute` does. One exception: when
 * the deadline cuts an attempt short after a retried status response (whose body was already
 * released), the call rejects with that response's {@link HttpStatusError}, as `execute` does.
 * In the backoff's statistics a response returned when out of tries counts as a give-up.
 *
 * Tracing: `onRequest`, `onResponse` and the backoff's `onRetry` hooks, and the
 * `node:diagnostics_channel` channels `asyncbackoff:fetch:request` ({@link FetchRequestEvent}),
 * `asyncbackoff:fetch:response` ({@link FetchResponseEvent}) and `asyncbackoff:fetch:retry`
 * ({@link FetchRetryEvent}), published only when subscribed.
 *
 * @throws TypeError or RangeError (synchronously) for a bad option, naming it and its value.
 * @returns a function with the signature of `fetch`. It rejects with a `TypeError` before sending
 *   when a retriable request has a one-shot body and `bufferBody` is not set.
 *
 * @example
 * ```ts
 * const http = createFetch({
 *   attemptTimeout: 2_000,            // per attempt, until the response headers
 *   deadline: 10_000,                 // everything, pauses included
 *   maxTries: 4,
 *   attempts: [{}, { url: 'https://replica.example.com/v1/items' }], // fail over from attempt 2
 * });
 * const response = await http('https://api.example.com/v1/items', { signal: req.signal });
 * if (!response.ok) throw new Error(`items: ${response.status}`);
 *
 * // Through a shared Backoff (statistics, budget and shutdown signal included):
 * const fetchWithRetry = createFetch(backoff, { statuses: [429, 503] });
 * ```
 */
export function createFetch(options?: CreateFetchOptions): RetryingFetch;
export function createFetch(backoff: Backoff<any>, options?: FetchOptions): RetryingFetch;
export function createFetch(
  first?: CreateFetchOptions | Backoff<any>,
  second?: FetchOptions,
): RetryingFetch {
  let base: Backoff<any>;
  let fetchOptions: FetchOptions;
  if (first instanceof Backoff) {
    base = first;
    fetchOptions = second ?? {};
    checkOptions(
      'createFetch',
      fetchOptions,
      FETCH_KEYS,
      '(with a Backoff given, set policy options on the Backoff)',
    );
  } else {
    if (second !== undefined)
      throw new TypeError(
        `createFetch: a second argument is only accepted after a Backoff, got ${describe(second)}`,
      );
    if (first !== undefined && (typeof first !== 'object' || first === null))
      throw new TypeError(
        `createFetch: expected a Backoff or an options object, got ${describe(first)}`,
      );
    const given = (first ?? {}) as Record<string, unknown>;
    // Checked here, before the split: a copy would drop an inherited or non-enumerable key unseen.
    checkOptions('createFetch', given, CREATE_FETCH_KEYS);
    const backoffOptions: Record<string, unknown> = {};
    const httpOptions: Record<string, unknown> = {};
    for (const key of Object.getOwnPropertyNames(given))
      (FETCH_KEYS.has(key) ? httpOptions : backoffOptions)[key] = given[key];
    if (backoffOptions.maxTries === undefined) backoffOptions.maxTries = 3;
    if (backoffOptions.pause === undefined)
      backoffOptions.pause = exponential({ initial: 100, max: 5_000, jitter: 'full' });
    if (backoffOptions.maxRetryAfter === undefined) backoffOptions.maxRetryAfter = 60_000;
    base = backoffFor<Response>('createFetch', backoffOptions as BackoffOptions<Response>);
    fetchOptions = httpOptions as FetchOptions;
  }
  const config = normalizeFetchOptions(fetchOptions);
  const policy = base.core.policy;
  for (const name of METHOD_NAME_OPTIONS)
    if (typeof policy[name] === 'string')
      throw new TypeError(
        `createFetch: the backoff's '${name}' names a method, got ${describe(policy[name])}; method names only work on decorated methods`,
      );
  if (!policy.context)
    throw new TypeError(
      "createFetch: 'context: false' is not supported: each attempt's request is cancelled through the attempt's signal, which only the attempt context carries",
    );

  const userOnRetry = policy.onRetry as ((event: RetryEvent) => HookResult) | undefined;
  const userRetryAfter = policy.retryAfter;

  const onRetry = async (event: RetryEvent): Promise<void> => {
    const failure = event.kind === 'result' ? event.result : event.error;
    const response =
      failure instanceof HttpStatusError
        ? failure.response
        : event.kind === 'result' && isResponse(failure)
          ? failure
          : undefined;
    const record = isObject(failure)
      ? records.get(response ?? failure)
      : (undefined as AttemptRecord | undefined);
    if (response !== undefined) {
      retried.add(response);
      try {
        if (record !== undefined) await reportResponse(config, record, response, true);
      } finally {
        // Release the connection before the pause (a no-op if the hook read the body).
        await discard(response);
      }
    }
    if (retryChannel.hasSubscribers)
      retryChannel.publish({
        attempt: event.attempt,
        request: record?.request,
        kind: event.kind,
        error: event.error,
        response,
        delay: event.delay,
      } satisfies FetchRetryEvent);
    if (userOnRetry !== undefined) await userOnRetry(event);
  };

  const retryAfter = (outcome: unknown, kind: FailureKind): RetryAfterHint => {
    if (outcome instanceof HttpStatusError) {
      const hint = parseRetryAfter(outcome.response.headers.get('retry-after'));
      if (hint !== undefined) return hint;
    }
    return userRetryAfter?.(outcome, kind);
  };

  const retrying = deriveBackoff<Response>(base, {
    exceptions: Object.freeze([...policy.exceptions, NetworkFailure, HttpStatusError]),
    retryAfter,
    onRetry,
  });
  const once = deriveBackoff<Response>(retrying, { maxTries: 1 });
  const maxTries = policy.maxTries;
  const send = config.fetch ?? ((request: Request) => globalThis.fetch(request));

  return async function retryingFetch(
    input: string | URL | Request,
    init?: RequestInit,
  ): Promise<Response> {
    const isRequest = input instanceof Request;
    const method = (init?.method ?? (isRequest ? input.method : 'GET')).toUpperCase();
    const headers =
      init?.headers !== undefined && init.headers !== null
        ? new Headers(init.headers)
        : isRequest
          ? input.headers
          : undefined;
    const retriable =
      config.retryNonIdempotent ||
      config.methods.has(method) ||
      headers?.has('idempotency-key') === true;
    const callerSignal = init?.signal ?? (isRequest ? input.signal : undefined);
    // What bounds the response body once it is returned: the caller's signal, or else the
    // attempt this call runs in (the engine bounds the retries themselves).
    const outerSignal = callerSignal ?? currentAttempt()?.signal;
    const { signal: _ignored, ...baseInit } = init ?? {};

    // A body that cannot be sent twice: refuse it, or read it once and replay the bytes.
    let replayBody: BodyInit | undefined;
    if (retriable && maxTries > 1) {
      const initBody = init?.body;
      const oneShot =
        initBody !== undefined && initBody !== null
          ? isOneShot(initBody)
          : isRequest && input.body !== null;
      if (oneShot) {
        if (!config.bufferBody)
          throw new TypeError(
            initBody !== undefined && initBody !== null
              ? `createFetch: the request body is a one-shot stream and cannot be replayed on retry; pass a string, ArrayBuffer, Uint8Array, Blob, URLSearchParams or FormData, or set bufferBody: true to read it into memory once`
              : `createFetch: the body of a Request object is a one-shot stream and cannot be replayed on retry; pass the body in init (fetch(url, { method, body })), or set bufferBody: true to read it into memory once`,
          );
        replayBody =
          initBody !== undefined && initBody !== null
            ? await new Response(initBody).arrayBuffer()
            : await (input as Request).arrayBuffer();
      }
    }

    let lastStatusError: HttpStatusError | undefined;

    const attemptFn = async (): Promise<Response> => {
      const context = currentAttempt()!;
      const attempt = context.attempt;
      // AbortSignal.any (Node >= 20.3: the reason for `engines`) holds its sources weakly, so a
      // long-lived caller signal is not left with a listener per attempt.
      const signal =
        outerSignal === undefined || outerSignal === null
          ? context.signal
          : AbortSignal.any([context.signal, outerSignal]);
      const requestInit: RequestInit = { ...baseInit, signal };
      if (replayBody !== undefined) {
        requestInit.body = replayBody;
        delete requestInit.duplex;
      }
      let request = new Request(input, requestInit);
      const changes = config.attempts;
      if (typeof changes === 'function') {
        const changed: unknown = changes(attempt, request);
        if (changed instanceof Request) {
          if (changed !== request) request = new Request(changed, { signal });
        } else if (typeof changed === 'object' && changed !== null)
          request = override(request, changed as FetchAttemptInit, signal);
        else if (changed !== undefined)
          throw new TypeError(
            `createFetch: 'attempts' must return a Request, request overrides or undefined, got ${describe(changed)}`,
          );
      } else if (changes !== undefined)
        request = override(request, changes[Math.min(attempt, changes.length) - 1]!, signal);

      const record: AttemptRecord = { attempt, request };
      const onAbort = () => {
        const reason: unknown = context.signal.reason;
        if (reason instanceof AttemptTimeoutError) records.set(reason, record);
      };
      context.signal.addEventListener('abort', onAbort, { once: true });
      // Removed when the attempt ends. Left on the signal, it would keep `record` (and so the
      // request) reachable from the signal, which undici's Request keeps in a FinalizationRegistry
      // until the request itself is collected: a cycle through the registry that is never
      // collected (the soak measured ~7 KB kept per call).
      try {
        if (requestChannel.hasSubscribers)
          requestChannel.publish({ attempt, request } satisfies FetchRequestEvent);
        if (config.onRequest !== undefined) await config.onRequest({ attempt, request });

        let response: Response;
        try {
          response = await send(request);
        } catch (error) {
          if (context.signal.aborted) throw context.signal.reason;
          if (error instanceof TypeError && retriable) networkErrors.add(error);
          if (isObject(error)) records.set(error, record);
          throw error;
        }
        if (!isResponse(response))
          throw new TypeError(
            `createFetch: 'fetch' must resolve with a Response, got ${describe(response)}`,
          );
        records.set(response, record);
        // Too late: the attempt already ended (timeout, deadline, cancellation).
        if (context.signal.aborted) return await dropped(response, context.signal.reason);
        if (retriable) {
          let verdict: unknown;
          try {
            verdict = config.isRetriableStatus(response);
            // An async predicate is awaited; a synchronous one costs no await.
            if (isThenable(verdict)) verdict = await verdict;
          } catch (error) {
            return await dropped(response, error);
          }
          // The attempt ended while the predicate ran.
          if (context.signal.aborted) return await dropped(response, context.signal.reason);
          if (verdict) {
            lastStatusError = new HttpStatusError(response, attempt);
            throw lastStatusError;
          }
        }
        return response;
      } finally {
        context.signal.removeEventListener('abort', onAbort);
      }
    };

    const backoff = retriable ? retrying : once;
    const runner =
      callerSignal === undefined || callerSignal === null
        ? backoff
        : backoff.withSignal(callerSignal);
    let response: Response;
    try {
      response = await runner.execute(attemptFn);
    } catch (error) {
      const last = lastStatusError;
      // A retried response's body is gone: when the deadline cut a later attempt short, the
      // execution rejects with that response's HttpStatusError, and so do we.
      if (last === undefined || error !== last || retried.has(last.response)) {
        // Cancelled, or a hook failed, while a retriable response was being decided on: drop it.
        if (last !== undefined) {
          reported.add(last.response);
          await discard(last.response);
        }
        throw error;
      }
      // Out of tries or time (or pushback said stop): the last response is the answer.
      response = last.response;
    }
    // Every response an attempt produced has its record (set in attemptFn before it is returned
    // or thrown).
    const record = records.get(response)!;
    try {
      await reportResponse(config, record, response, false);
    } catch (error) {
      return await dropped(response, error);
    }
    if (config.throwOnStatus && !response.ok)
      throw response === lastStatusError?.response
        ? lastStatusError
        : new HttpStatusError(response, record.attempt);
    return response;
  };
}
