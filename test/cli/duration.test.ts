import { describe, expect, it } from 'vitest';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../../src/cli/duration.js';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['0.0', 0],
    ['500ms', 500],
    ['1.4ms', 1],
    ['1.5ms', 2],
    ['2s', 2000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['1s500ms', 1500],
    ['0s', 0],
    ['2147483647ms', MAX_DURATION_MS],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    '-1',
    '-5s',
    '+5s',
    '1e3',
    '5 s',
    ' 5s',
    '5S',
    '5sec',
    '1.',
    '1.5.2s',
    's',
    '1d',
    'Infinity',
    '5',
    '250',
    '0.5',
    'NaN',
    '0x10',
    '1m30',
  ])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(RangeError);
  });

  it('names the text and gives examples', () => {
    expect(() => parseDuration('5sec')).toThrow(/'5sec' is not a duration \(examples: 500ms/);
  });

  it('refuses a bare number other than 0, suggesting seconds or milliseconds', () => {
    expect(() => parseDuration('5')).toThrow("'5' needs a unit: 5s (5000ms) or 5ms");
    expect(() => parseDuration('.5')).toThrow("'.5' needs a unit: .5s (500ms) or .5ms");
  });

  it('refuses a non-zero duration under 1 ms rather than rounding it to 0 or 1', () => {
    for (const text of ['0.4ms', '0.5ms', '.9ms', '0.0001s'])
      expect(() => parseDuration(text)).toThrow(
        new RangeError(`'${text}' is shorter than 1ms: give 0 or at least 1ms`),
      );
    expect(parseDuration('0ms')).toBe(0);
    expect(parseDuration('1ms')).toBe(1);
  });

  it('rejects what setTimeout cannot wait', () => {
    expect(() => parseDuration('2147483648ms')).toThrow(/too long/);
    expect(() => parseDuration('25d')).toThrow(RangeError);
    expect(() => parseDuration('597h')).toThrow(/too long/);
    expect(parseDuration('596h')).toBe(596 * 3_600_000);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [0.4, '0ms'],
    [350, '350ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1234, '1.2s'],
    [1960, '2s'],
    [59_000, '59s'],
    [59_960, '1m0s'],
    [60_000, '1m0s'],
    [125_000, '2m5s'],
    [3_600_000, '1h0m'],
    [5_430_000, '1h31m'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('writes a value that is no finite duration as it is', () => {
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('Infinity');
    expect(formatDuration(Number.NaN)).toBe('NaN');
  });

  it('round-trips its own output for whole seconds and minutes', () => {
    for (const ms of [0, 500, 2000, 90_000, 5_400_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
