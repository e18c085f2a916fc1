/**
 * Classifying network failures by their `code`: Node's socket and DNS errors and undici's (what
 * `fetch` throws as the `cause` of its `TypeError`) carry a string `code` and no class of their own,
 * so an `exceptions` list cannot single them out; `retryOn: isTransientNetworkError` can.
 */

/**
 * Codes of failures that say nothing about the request itself: the connection could not be made,
 * or was lost, or a name did not resolve for now. Another try may well succeed.
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  // Sockets (libuv / Node).
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'ENOTCONN',
  // DNS: a lookup that failed for now.
  'EAI_AGAIN',
  // undici (fetch).
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** How deep a `cause` chain is followed; a cycle or a pathological chain ends the walk. */
const MAX_CAUSE_DEPTH = 8;

/**
 * Whether `error`, or an error in its `cause` chain (or inside an `AggregateError`, as Node's
 * happy-eyeballs connect reports several addresses), is a transient network failure: a socket
 * that could not connect or was reset, a host or network unreachable, a DNS lookup that failed for
 * now (`EAI_AGAIN`), or undici's socket and connect-timeout errors. Errors about the request
 * itself (an HTTP status, a TLS certificate, `ENOTFOUND`) are not transient.
 *
 * @example
 * ```ts
 * const api = new Backoff({ maxTries: 4, pause: exponential({ initial: 100, jitter: 'full' }),
 *   retryOn: isTransientNetworkError });
 * ```
 */
export function isTransientNetworkError(error: unknown): boolean {
  return hasCode(error, TRANSIENT_CODES, 0);
}

/** @internal Whether `error`, its causes or its aggregated errors carry one of `codes`. */
export function hasCode(error: unknown, codes: ReadonlySet<string>, depth: number): boolean {
  if (depth > MAX_CAUSE_DEPTH || typeof error !== 'object' || error === null) return false;
  const { code, cause, errors } = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string' && codes.has(code)) return true;
  if (Array.isArray(errors))
    for (const inner of errors) if (hasCode(inner, codes, depth + 1)) return true;
  return cause !== undefined && cause !== error && hasCode(cause, codes, depth + 1);
}
