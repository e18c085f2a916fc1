import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  constant,
  delays,
  exponential,
  fibonacci,
  fromFunction,
  isDelayStrategy,
  type Jitter,
  linear,
  randomBetween,
  resolveDelay,
  seededRandom,
} from '../src/delays.js';
import type { DelayContext, DelayStrategy } from '../src/types.js';

const MAX_TIMER_MS = 2_147_483_647;
const JITTERS: readonly Jitter[] = ['none', 'full', 'equal', 'decorrelated'];

/** A random source for strategies that must not draw. */
function noDraw(): number {
  throw new Error('no random draw expected');
}

// One shared error: building an Error (and its stack) per call would dominate the property tests.
const failure = new Error('boom');

function context(
  attempt: number,
  random: () => number = noDraw,
  previousDelay: number | undefined = undefined,
): DelayContext {
  return {
    attempt,
    fails: attempt,
    kind: 'error',
    error: failure,
    result: undefined,
    previousDelay,
    elapsed: 0,
    remaining: Number.POSITIVE_INFINITY,
    random,
  };
}

/** Runs one execution's worth of pauses, feeding each pause back as `previousDelay`, as the engine does. */
function run(strategy: DelayStrategy, attempts: number, random: () => number = noDraw): number[] {
  const out: number[] = [];
  let previous: number | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    previous = strategy.delay(context(attempt, random, previous));
    out.push(previous);
  }
  return out;
}

/** The documented jitter formulas, applied to the jitter-free delays `raw`, drawing from `random`. */
function expectedJitter(
  jitter: Jitter,
  raw: readonly number[],
  random: () => number,
  base: number,
  max: number,
): number[] {
  const out: number[] = [];
  let previous: number | undefined;
  for (const d of raw) {
    let value: number;
    if (jitter === 'none') value = d;
    else if (jitter === 'full') value = d * random();
    else if (jitter === 'equal') value = Math.min(d, d / 2 + (d / 2) * random());
    else {
      const high = Math.max(base, 3 * (previous ?? base));
      value = Math.min(max, base + (high - base) * random());
    }
    out.push(value);
    previous = value;
  }
  return out;
}

