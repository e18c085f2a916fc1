/**
 * Server pushback: the header parsers, the default extractor, and how a hint shapes the pauses of
 * a Backoff (driven by a fake clock, so every time is exact).
 */
import FakeTimers from '@sinonjs/fake-timers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Backoff, type GiveupEvent } from '../src/index.js';
import { parseGrpcPushback, parseRetryAfter, retryAfterFrom } from '../src/pushback.js';

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0); // Wed, 15 Jan 2025 12:00:00 GMT

describe('parseRetryAfter', () => {
  it('reads delta-seconds as milliseconds', () => {
    expect(parseRetryAfter('0')).toBe(0);
    expect(parseRetryAfter('1')).toBe(1000);
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter('  7 ')).toBe(7000);
    expect(parseRetryAfter('007')).toBe(7000);
  });

  it('reads an IMF-fixdate as the time until then', () => {
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:00:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Thu, 16 Jan 2025 12:00:00 GMT', NOW)).toBe(86_400_000);
  });

  it('gives 0 for a date in the past', () => {
    expect(parseRetryAfter('Tue, 14 Jan 2025 12:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(0);
  });

  it('accepts the obsolete RFC 850 and asctime forms (in GMT)', () => {
    expect(parseRetryAfter('Wednesday, 15-Jan-25 12:01:00 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Wed Jan 15 12:00:05 2025', NOW)).toBe(5000);
    expect(parseRetryAfter('Wed Jan  1 00:00:00 2025', NOW)).toBe(0);
    // Two-digit year more than 50 years ahead: the previous century.
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Thursday, 15-Jan-70 12:00:00 GMT', NOW)).toBe(
      Date.UTC(2070, 0, 15, 12) - NOW,
    );
  });

  it('uses Date.now() by default', () => {
    const inOneMinute = new Date(Date.now() + 61_000).toUTCString();
    const ms = parseRetryAfter(inOneMinute)!;
    expect(ms).toBeGreaterThan(59_000);
    expect(ms).toBeLessThanOrEqual(61_000);
  });

  it.each([
    [undefined],
    [null],
    [''],
    ['   '],
    ['-1'],
    ['1.5'],
    ['1e3'],
    ['+5'],
    ['0x10'],
    ['soon'],
    ['2025-01-15T12:00:30Z'], // ISO 8601 is not an HTTP-date, though Date.parse takes it
    ['15 Jan 2025 12:00:30 GMT'],
    ['Wed, 15 Jan 2025 12:00:30 UTC'],
    ['Wed, 31 Feb 2025 12:00:30 GMT'],
    ['Wed, 15 Jan 2025 25:00:30 GMT'],
    ['Wed, 15 Foo 2025 12:00:30 GMT'],
  ])('rejects %j', (value) => {
    expect(parseRetryAfter(value as string | null | undefined, NOW)).toBeUndefined();
  });
});

describe('parseRetryAfter: out of range', () => {
  it('gives no hint for delta-seconds too large to be a number of milliseconds', () => {
    expect(parseRetryAfter('9'.repeat(400))).toBeUndefined();
  });
});

describe('parseGrpcPushback', () => {
  it('reads non-negative integers as milliseconds', () => {
    expect(parseGrpcPushback('0')).toBe(0);
    expect(parseGrpcPushback('250')).toBe(250);
  });

  it('treats a negative or malformed value as "do not retry" (-1)', () => {
    expect(parseGrpcPushback('-1')).toBe(-1);
    expect(parseGrpcPushback('-250')).toBe(-1);
    expect(parseGrpcPushback('abc')).toBe(-1);
    expect(parseGrpcPushback('')).toBe(-1);
    expect(parseGrpcPushback('1.5')).toBe(-1);
  });

  it('treats a non-string value or one too large for a number as "do not retry" (-1)', () => {
    expect(parseGrpcPushback(250 as never)).toBe(-1);
    expect(parseGrpcPushback('9'.repeat(400))).toBe(-1);
  });

  it('gives no hint for an absent value', () => {
    expect(parseGrpcPushback(undefined)).toBeUndefined();
    expect(parseGrpcPushback(null)).toBeUndefined();
  });
});

