import { describe, expect, it, vi } from 'vitest';
import { isTransientNetworkError } from '../src/index.js';

function coded(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe('isTransientNetworkError', () => {
  it.each([
    'ECONNRESET',
    'ECONNREFUSED',
    'EPIPE',
    'ETIMEDOUT',
    'EAI_AGAIN',
    'ENETUNREACH',
    'EHOSTUNREACH',
    'ECONNABORTED',
    'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT',
  ])('%s is transient', (code) => {
    expect(isTransientNetworkError(coded(code))).toBe(true);
  });

  it.each(['ENOTFOUND', 'CERT_HAS_EXPIRED', 'ERR_INVALID_URL', '23505', 'EACCES'])(
    '%s is not',
    (code) => {
      expect(isTransientNetworkError(coded(code))).toBe(false);
    },
  );

  it('follows cause chains (fetch wraps undici errors in a TypeError)', () => {
    const error = new TypeError('fetch failed', {
      cause: new Error('other side closed', { cause: coded('UND_ERR_SOCKET') }),
    });
    expect(isTransientNetworkError(error)).toBe(true);
  });

  it('looks inside AggregateError (connect attempts to several addresses)', () => {
    const error = new AggregateError([coded('ENOTFOUND'), coded('ECONNREFUSED')], 'connect');
    expect(isTransientNetworkError(error)).toBe(true);
  });

  it('ends on cyclic or very deep chains, and on non-objects', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isTransientNetworkError(a)).toBe(false);
    let deep: unknown = coded('ECONNRESET');
    for (let i = 0; i < 20; i++) deep = new Error(`wrap ${i}`, { cause: deep });
    expect(isTransientNetworkError(deep)).toBe(false);
    for (const value of [undefined, null, 'ECONNRESET', 42, { code: 42 }])
      expect(isTransientNetworkError(value)).toBe(false);
    expect(isTransientNetworkError({ code: 'ECONNRESET' })).toBe(true);
  });
});

describe('isTransientNetworkError: the codes it knows', () => {
  // The set of codes is built when the module is evaluated, so the module is evaluated afresh here.
  async function freshClassifier(): Promise<(error: unknown) => boolean> {
    vi.resetModules();
    return (await import('../src/network-errors.js')).isTransientNetworkError;
  }

  const transient = [
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
    'EAI_AGAIN',
    'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT',
    'UND_ERR_HEADERS_TIMEOUT',
    'UND_ERR_BODY_TIMEOUT',
    'UND_ERR_CLOSED',
  ];

  it('classifies every socket, DNS and undici code of a lost or failed connection as transient', async () => {
    const isTransient = await freshClassifier();
    for (const code of transient) expect([code, isTransient(coded(code))]).toEqual([code, true]);
  });

  it('does not classify an empty code, or codes about the request itself, as transient', async () => {
    const isTransient = await freshClassifier();
    for (const code of ['', 'ENOTFOUND', 'EAI_NONAME', 'EACCES', 'UND_ERR_ABORTED', 'econnreset'])
      expect([code, isTransient(coded(code))]).toEqual([code, false]);
  });
});

describe('isTransientNetworkError: how deep it looks', () => {
  function wrapped(error: unknown, times: number): unknown {
    let outer = error;
    for (let i = 0; i < times; i++) outer = new Error(`wrap ${i}`, { cause: outer });
    return outer;
  }

  function aggregated(error: unknown, times: number): unknown {
    let outer = error;
    for (let i = 0; i < times; i++) outer = new AggregateError([outer], `level ${i}`);
    return outer;
  }

  it('finds a code 8 causes down, and not 9 causes down', () => {
    expect(isTransientNetworkError(wrapped(coded('ECONNRESET'), 8))).toBe(true);
    expect(isTransientNetworkError(wrapped(coded('ECONNRESET'), 9))).toBe(false);
  });

  it('counts each AggregateError level towards the same limit', () => {
    expect(isTransientNetworkError(aggregated(coded('ECONNRESET'), 8))).toBe(true);
    expect(isTransientNetworkError(aggregated(coded('ECONNRESET'), 9))).toBe(false);
    expect(isTransientNetworkError(wrapped(aggregated(coded('EPIPE'), 4), 4))).toBe(true);
    expect(isTransientNetworkError(wrapped(aggregated(coded('EPIPE'), 5), 4))).toBe(false);
  });

  it('does not follow an error that is its own cause', () => {
    let reads = 0;
    const error = new Error('self');
    Object.defineProperty(error, 'cause', {
      get() {
        reads++;
        return error;
      },
    });
    expect(isTransientNetworkError(error)).toBe(false);
    expect(reads).toBe(1);
  });
});