/** The error `fn` throws (fails the test when it returns). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe('seededRandom', () => {
  it('returns the same sequence for the same seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const first = Array.from({ length: 100 }, a);
    expect(Array.from({ length: 100 }, b)).toEqual(first);
    expect(new Set(first).size).toBe(100);
  });

  it('returns different sequences for different seeds', () => {
    const a = Array.from({ length: 10 }, seededRandom(1));
    const b = Array.from({ length: 10 }, seededRandom(2));
    expect(a).not.toEqual(b);
  });

  it('draws uniformly from [0, 1)', () => {
    const random = seededRandom(7);
    const draws = Array.from({ length: 20_000 }, random);
    for (const r of draws) {
      expect(r).toBeGreaterThanOrEqual(0);
      expect(r).toBeLessThan(1);
    }
    const mean = draws.reduce((sum, r) => sum + r, 0) / draws.length;
    expect(mean).toBeCloseTo(0.5, 1);
    // Every tenth of the range gets about a tenth of the draws.
    const buckets = new Array<number>(10).fill(0);
    for (const r of draws) buckets[Math.floor(r * 10)]!++;
    for (const count of buckets) expect(Math.abs(count - 2000)).toBeLessThan(300);
  });

  it('uses the low 32 bits of the seed', () => {
    const take = (seed: number) => Array.from({ length: 5 }, seededRandom(seed));
    expect(take(5 + 2 ** 32)).toEqual(take(5));
    expect(take(-1)).toEqual(take(2 ** 32 - 1));
    expect(take(2 ** 60)).toEqual(take(0));
  });

  it('rejects a seed that is not an integer', () => {
    expect(thrown(() => seededRandom(1.5))).toBeInstanceOf(RangeError);
    expect(thrown(() => seededRandom(Number.NaN)).message).toBe(
      "seededRandom: 'seed' must be an integer, got NaN",
    );
    expect(thrown(() => seededRandom(Number.POSITIVE_INFINITY))).toBeInstanceOf(RangeError);
    const error = thrown(() => seededRandom('1' as unknown as number));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe("seededRandom: 'seed' must be a number, got '1' (a string)");
  });
});

describe('constant', () => {
  it('returns the same delay after every failed attempt without drawing', () => {
    expect(run(constant(250), 6)).toEqual([250, 250, 250, 250, 250, 250]);
    expect(run(constant(0), 3)).toEqual([0, 0, 0]);
  });

  it('accepts the largest delay setTimeout honours', () => {
    expect(constant(MAX_TIMER_MS).delay(context(1))).toBe(MAX_TIMER_MS);
  });
});

describe('linear', () => {
  it('adds the step for every failed attempt up to max', () => {
    expect(run(linear({ initial: 100, step: 150, max: 700 }), 8)).toEqual([
      100, 250, 400, 550, 700, 700, 700, 700,
    ]);
  });

  it('stays at initial with a step of 0', () => {
    expect(run(linear({ initial: 40, step: 0 }), 3)).toEqual([40, 40, 40]);
  });

  it('caps at setTimeout maximum by default, even for huge attempt numbers', () => {
    const strategy = linear({ initial: 1000, step: 1000 });
    expect(strategy.delay(context(10))).toBe(10_000);
    expect(strategy.delay(context(Number.MAX_SAFE_INTEGER))).toBe(MAX_TIMER_MS);
  });
});

describe('exponential', () => {
  it('doubles the delay for every failed attempt up to max', () => {
    expect(run(exponential({ initial: 100, max: 2000 }), 8)).toEqual([
      100, 200, 400, 800, 1600, 2000, 2000, 2000,
    ]);
  });

  it('multiplies by the given factor', () => {
    expect(run(exponential({ initial: 10, factor: 3 }), 5)).toEqual([10, 30, 90, 270, 810]);
    expect(run(exponential({ initial: 10, factor: 1 }), 3)).toEqual([10, 10, 10]);
    expect(run(exponential({ initial: 100, factor: 1.5, max: 300 }), 5)).toEqual([
      100, 150, 225, 300, 300,
    ]);
  });

  it('returns max rather than Infinity or NaN for huge attempt numbers', () => {
    const strategy = exponential({ initial: 1, factor: 10 });
    for (const attempt of [32, 1000, 1e6, Number.MAX_SAFE_INTEGER])
      expect(strategy.delay(context(attempt))).toBe(MAX_TIMER_MS);
    expect(exponential({ initial: 5e-324 }).delay(context(2000))).toBe(MAX_TIMER_MS);
  });

  it('stays at 0 when initial is 0, whatever the attempt number', () => {
    const strategy = exponential({ initial: 0 });
    expect(strategy.delay(context(1))).toBe(0);
    expect(strategy.delay(context(5000))).toBe(0);
  });
});

describe('fibonacci', () => {
  it('follows 1, 1, 2, 3, 5, ... times initial up to max', () => {
    expect(run(fibonacci({ initial: 100, max: 2000 }), 10)).toEqual([
      100, 100, 200, 300, 500, 800, 1300, 2000, 2000, 2000,
    ]);
  });

  it('returns max for huge attempt numbers and 0 when initial is 0', () => {
    expect(fibonacci({ initial: 1 }).delay(context(5000))).toBe(MAX_TIMER_MS);
    expect(fibonacci({ initial: 5e-324 }).delay(context(Number.MAX_SAFE_INTEGER))).toBe(
      MAX_TIMER_MS,
    );
    expect(fibonacci({ initial: 0 }).delay(context(5000))).toBe(0);
  });
});

describe('delays', () => {
  it('walks the list and then repeats its last entry', () => {
    expect(run(delays([100, 500, 2000]), 6)).toEqual([100, 500, 2000, 2000, 2000, 2000]);
    expect(run(delays([7]), 3)).toEqual([7, 7, 7]);
  });

  it('copies the list, so later changes to the array do not matter', () => {
    const list = [100, 200];
    const strategy = delays(list);
    list[0] = 999;
    list.push(5);
    expect(run(strategy, 3)).toEqual([100, 200, 200]);
  });
});

describe('randomBetween', () => {
  it('draws each delay uniformly from [min, max]', () => {
    const expected = seededRandom(42);
    const got = run(randomBetween(200, 800), 20, seededRandom(42));
    expect(got).toEqual(Array.from({ length: 20 }, () => 200 + 600 * expected()));
  });

  it('returns min when min equals max', () => {
    expect(run(randomBetween(300, 300), 3, seededRandom(1))).toEqual([300, 300, 300]);
  });
});

describe('fromFunction', () => {
  it('returns what the function returns for the context', () => {
    const seen: DelayContext[] = [];
    const strategy = fromFunction((ctx) => {
      seen.push(ctx);
      return ctx.attempt * 10 + (ctx.previousDelay ?? 0);
    });
    expect(run(strategy, 3)).toEqual([10, 30, 60]);
    expect(seen.map((ctx) => ctx.attempt)).toEqual([1, 2, 3]);
  });

  it.each([
    [Number.NaN, 'NaN'],
    [-1, '-1'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    [MAX_TIMER_MS + 1, String(MAX_TIMER_MS + 1)],
  ])('throws a RangeError naming a bad delay (%s) returned at run time', (value, shown) => {
    const error = thrown(() => fromFunction(() => value).delay(context(1)));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe(
      `fromFunction: the delay function returned ${shown}; a delay must be a finite number >= 0 and <= ${MAX_TIMER_MS}`,
    );
  });

  it('throws a TypeError when the function returns a non-number', () => {
    const error = thrown(() => fromFunction(() => '5' as unknown as number).delay(context(1)));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(
      "fromFunction: the delay function must return a number of milliseconds, got '5' (a string)",
    );
  });
});

describe('resolveDelay and isDelayStrategy', () => {
  it('turns a number into a constant strategy', () => {
    const strategy = resolveDelay(300);
    expect(isDelayStrategy(strategy)).toBe(true);
    expect(run(strategy, 2)).toEqual([300, 300]);
  });

  it('turns a function into a checked strategy', () => {
    expect(resolveDelay((ctx) => ctx.attempt * 5).delay(context(4))).toBe(20);
    const error = thrown(() => resolveDelay(() => -3, 'Backoff').delay(context(1)));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(/^Backoff: the 'pause' function returned -3;/);
  });

  it('returns a built-in strategy as is', () => {
    const strategy = exponential({ initial: 10 });
    expect(resolveDelay(strategy)).toBe(strategy);
  });

  it('wraps a foreign strategy so its results are checked', () => {
    const foreign = { delay: (ctx: DelayContext) => (ctx.attempt === 1 ? 50 : -1) };
    const strategy = resolveDelay(foreign);
    expect(strategy).not.toBe(foreign);
    expect(Object.isFrozen(strategy)).toBe(true);
    expect(strategy.delay(context(1))).toBe(50);
    const error = thrown(() => strategy.delay(context(2)));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(/^resolveDelay: the 'pause' strategy returned -1;/);
  });

  it('rejects anything else, naming the option and the value', () => {
    const typeError = thrown(() => resolveDelay('5' as unknown as number, 'Backoff'));
    expect(typeError).toBeInstanceOf(TypeError);
    expect(typeError.message).toBe(
      "Backoff: 'pause' must be milliseconds, a delay strategy or a function, got '5' (a string)",
    );
    const rangeError = thrown(() => resolveDelay(-1));
    expect(rangeError).toBeInstanceOf(RangeError);
    expect(rangeError.message).toBe(
      `resolveDelay: 'pause' must be a finite number >= 0 and <= ${MAX_TIMER_MS}, got -1`,
    );
    expect(thrown(() => resolveDelay({ delay: 5 } as unknown as number))).toBeInstanceOf(TypeError);
  });

  it('recognises strategies and nothing else', () => {
    expect(isDelayStrategy(constant(1))).toBe(true);
    expect(isDelayStrategy({ delay: () => 1 })).toBe(true);
    for (const value of [null, undefined, 5, 'x', () => 1, { delay: 1 }, []])
      expect(isDelayStrategy(value)).toBe(false);
  });
});

/** Each strategy with its jitter-free delays for attempts 1..8, its base and the cap decorrelated uses. */
const CURVES: ReadonlyArray<{
  name: string;
  make: (jitter: Jitter) => DelayStrategy;
  raw: number[];
  base: number;
  max: number;
}> = [
  {
    name: 'constant',
    make: (jitter) => constant(300, { jitter, max: 5000 }),
    raw: [300, 300, 300, 300, 300, 300, 300, 300],
    base: 300,
    max: 5000,
  },
  {
    name: 'linear',
    make: (jitter) => linear({ initial: 100, step: 150, max: 700, jitter }),
    raw: [100, 250, 400, 550, 700, 700, 700, 700],
    base: 100,
    max: 700,
  },
  {
    name: 'exponential',
    make: (jitter) => exponential({ initial: 100, max: 2000, jitter }),
    raw: [100, 200, 400, 800, 1600, 2000, 2000, 2000],
    base: 100,
    max: 2000,
  },
  {
    name: 'exponential without max',
    make: (jitter) => exponential({ initial: 100, factor: 3, jitter }),
    raw: [100, 300, 900, 2700, 8100, 24300, 72900, 218700],
    base: 100,
    max: MAX_TIMER_MS,
  },
  {
    name: 'fibonacci',
    make: (jitter) => fibonacci({ initial: 100, max: 1000, jitter }),
    raw: [100, 100, 200, 300, 500, 800, 1000, 1000],
    base: 100,
    max: 1000,
  },
  {
    name: 'delays',
    make: (jitter) => delays([100, 500, 2000], { jitter, max: 5000 }),
    raw: [100, 500, 2000, 2000, 2000, 2000, 2000, 2000],
    base: 100,
    max: 5000,
  },
];