describe('retryAfterFrom', () => {
  it('reads retryAfter (ms, Date or header string) and retryAfterMs', () => {
    const date = new Date(NOW);
    expect(retryAfterFrom({ retryAfter: 500 })).toBe(500);
    expect(retryAfterFrom({ retryAfter: date })).toBe(date);
    expect(retryAfterFrom({ retryAfter: '3' })).toBe(3000);
    expect(retryAfterFrom({ retryAfterMs: 250 })).toBe(250);
    expect(retryAfterFrom(Object.assign(new Error('busy'), { retryAfter: -1 }))).toBe(-1);
  });

  it("reads a Response's Retry-After header", () => {
    expect(
      retryAfterFrom(new Response(null, { status: 503, headers: { 'retry-after': '2' } })),
    ).toBe(2000);
    expect(retryAfterFrom(new Response(null, { status: 503 }))).toBeUndefined();
  });

  it("reads an error's response (a Response, or axios/got style headers)", () => {
    const response = new Response(null, { status: 429, headers: { 'Retry-After': '4' } });
    expect(retryAfterFrom(Object.assign(new Error('429'), { response }))).toBe(4000);
    expect(retryAfterFrom({ response: { headers: { 'retry-after': '5' } } })).toBe(5000);
    expect(retryAfterFrom({ response: { headers: { 'retry-after': ['6'] } } })).toBe(6000);
    expect(retryAfterFrom({ headers: new Headers({ 'retry-after': '1' }) })).toBe(1000);
  });

  it('reads gRPC pushback from metadata', () => {
    const metadata = (value: string[]) => ({
      get: (key: string) => (key === 'grpc-retry-pushback-ms' ? value : []),
    });
    expect(retryAfterFrom({ metadata: metadata(['150']) })).toBe(150);
    expect(retryAfterFrom({ metadata: metadata(['-1']) })).toBe(-1);
    expect(retryAfterFrom({ metadata: metadata([]) })).toBeUndefined();
  });

  it('reads gRPC pushback from metadata returning a single value; a binary value means "do not retry"', () => {
    expect(retryAfterFrom({ metadata: { get: () => '75' } })).toBe(75);
    expect(retryAfterFrom({ metadata: { get: () => [Buffer.from('75')] } })).toBe(-1);
    expect(retryAfterFrom({ metadata: { get: () => null } })).toBeUndefined();
  });

  it('skips an invalid Date in retryAfter and looks further', () => {
    expect(retryAfterFrom({ retryAfter: new Date(Number.NaN), retryAfterMs: 40 })).toBe(40);
    expect(retryAfterFrom({ retryAfter: new Date(Number.NaN) })).toBeUndefined();
  });

  it('gives nothing for anything else', () => {
    for (const value of [undefined, null, 0, 'x', new Error('x'), {}, { retryAfter: Number.NaN }])
      expect(retryAfterFrom(value)).toBeUndefined();
  });
});

