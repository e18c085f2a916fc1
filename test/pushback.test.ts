/**
 * Server pushback: the header parsers, the default extractor, and how a hint shapes the pauses of
 * a Backoff (driven by a fake clock, so every time is exact).
 */
import FakeTimers from '@sinonjs/fake-timers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Backoff, type GiveupEvent } from '../src/index.js';
import {
  parseGrpcPushback,
  parseRetryAfter,
  pushbackDelay,
  REFUSE_RETRY,
  retryAfterFrom,
} from '../src/pushback.js';
import { MAX_TIMER_MS } from '../src/validate.js';

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

describe('parseRetryAfter: edges of the date forms', () => {
  it('reads an RFC 850 two-digit year exactly 50 years ahead as this century', () => {
    expect(parseRetryAfter('Tuesday, 15-Jan-75 12:00:00 GMT', NOW)).toBe(
      Date.UTC(2075, 0, 15, 12) - NOW,
    );
  });

  it('accepts hour 23, minute 59 and a leap second 60, and rejects minute 60 and second 61', () => {
    expect(parseRetryAfter('Wed, 15 Jan 2025 23:00:00 GMT', NOW)).toBe(11 * 3_600_000);
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:59:00 GMT', NOW)).toBe(59 * 60_000);
    // 12:00:60 is the leap second just before 12:01:00.
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:00:60 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:60:00 GMT', NOW)).toBeUndefined();
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:00:61 GMT', NOW)).toBeUndefined();
  });
});

describe('the parsers as the module builds them (evaluated inside the test)', () => {
  const MONTH_NAMES = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ');

  it('reads delta-seconds only when the whole value is digits', async () => {
    vi.resetModules();
    const fresh = await import('../src/pushback.js');
    expect(fresh.parseRetryAfter('7', NOW)).toBe(7000);
    expect(fresh.parseRetryAfter('120', NOW)).toBe(120_000);
    expect(fresh.parseRetryAfter('-1', NOW)).toBeUndefined();
    expect(fresh.parseRetryAfter('1.5', NOW)).toBeUndefined();
    expect(fresh.parseRetryAfter('12s', NOW)).toBeUndefined();
  });

  it('reads each HTTP-date form, in any letter case', async () => {
    vi.resetModules();
    const { parseRetryAfter: parse } = await import('../src/pushback.js');
    expect(parse('Wed, 15 Jan 2025 12:00:30 GMT', NOW)).toBe(30_000);
    expect(parse('wed, 15 JAN 2025 12:00:30 gmt', NOW)).toBe(30_000);
    expect(parse('Wednesday, 15-Jan-25 12:01:00 GMT', NOW)).toBe(60_000);
    expect(parse('WEDNESDAY, 15-jan-25 12:01:00 gmt', NOW)).toBe(60_000);
    expect(parse('Wed Jan 15 12:00:05 2025', NOW)).toBe(5000);
    expect(parse('wed JAN 15 12:00:05 2025', NOW)).toBe(5000);
    expect(parse('Wed Jan  1 00:00:00 2025', 0)).toBe(Date.UTC(2025, 0, 1));
  });

  it('maps every month name to its month', async () => {
    vi.resetModules();
    const { parseRetryAfter: parse } = await import('../src/pushback.js');
    MONTH_NAMES.forEach((name, index) => {
      expect(parse(`Mon, 02 ${name} 2051 03:04:05 GMT`, 0)).toBe(Date.UTC(2051, index, 2, 3, 4, 5));
      expect(parse(`Monday, 02-${name}-51 03:04:05 GMT`, Date.UTC(2025, 0))).toBe(
        Date.UTC(2051, index, 2, 3, 4, 5) - Date.UTC(2025, 0),
      );
      expect(parse(`Mon ${name}  2 03:04:05 2051`, 0)).toBe(Date.UTC(2051, index, 2, 3, 4, 5));
    });
  });

  it('a positive hint of 1 ms is a pause, not "do not retry"', async () => {
    vi.resetModules();
    const fresh = await import('../src/index.js');
    const clock = FakeTimers.install({ now: NOW, toNotFake: ['nextTick', 'queueMicrotask'] });
    try {
      const onGiveup = vi.fn();
      const backoff = new fresh.Backoff({ retryAll: true, retryAfter: () => 1, onGiveup });
      const calls: number[] = [];
      const done = backoff.execute(async () => {
        calls.push(Date.now() - NOW);
        if (calls.length === 1) throw new Error('busy');
        return 'ok';
      });
      await clock.tickAsync(1);
      await expect(done).resolves.toBe('ok');
      expect(calls).toEqual([0, 1]);
      expect(onGiveup).not.toHaveBeenCalled();
    } finally {
      clock.uninstall();
    }
  });
});

describe('parseGrpcPushback: whitespace', () => {
  it('ignores leading and trailing whitespace', () => {
    expect(parseGrpcPushback(' 250 ')).toBe(250);
    expect(parseGrpcPushback('\t0\n')).toBe(0);
  });
});