describe.each(CURVES)('$name with jitter', ({ make, raw, base, max }) => {
  it.each(JITTERS)(
    'gives the documented delays with jitter %s under seededRandom(42)',
    (jitter) => {
      const got = run(make(jitter), raw.length, seededRandom(42));
      expect(got).toEqual(expectedJitter(jitter, raw, seededRandom(42), base, max));
    },
  );

  it('draws exactly once per delay when jittered and never without jitter', () => {
    for (const jitter of JITTERS) {
      let draws = 0;
      const random = seededRandom(3);
      run(make(jitter), 5, () => {
        draws++;
        return random();
      });
      expect(draws).toBe(jitter === 'none' ? 0 : 5);
    }
  });
});

describe('decorrelated jitter', () => {
  it('grows from the previous delay by up to 3x and never leaves [base, max]', () => {
    const got = run(
      exponential({ initial: 100, max: 1000, jitter: 'decorrelated' }),
      30,
      () => 0.999,
    );
    for (const d of got) {
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(1000);
    }
    expect(got[0]).toBeCloseTo(100 + 200 * 0.999);
    expect(got.at(-1)).toBe(1000);
  });

  it('keeps base as the floor when the previous delay was below it', () => {
    const strategy = constant(100, { jitter: 'decorrelated', max: 1000 });
    expect(strategy.delay(context(2, () => 0.5, 10))).toBe(100);
    expect(strategy.delay(context(2, () => 0.5, 0))).toBe(100);
  });

  it('rejects a bad previous delay in the context', () => {
    const strategy = constant(100, { jitter: 'decorrelated' });
    const error = thrown(() => strategy.delay(context(2, () => 0.5, Number.NaN)));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe(
      'constant: context.previousDelay must be undefined or a finite number >= 0, got NaN',
    );
  });
});