describe('pushback through Backoff', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  beforeEach(() => {
    clock = FakeTimers.install({ now: NOW, toNotFake: ['nextTick', 'queueMicrotask'] });
  });
  afterEach(() => {
    clock.uninstall();
  });

  class BusyError extends Error {
    constructor(readonly retryAfter?: number | Date) {
      super('busy');
    }
  }

  /** A function that fails with the given errors in turn, then resolves 'ok'; records call times. */
  function failing(...errors: unknown[]) {
    const calls: number[] = [];
    const fn = vi.fn(async () => {
      calls.push(Date.now() - NOW);
      if (calls.length <= errors.length) throw errors[calls.length - 1];
      return 'ok';
    });
    return { fn, calls };
  }

  it('makes the next pause at least the hint', async () => {
    const backoff = new Backoff({ pause: 10, exceptions: [BusyError], retryAfter: retryAfterFrom });
    const { fn, calls } = failing(new BusyError(500));
    const done = backoff.execute(fn);
    await clock.tickAsync(499);
    expect(calls).toEqual([0]);
    await clock.tickAsync(1);
    expect(calls).toEqual([0, 500]);
    await expect(done).resolves.toBe('ok');
  });

  it('keeps a strategy delay larger than the hint', async () => {
    const backoff = new Backoff({
      pause: 800,
      exceptions: [BusyError],
      retryAfter: retryAfterFrom,
    });
    const { fn, calls } = failing(new BusyError(500));
    const done = backoff.execute(fn);
    await clock.tickAsync(800);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, 800]);
  });

  it('takes a Date as the hint', async () => {
    const backoff = new Backoff({ pause: 10, exceptions: [BusyError], retryAfter: retryAfterFrom });
    const { fn, calls } = failing(new BusyError(new Date(NOW + 1500)));
    const done = backoff.execute(fn);
    await clock.tickAsync(1500);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, 1500]);
  });

  it('takes an HTTP Retry-After header through parseRetryAfter', async () => {
    const backoff = new Backoff({
      exceptions: [BusyError],
      retryAfter: (error) => parseRetryAfter((error as { header?: string }).header),
    });
    const error = Object.assign(new BusyError(), { header: 'Wed, 15 Jan 2025 12:00:02 GMT' });
    const { fn, calls } = failing(error);
    const done = backoff.execute(fn);
    await clock.tickAsync(2000);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, 2000]);
  });

  it('rejects at once with the last error when the hint passes the deadline', async () => {
    const onGiveup = vi.fn<(event: GiveupEvent) => void>();
    const backoff = new Backoff({
      deadline: 1000,
      pause: 10,
      exceptions: [BusyError],
      retryAfter: retryAfterFrom,
      onGiveup,
    });
    const error = new BusyError(5000);
    const { fn } = failing(error);
    const done = backoff.execute(fn);
    const settled = vi.fn();
    done.then(settled, settled);
    await clock.tickAsync(0);
    expect(settled).toHaveBeenCalledWith(error);
    expect(Date.now() - NOW).toBe(0);
    await expect(done).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(onGiveup.mock.calls[0]![0].reason).toBe('deadline');
  });

  it('rejects at once on a negative hint ("do not retry"), reason pushback', async () => {
    const onGiveup = vi.fn<(event: GiveupEvent) => void>();
    const backoff = new Backoff({
      pause: 10,
      exceptions: [BusyError],
      retryAfter: retryAfterFrom,
      onGiveup,
    });
    const error = new BusyError(-1);
    const { fn } = failing(error);
    const done = backoff.execute(fn);
    const settled = vi.fn();
    done.then(settled, settled);
    await clock.tickAsync(0);
    expect(settled).toHaveBeenCalledWith(error);
    await expect(done).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(onGiveup).toHaveBeenCalledTimes(1);
    expect(onGiveup.mock.calls[0]![0]).toMatchObject({ reason: 'pushback', error, attempt: 1 });
  });

  it('rejects at once when the hint exceeds maxRetryAfter, reason pushback', async () => {
    const onGiveup = vi.fn<(event: GiveupEvent) => void>();
    const backoff = new Backoff({
      pause: 10,
      exceptions: [BusyError],
      retryAfter: retryAfterFrom,
      maxRetryAfter: 1000,
      onGiveup,
    });
    const error = new BusyError(1001);
    const { fn } = failing(error);
    const done = backoff.execute(fn);
    const settled = vi.fn();
    done.then(settled, settled);
    await clock.tickAsync(0);
    expect(settled).toHaveBeenCalledWith(error);
    await expect(done).rejects.toBe(error);
    expect(onGiveup.mock.calls[0]![0].reason).toBe('pushback');
  });

  it('honours a hint equal to maxRetryAfter', async () => {
    const backoff = new Backoff({
      exceptions: [BusyError],
      retryAfter: retryAfterFrom,
      maxRetryAfter: 1000,
    });
    const { fn, calls } = failing(new BusyError(1000));
    const done = backoff.execute(fn);
    await clock.tickAsync(1000);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, 1000]);
  });

  it('falls back to the pause when the extractor returns an invalid Date', async () => {
    const backoff = new Backoff({
      pause: 30,
      exceptions: [BusyError],
      retryAfter: () => new Date(Number.NaN),
    });
    const { fn, calls } = failing(new BusyError());
    const done = backoff.execute(fn);
    await clock.tickAsync(30);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, 30]);
  });

  it('falls back to the pause when there is no hint', async () => {
    const backoff = new Backoff({ pause: 30, exceptions: [BusyError], retryAfter: retryAfterFrom });
    const { fn, calls } = failing(new BusyError());
    const done = backoff.execute(fn);
    await clock.tickAsync(30);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, 30]);
  });

  it('takes the hint from a result marked by retryIf', async () => {
    type Poll = { status: 'pending' | 'done'; retryAfterMs?: number };
    const results: Poll[] = [
      { status: 'pending', retryAfterMs: 700 },
      { status: 'pending', retryAfterMs: 300 },
      { status: 'done' },
    ];
    const calls: number[] = [];
    const backoff = new Backoff<Poll>({
      pause: 10,
      retryIf: (result) => result.status === 'pending',
      retryAfter: retryAfterFrom,
    });
    const done = backoff.execute(async () => {
      calls.push(Date.now() - NOW);
      return results[calls.length - 1]!;
    });
    await clock.tickAsync(1000);
    await expect(done).resolves.toEqual({ status: 'done' });
    expect(calls).toEqual([0, 700, 1000]);
  });

  it('passes the failure kind to the extractor', async () => {
    const retryAfter = vi.fn(() => 50);
    const backoff = new Backoff({ attemptTimeout: 100, retryAfter, maxTries: 2 });
    const done = backoff.execute(() => new Promise<never>(() => {}));
    const settled = vi.fn();
    done.then(settled, settled);
    await clock.tickAsync(250);
    expect(retryAfter).toHaveBeenCalledTimes(1);
    expect(retryAfter.mock.calls[0]).toEqual([expect.any(Error), 'timeout']);
    await expect(done).rejects.toMatchObject({ name: 'AttemptTimeoutError', attempt: 2 });
  });
});

describe('retryAfterFrom on plain header records', () => {
  it('finds Retry-After in any letter case, as HTTP header names are case-insensitive', () => {
    expect(retryAfterFrom({ headers: { 'Retry-After': '3' } })).toBe(3000);
    expect(retryAfterFrom({ headers: { 'RETRY-AFTER': '4' } })).toBe(4000);
    expect(retryAfterFrom({ response: { headers: { 'Retry-after': ['5'] } } })).toBe(5000);
  });

  it('finds it among other headers, and ignores a value that is not a string', () => {
    expect(retryAfterFrom({ headers: { 'Content-Type': 'text/plain', 'RETRY-AFTER': '6' } })).toBe(
      6000,
    );
    expect(retryAfterFrom({ headers: { 'content-type': 'text/plain' } })).toBeUndefined();
    expect(retryAfterFrom({ headers: { 'retry-after': 7 } })).toBeUndefined();
  });
});
