import { describe, expect, it } from 'vitest';
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