describe('run-time checks of the context', () => {
  it('rejects a context whose random is not a function', () => {
    const error = thrown(() =>
      exponential({ initial: 100, jitter: 'full' }).delay({
        ...context(1),
        random: undefined as never,
      }),
    );
    expect(error).toEqual(
      new TypeError('exponential: context.random must be a function, got undefined'),
    );
  });

  it('rejects a random source that leaves [0, 1)', () => {
    const error = thrown(() =>
      exponential({ initial: 100, jitter: 'full' }).delay(context(1, () => 1)),
    );
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe(
      'exponential: context.random() must return a number in [0, 1), got 1',
    );
    expect(thrown(() => randomBetween(1, 2).delay(context(1, () => -0.1)))).toBeInstanceOf(
      RangeError,
    );
  });

  it('rejects an attempt number that is not an integer >= 1', () => {
    const error = thrown(() => exponential({ initial: 100 }).delay(context(0)));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe('exponential: context.attempt must be an integer >= 1, got 0');
    expect(thrown(() => linear({ initial: 1, step: 1 }).delay(context(1.5)))).toBeInstanceOf(
      RangeError,
    );
    expect(thrown(() => fibonacci({ initial: 1 }).delay(context(Number.NaN)))).toBeInstanceOf(
      RangeError,
    );
  });
});

