import { expect, describe as group, it } from 'vitest';
import { Backoff } from '../src/index.js';
import { checkOptions, checkTime, describe, MAX_TIMER_MS } from '../src/validate.js';

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('did not throw');
}

group('describe', () => {
  it.each([
    [-1, '-1'],
    ['abc', "'abc' (a string)"],
    [true, 'true (a boolean)'],
    [10n, '10 (a bigint)'],
    [null, 'null'],
    [undefined, 'undefined'],
    [[], 'an array'],
    [new Map(), 'an object (Map)'],
  ])('%s reads %s', (value, text) => {
    expect(describe(value)).toBe(text);
  });
});

group('checkOptions', () => {
  it('accepts known keys, from an array or a set', () => {
    expect(() => checkOptions('f', { a: 1 }, ['a', 'b'])).not.toThrow();
    expect(() => checkOptions('f', { b: 1 }, new Set(['a', 'b']))).not.toThrow();
  });

  it('refuses an unknown key, with the hint when one is given', () => {
    expect(thrown(() => checkOptions('f', { c: 1 }, ['a']))).toEqual(
      new TypeError("f: unknown option 'c'"),
    );
    expect(thrown(() => checkOptions('f', { c: 1 }, new Set(['a']), '(see g)'))).toEqual(
      new TypeError("f: unknown option 'c' (see g)"),
    );
  });

  it.each([null, 1, 'x', []])('refuses %j as options', (options) => {
    const error = thrown(() => checkOptions('f', options, []));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`f: options must be an object, got ${describe(options)}`);
  });
});

group('checkTime', () => {
  it('returns a time in [0, MAX_TIMER_MS], fractions included', () => {
    expect(checkTime('f', 't', 0)).toBe(0);
    expect(checkTime('f', 't', 1.5)).toBe(1.5);
    expect(checkTime('f', 't', MAX_TIMER_MS)).toBe(MAX_TIMER_MS);
  });

  it('refuses a non-number with a TypeError and an out-of-range number with a RangeError', () => {
    expect(thrown(() => checkTime('f', 't', '5'))).toEqual(
      new TypeError("f: 't' must be a number of milliseconds, got '5' (a string)"),
    );
    for (const value of [-1, -0, Number.NaN, Number.POSITIVE_INFINITY, MAX_TIMER_MS + 1]) {
      const error = thrown(() => checkTime('f', 't', value));
      expect(error).toBeInstanceOf(RangeError);
      expect(error.message).toBe(
        `f: 't' must be a finite number >= 0 and <= ${MAX_TIMER_MS}, got ${describe(value)}`,
      );
    }
  });
});

group('option checks through Backoff', () => {
  it('names a symbol by its description', () => {
    expect(() => new Backoff({ maxTries: Symbol('three') as never })).toThrow(
      /got a symbol \(three\)/,
    );
  });

  it('refuses options inherited from a prototype: only own properties are read', () => {
    const inherited = Object.create({ maxTries: 2 }) as object;
    expect(() => new Backoff(inherited)).toThrow(
      new TypeError(
        "Backoff: option 'maxTries' is inherited from a prototype; pass options as own properties",
      ),
    );
  });
});