describe('retryAfterFrom: where it looks', () => {
  it('reads hints from a function object too (a callable error or response)', () => {
    expect(retryAfterFrom(Object.assign(() => {}, { retryAfter: 500 }))).toBe(500);
    expect(retryAfterFrom(Object.assign(() => {}, { retryAfterMs: 250 }))).toBe(250);
  });

  it('prefers the exact lower-case header name over other spellings in a plain record', () => {
    expect(retryAfterFrom({ headers: { 'Retry-After': '9', 'retry-after': '5' } })).toBe(5000);
  });

  it('goes on to the gRPC metadata when the headers have no usable Retry-After', () => {
    const metadata = { get: () => ['150'] };
    expect(retryAfterFrom({ headers: new Headers(), metadata })).toBe(150);
    expect(retryAfterFrom({ headers: { 'retry-after': 7 }, metadata })).toBe(150);
  });

  it('ignores metadata without a get method', () => {
    expect(retryAfterFrom({ metadata: { 'grpc-retry-pushback-ms': '5' } })).toBeUndefined();
    expect(retryAfterFrom({ metadata: { get: '5' }, retryAfterMs: undefined })).toBeUndefined();
  });

  it('works where the runtime has no global Response', () => {
    vi.stubGlobal('Response', undefined);
    try {
      expect(retryAfterFrom({ retryAfterMs: 5 })).toBe(5);
      expect(retryAfterFrom({ headers: { 'retry-after': '1' } })).toBe(1000);
      expect(retryAfterFrom({ response: { headers: { 'retry-after': '2' } } })).toBe(2000);
      expect(retryAfterFrom({ response: {} })).toBeUndefined();
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe('pushbackDelay', () => {
  it('gives no hint (undefined) for an invalid Date, and the ms for a valid one', () => {
    expect(pushbackDelay(new Date(Number.NaN), Number.POSITIVE_INFINITY)).toBeUndefined();
    expect(pushbackDelay(new Date(Date.now() - 1000), Number.POSITIVE_INFINITY)).toBe(0);
  });

  it('refuses a hint longer than setTimeout can wait, and takes one exactly that long', () => {
    expect(pushbackDelay(MAX_TIMER_MS + 1, Number.POSITIVE_INFINITY)).toBe(REFUSE_RETRY);
    expect(pushbackDelay(MAX_TIMER_MS, Number.POSITIVE_INFINITY)).toBe(MAX_TIMER_MS);
  });
});

describe('pushback through Backoff: the hint values', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  beforeEach(() => {
    clock = FakeTimers.install({ now: NOW, toNotFake: ['nextTick', 'queueMicrotask'] });
  });
  afterEach(() => {
    clock.uninstall();
  });

  /** Fails once with 'busy', then resolves 'ok'; records call times. */
  function failingOnce() {
    const calls: number[] = [];
    const error = new Error('busy');
    const fn = async () => {
      calls.push(Date.now() - NOW);
      if (calls.length === 1) throw error;
      return 'ok';
    };
    return { fn, calls, error };
  }

  it('takes a null hint as no hint: the pause applies', async () => {
    const backoff = new Backoff({ retryAll: true, pause: 30, retryAfter: () => null });
    const { fn, calls } = failingOnce();
    const done = backoff.execute(fn);
    await clock.tickAsync(30);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, 30]);
  });

  it('takes a hint of 0 as no longer pause, not as "do not retry"', async () => {
    const onGiveup = vi.fn();
    const backoff = new Backoff({ retryAll: true, pause: 10, retryAfter: () => 0, onGiveup });
    const { fn, calls } = failingOnce();
    const done = backoff.execute(fn);
    await clock.tickAsync(10);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, 10]);
    expect(onGiveup).not.toHaveBeenCalled();
  });

  it('gives up at once on any negative hint, not only -1', async () => {
    const onGiveup = vi.fn<(event: GiveupEvent) => void>();
    const backoff = new Backoff({ retryAll: true, pause: 10, retryAfter: () => -5, onGiveup });
    const { fn, calls, error } = failingOnce();
    const done = backoff.execute(fn);
    const settled = vi.fn();
    done.then(settled, settled);
    await clock.tickAsync(0);
    expect(settled).toHaveBeenCalledWith(error);
    expect(calls).toEqual([0]);
    expect(onGiveup.mock.calls[0]![0].reason).toBe('pushback');
  });

  it('gives up at once on a hint longer than setTimeout can wait, with no maxRetryAfter', async () => {
    const onGiveup = vi.fn<(event: GiveupEvent) => void>();
    const backoff = new Backoff({
      retryAll: true,
      retryAfter: () => MAX_TIMER_MS + 1,
      onGiveup,
    });
    const { fn, calls, error } = failingOnce();
    const done = backoff.execute(fn);
    const settled = vi.fn();
    done.then(settled, settled);
    await clock.tickAsync(0);
    expect(settled).toHaveBeenCalledWith(error);
    expect(calls).toEqual([0]);
    expect(onGiveup.mock.calls[0]![0].reason).toBe('pushback');
  });

  it('waits out a hint of exactly the longest setTimeout delay', async () => {
    const backoff = new Backoff({ retryAll: true, retryAfter: () => MAX_TIMER_MS });
    const { fn, calls } = failingOnce();
    const done = backoff.execute(fn);
    await clock.tickAsync(MAX_TIMER_MS);
    await expect(done).resolves.toBe('ok');
    expect(calls).toEqual([0, MAX_TIMER_MS]);
  });

  it('rejects with a TypeError naming what the extractor returned when it is not a hint', async () => {
    const backoff = new Backoff({ retryAll: true, retryAfter: () => 'soon' as never });
    const { fn, calls } = failingOnce();
    const done = backoff.execute(fn);
    done.catch(() => {});
    await clock.tickAsync(0);
    await expect(done).rejects.toBeInstanceOf(TypeError);
    await expect(done).rejects.toHaveProperty(
      'message',
      "Backoff: 'retryAfter' must return milliseconds, a Date, null or undefined, got 'soon' (a string)",
    );
    expect(calls).toEqual([0]);
  });
});