describe('input validation', () => {
  const range = `a finite number >= 0 and <= ${MAX_TIMER_MS}`;
  const cases: ReadonlyArray<
    [string, () => unknown, typeof TypeError | typeof RangeError, string]
  > = [
    ['constant(-1)', () => constant(-1), RangeError, `constant: 'ms' must be ${range}, got -1`],
    [
      'constant(NaN)',
      () => constant(Number.NaN),
      RangeError,
      `constant: 'ms' must be ${range}, got NaN`,
    ],
    [
      'constant(Infinity)',
      () => constant(Number.POSITIVE_INFINITY),
      RangeError,
      `constant: 'ms' must be ${range}, got Infinity`,
    ],
    [
      'constant(2 ** 31)',
      () => constant(2 ** 31),
      RangeError,
      `constant: 'ms' must be ${range}, got 2147483648`,
    ],
    [
      "constant('5')",
      () => constant('5' as unknown as number),
      TypeError,
      "constant: 'ms' must be a number of milliseconds, got '5' (a string)",
    ],
    [
      'constant with an unknown jitter',
      () => constant(5, { jitter: 'fulll' as Jitter }),
      TypeError,
      "constant: 'jitter' must be one of 'none', 'full', 'equal', 'decorrelated', got 'fulll' (a string)",
    ],
    [
      'constant with null options',
      () => constant(5, null as never),
      TypeError,
      'constant: options must be an object, got null',
    ],
    [
      'constant with an unknown option',
      () => constant(5, { maxDelay: 3 } as never),
      TypeError,
      "constant: unknown option 'maxDelay'",
    ],
    [
      'constant with max below ms',
      () => constant(5, { max: 4 }),
      RangeError,
      "constant: 'max' must be >= 'ms' (5), got 4",
    ],
    [
      'constant(0) with decorrelated jitter',
      () => constant(0, { jitter: 'decorrelated' }),
      RangeError,
      "constant: 'ms' must be > 0 with jitter 'decorrelated', got 0",
    ],
    [
      'linear with a negative step',
      () => linear({ initial: 1, step: -1 }),
      RangeError,
      `linear: 'step' must be ${range}, got -1`,
    ],
    [
      'linear without step',
      () => linear({ initial: 1 } as never),
      TypeError,
      "linear: 'step' must be a number of milliseconds, got undefined",
    ],
    [
      'linear without options',
      () => linear(undefined as never),
      TypeError,
      'linear: options must be an object, got undefined',
    ],
    [
      'exponential with a negative initial',
      () => exponential({ initial: -1 }),
      RangeError,
      `exponential: 'initial' must be ${range}, got -1`,
    ],
    [
      'exponential with factor < 1',
      () => exponential({ initial: 1, factor: 0.5 }),
      RangeError,
      "exponential: 'factor' must be a finite number >= 1, got 0.5",
    ],
    [
      'exponential with factor NaN',
      () => exponential({ initial: 1, factor: Number.NaN }),
      RangeError,
      "exponential: 'factor' must be a finite number >= 1, got NaN",
    ],
    [
      'exponential with factor Infinity',
      () => exponential({ initial: 1, factor: Number.POSITIVE_INFINITY }),
      RangeError,
      "exponential: 'factor' must be a finite number >= 1, got Infinity",
    ],
    [
      "exponential with factor '2'",
      () => exponential({ initial: 1, factor: '2' as never }),
      TypeError,
      "exponential: 'factor' must be a number, got '2' (a string)",
    ],
    [
      'exponential with max below initial',
      () => exponential({ initial: 100, max: 50 }),
      RangeError,
      "exponential: 'max' must be >= 'initial' (100), got 50",
    ],
    [
      'exponential with a numeric jitter',
      () => exponential({ initial: 100, jitter: 42 as never }),
      TypeError,
      "exponential: 'jitter' must be one of 'none', 'full', 'equal', 'decorrelated', got 42",
    ],
    [
      'fibonacci with an infinite initial',
      () => fibonacci({ initial: Number.POSITIVE_INFINITY }),
      RangeError,
      `fibonacci: 'initial' must be ${range}, got Infinity`,
    ],
    [
      'fibonacci with max above the timer limit',
      () => fibonacci({ initial: 1, max: 3e9 }),
      RangeError,
      `fibonacci: 'max' must be ${range}, got 3000000000`,
    ],
    [
      'an empty delays list',
      () => delays([]),
      RangeError,
      'delays: the list must not be empty, got []',
    ],
    [
      'a delays list that is not an array',
      () => delays('100' as never),
      TypeError,
      "delays: the list must be an array of milliseconds, got '100' (a string)",
    ],
    [
      'a negative entry in delays',
      () => delays([100, -5]),
      RangeError,
      `delays: 'list[1]' must be ${range}, got -5`,
    ],
    [
      'a null entry in delays',
      () => delays([100, null as never]),
      TypeError,
      "delays: 'list[1]' must be a number of milliseconds, got null",
    ],
    [
      'delays with max below an entry',
      () => delays([100, 500], { max: 200 }),
      RangeError,
      "delays: 'max' must be >= the largest entry (500), got 200",
    ],
    [
      'randomBetween with min > max',
      () => randomBetween(10, 5),
      RangeError,
      "randomBetween: 'min' must be <= 'max' (5), got 10",
    ],
    [
      'randomBetween with a negative min',
      () => randomBetween(-1, 5),
      RangeError,
      `randomBetween: 'min' must be ${range}, got -1`,
    ],
    [
      'randomBetween with max NaN',
      () => randomBetween(1, Number.NaN),
      RangeError,
      `randomBetween: 'max' must be ${range}, got NaN`,
    ],
    [
      'fromFunction(5)',
      () => fromFunction(5 as never),
      TypeError,
      'fromFunction: the argument must be a function, got 5',
    ],
  ];

  it.each(cases)(
    'throws for %s at once, naming the option and the value',
    (_, make, kind, message) => {
      const error = thrown(make);
      expect(error).toBeInstanceOf(kind);
      expect(error.message).toBe(message);
    },
  );
});

describe('immutability and sharing', () => {
  const strategies: Array<[string, DelayStrategy]> = [
    ...CURVES.flatMap(({ name, make }) =>
      JITTERS.map((jitter): [string, DelayStrategy] => [`${name} ${jitter}`, make(jitter)]),
    ),
    ['randomBetween', randomBetween(10, 90)],
    ['fromFunction', fromFunction((ctx) => ctx.attempt)],
    ['resolveDelay(number)', resolveDelay(5)],
    ['resolveDelay(function)', resolveDelay(() => 5)],
  ];

  it.each(strategies)('%s is frozen', (_, strategy) => {
    expect(Object.isFrozen(strategy)).toBe(true);
    expect(() => {
      (strategy as { delay: unknown }).delay = () => 0;
    }).toThrow(TypeError);
  });

  it.each(strategies)(
    '%s gives interleaved executions the same delays as separate ones',
    (_, strategy) => {
      const separate = [run(strategy, 12, seededRandom(1)), run(strategy, 12, seededRandom(2))];
      // Two executions taking turns on the one strategy, each with its own random source and history.
      const executions = [seededRandom(1), seededRandom(2)].map((random) => ({
        random,
        previous: undefined as number | undefined,
        delays: [] as number[],
      }));
      for (let attempt = 1; attempt <= 12; attempt++)
        for (const execution of executions) {
          const d = strategy.delay(context(attempt, execution.random, execution.previous));
          execution.previous = d;
          execution.delays.push(d);
        }
      expect(executions.map((execution) => execution.delays)).toEqual(separate);
    },
  );
});

describe('properties', () => {
  const time = fc.oneof(
    fc.integer({ min: 0, max: 10_000 }),
    fc.double({ min: 0, max: MAX_TIMER_MS, noNaN: true }),
  );
  /** [initial, max], with max undefined (the default) a fifth of the time. */
  const initialAndMax = fc
    .tuple(time, time, fc.integer({ min: 0, max: 4 }))
    .map(([a, b, pick]): [number, number | undefined] =>
      pick === 0 ? [a, undefined] : [Math.min(a, b), Math.max(a, b)],
    );
  const jitter = fc.constantFrom(...JITTERS);
  const seed = fc.integer();
  const bigAttempt = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });

  type Made = { strategy: (j: Jitter) => DelayStrategy; base: number; max: number };
  const curve: fc.Arbitrary<Made> = fc.oneof(
    initialAndMax.map(([initial, max]) => ({
      strategy: (j: Jitter) => constant(initial, { jitter: j, max }),
      base: initial,
      max: max ?? MAX_TIMER_MS,
    })),
    fc.tuple(initialAndMax, time).map(([[initial, max], step]) => ({
      strategy: (j: Jitter) => linear({ initial, step, max, jitter: j }),
      base: initial,
      max: max ?? MAX_TIMER_MS,
    })),
    fc
      .tuple(initialAndMax, fc.double({ min: 1, max: 10, noNaN: true }))
      .map(([[initial, max], factor]) => ({
        strategy: (j: Jitter) => exponential({ initial, factor, max, jitter: j }),
        base: initial,
        max: max ?? MAX_TIMER_MS,
      })),
    initialAndMax.map(([initial, max]) => ({
      strategy: (j: Jitter) => fibonacci({ initial, max, jitter: j }),
      base: initial,
      max: max ?? MAX_TIMER_MS,
    })),
    fc.tuple(fc.array(time, { minLength: 1, maxLength: 6 }), fc.boolean()).map(([list, capped]) => {
      const max = capped ? Math.max(...list) : undefined;
      return {
        strategy: (j: Jitter) => delays(list, { jitter: j, max }),
        base: list[0]!,
        max: max ?? MAX_TIMER_MS,
      };
    }),
  );

  it('keeps every jitter-free delay in [0, max] and never below the first delay', () => {
    fc.assert(
      fc.property(curve, bigAttempt, ({ strategy, base, max }, big) => {
        const s = strategy('none');
        for (const d of [...run(s, 40), s.delay(context(big))]) {
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(max);
          expect(Number.isFinite(d)).toBe(true);
        }
        // Growing curves start at `base`; a list may shrink, so only its first entry is `base`.
        expect(s.delay(context(1))).toBe(base);
      }),
    );
  });

  it('keeps linear, exponential and fibonacci non-decreasing and exact', () => {
    fc.assert(
      fc.property(
        initialAndMax,
        fc.double({ min: 1, max: 10, noNaN: true }),
        time,
        ([initial, maxOption], factor, step) => {
          const max = maxOption ?? MAX_TIMER_MS;
          const e = run(exponential({ initial, factor, max: maxOption }), 60);
          const l = run(linear({ initial, step, max: maxOption }), 60);
          const f = run(fibonacci({ initial, max: maxOption }), 60);
          const fib = [1, 1];
          while (fib.length < 60) fib.push(fib.at(-1)! + fib.at(-2)!);
          expect(e).toEqual(fib.map((_, i) => Math.min(max, initial * factor ** i)));
          expect(l).toEqual(fib.map((_, i) => Math.min(max, initial + step * i)));
          expect(f).toEqual(fib.map((n) => Math.min(max, initial * n)));
          const nonDecreasing = (list: number[]) =>
            list.every((d, i) => i === 0 || d >= list[i - 1]!);
          expect([e, l, f].every(nonDecreasing)).toBe(true);
        },
      ),
    );
  });

  it('keeps full jitter in [0, d], equal in [d/2, d] and decorrelated in [base, max]', () => {
    fc.assert(
      fc.property(curve, jitter, seed, bigAttempt, ({ strategy, base, max }, j, s, big) => {
        fc.pre(j !== 'decorrelated' || base > 0);
        const plain = strategy('none');
        const jittered = strategy(j);
        const random = seededRandom(s);
        let previous: number | undefined;
        for (const attempt of [...Array.from({ length: 40 }, (_, i) => i + 1), big]) {
          const d = plain.delay(context(attempt));
          const value = jittered.delay(context(attempt, random, previous));
          previous = value;
          const [low, high] =
            j === 'none'
              ? [d, d]
              : j === 'full'
                ? [0, d]
                : j === 'equal'
                  ? [d / 2, d]
                  : [base, max];
          expect(value).toBeGreaterThanOrEqual(low);
          expect(value).toBeLessThanOrEqual(high);
          expect(value).toBeLessThanOrEqual(MAX_TIMER_MS);
        }
      }),
    );
  });

  it('keeps randomBetween in [min, max]', () => {
    fc.assert(
      fc.property(time, time, seed, (a, b, s) => {
        const [min, max] = [Math.min(a, b), Math.max(a, b)];
        for (const d of run(randomBetween(min, max), 50, seededRandom(s))) {
          expect(d).toBeGreaterThanOrEqual(min);
          expect(d).toBeLessThanOrEqual(max);
        }
      }),
    );
  });

  /** Draws 2000 delays for one attempt; checks both outer quarters of [low, high] are hit and the mean. */
  function expectSpread(draws: number[], low: number, high: number, mean: number): void {
    const width = high - low;
    expect(draws.some((d) => d <= low + width / 4)).toBe(true);
    expect(draws.some((d) => d >= high - width / 4)).toBe(true);
    const got = draws.reduce((sum, d) => sum + d, 0) / draws.length;
    // The standard error of the mean of 2000 uniform draws is about 0.0065 * width.
    expect(Math.abs(got - mean)).toBeLessThanOrEqual(0.05 * width);
  }

  const DRAWS = 2000;
  const spreadTime = fc.double({ min: 1, max: 1e6, noNaN: true });

  it('spreads full and equal jitter over their whole range', () => {
    fc.assert(
      fc.property(spreadTime, fc.integer({ min: 1, max: 10 }), seed, (initial, attempt, s) => {
        const random = seededRandom(s);
        const d = exponential({ initial }).delay(context(attempt));
        const full = exponential({ initial, jitter: 'full' });
        const equal = exponential({ initial, jitter: 'equal' });
        const take = (strategy: DelayStrategy) =>
          Array.from({ length: DRAWS }, () => strategy.delay(context(attempt, random)));
        expectSpread(take(full), 0, d, d / 2);
        expectSpread(take(equal), d / 2, d, (3 * d) / 4);
      }),
    );
  });

  it('spreads decorrelated jitter over [base, 3 * previous] below the cap', () => {
    fc.assert(
      fc.property(spreadTime, fc.double({ min: 1, max: 100, noNaN: true }), seed, (base, k, s) => {
        const previous = base * k;
        const strategy = constant(base, { jitter: 'decorrelated', max: 3 * previous });
        const random = seededRandom(s);
        const draws = Array.from({ length: DRAWS }, () =>
          strategy.delay(context(2, random, previous)),
        );
        expectSpread(draws, base, 3 * previous, (base + 3 * previous) / 2);
      }),
    );
  });

  it('piles decorrelated jitter up at the cap with the expected mean', () => {
    fc.assert(
      fc.property(
        spreadTime,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 1, max: 100, noNaN: true }),
        seed,
        (base, capAt, k, s) => {
          const previous = base * k;
          const high = 3 * previous;
          const max = base + (high - base) * capAt;
          const strategy = constant(base, { jitter: 'decorrelated', max });
          const random = seededRandom(s);
          const draws = Array.from({ length: DRAWS }, () =>
            strategy.delay(context(2, random, previous)),
          );
          // E[min(max, U(base, high))]: the uniform part below max plus the mass at max.
          const mean = ((max * max - base * base) / 2 + (high - max) * max) / (high - base);
          expect(Math.min(...draws)).toBeGreaterThanOrEqual(base);
          expect(Math.max(...draws)).toBeLessThanOrEqual(max);
          const got = draws.reduce((sum, d) => sum + d, 0) / draws.length;
          expect(Math.abs(got - mean)).toBeLessThanOrEqual(0.05 * (high - base));
        },
      ),
    );
  });

  it('spreads randomBetween over [min, max]', () => {
    fc.assert(
      fc.property(spreadTime, spreadTime, seed, (a, b, s) => {
        const [min, max] = [Math.min(a, b), Math.max(a, b)];
        // A range narrower than the rounding error of the mean would make the mean check noise.
        fc.pre(max - min >= 1);
        const strategy = randomBetween(min, max);
        const random = seededRandom(s);
        const draws = Array.from({ length: DRAWS }, () => strategy.delay(context(1, random)));
        expectSpread(draws, min, max, (min + max) / 2);
      }),
    );
  });
});

describe('delays() and sparse lists', () => {
  it('refuses a hole in the list, naming the entry', () => {
    // biome-ignore lint/suspicious/noSparseArray: the sparse list under test
    expect(() => delays([1, , 2] as number[])).toThrow(
      /delays: 'list\[1\]' must be a number of milliseconds, got undefined/,
    );
  });
});
