/**
 * Delay strategies used through the engine: `new Backoff({ pause: exponential(...), random })`.
 * Expected pauses come from the formulas documented in src/delays.ts, fed by a second
 * `seededRandom` with the same seed, and are checked as attempt start times on a fake clock.
 *
 * The fake clock (like Node) fires `setTimeout(fn, d)` after `trunc(d)` ms, so a jittered pause of
 * 437.9 ms shows as a 437 ms gap; the tests pick parameters whose pauses are all >= 1 ms.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Backoff,
  constant,
  type DelayContext,
  type DelayStrategy,
  delays,
  exponential,
  fibonacci,
  fromFunction,
  type Jitter,
  linear,
  randomBetween,
  seededRandom,
} from '../src/index.js';
import {
  alwaysFailing,
  now,
  scripted,
  TransientError,
  track,
  useFakeClock,
} from './support/harness.js';

const t = useFakeClock();

/** Start times of attempts 1..n when every attempt fails at once and pause k is `pauses[k - 1]`. */
function startsFor(pauses: readonly number[]): number[] {
  const starts = [0];
  for (const pause of pauses) {
    // Sub-millisecond pauses would depend on the fake clock's rounding; keep the tests clear of them.
    expect(pause).toBeGreaterThanOrEqual(1);
    starts.push(starts[starts.length - 1]! + Math.trunc(pause));
  }
  return starts;
}

// ---- reference formulas (src/delays.ts documentation) ---------------------------------------------

interface Curve {
  /** The jitter-free delay after attempt k failed. */
  raw(k: number): number;
  /** The first delay: decorrelated jitter's floor. */
  base: number;
  /** Decorrelated jitter's cap. */
  cap: number;
}

function fib(k: number): number {
  let a = 1;
  let b = 1;
  for (let i = 1; i < k; i++) [a, b] = [b, a + b];
  return a;
}

/** The reference pause sequence for `tries - 1` retries under `jitter`, drawing from `random`. */
function referencePauses(curve: Curve, jitter: Jitter, random: () => number, n: number): number[] {
  const out: number[] = [];
  let previous: number | undefined;
  for (let k = 1; k <= n; k++) {
    const d = curve.raw(k);
    let pause: number;
    switch (jitter) {
      case 'none':
        pause = d;
        break;
      case 'full':
        pause = d * random();
        break;
      case 'equal':
        pause = Math.min(d, d / 2 + (d / 2) * random());
        break;
      case 'decorrelated': {
        const prev = previous ?? curve.base;
        pause = Math.min(
          curve.cap,
          curve.base + (Math.max(curve.base, 3 * prev) - curve.base) * random(),
        );
        break;
      }
    }
    previous = pause;
    out.push(pause);
  }
  return out;
}

interface StrategyCase {
  name: string;
  make(jitter: Jitter): DelayStrategy;
  curve: Curve;
}

const CASES: StrategyCase[] = [
  {
    name: 'exponential({ initial: 1000, factor: 3, max: 20000 })',
    make: (jitter) => exponential({ initial: 1000, factor: 3, max: 20_000, jitter }),
    curve: { raw: (k) => Math.min(20_000, 1000 * 3 ** (k - 1)), base: 1000, cap: 20_000 },
  },
  {
    name: 'linear({ initial: 500, step: 1200, max: 5000 })',
    make: (jitter) => linear({ initial: 500, step: 1200, max: 5000, jitter }),
    curve: { raw: (k) => Math.min(5000, 500 + 1200 * (k - 1)), base: 500, cap: 5000 },
  },
  {
    name: 'fibonacci({ initial: 400, max: 3000 })',
    make: (jitter) => fibonacci({ initial: 400, max: 3000, jitter }),
    curve: { raw: (k) => Math.min(3000, 400 * fib(k)), base: 400, cap: 3000 },
  },
  {
    name: 'delays([1000, 5000, 2500], { max: 30000 })',
    make: (jitter) => delays([1000, 5000, 2500], { max: 30_000, jitter }),
    curve: { raw: (k) => [1000, 5000, 2500][Math.min(k, 3) - 1]!, base: 1000, cap: 30_000 },
  },
  {
    name: 'constant(3000, { max: 10000 })',
    make: (jitter) => constant(3000, { max: 10_000, jitter }),
    curve: { raw: () => 3000, base: 3000, cap: 10_000 },
  },
];

const JITTERS: Jitter[] = ['none', 'full', 'equal', 'decorrelated'];
const TRIES = 7;

describe('built-in strategies through the engine: exact attempt start times', () => {
  it('exponential({ initial: 100, max: 1000 }): attempts at 0, 100, 300, 700, 1500, 2500', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: exponential({ initial: 100, max: 1000 }),
      exceptions: [TransientError],
      maxTries: 6,
      random: seededRandom(1),
    });
    const { fn, starts, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(10_000);
    expect(starts).toEqual([0, 100, 300, 700, 1500, 2500]);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(thrown[5]);
    expect(result.at).toBe(2500);
  });

  it('linear({ initial: 100, step: 100, max: 300 }): pauses 100, 200, 300, 300', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: linear({ initial: 100, step: 100, max: 300 }),
      exceptions: [TransientError],
      maxTries: 5,
    });
    const { fn, starts } = alwaysFailing();
    track(backoff.execute(fn));
    await clock.tickAsync(10_000);
    expect(starts).toEqual([0, 100, 300, 600, 900]);
  });

  it('fibonacci({ initial: 100, max: 2000 }): pauses 100, 100, 200, 300, 500, 800, 1300, 2000, 2000', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: fibonacci({ initial: 100, max: 2000 }),
      exceptions: [TransientError],
      maxTries: 10,
    });
    const { fn, starts } = alwaysFailing();
    track(backoff.execute(fn));
    await clock.tickAsync(100_000);
    expect(starts).toEqual(startsFor([100, 100, 200, 300, 500, 800, 1300, 2000, 2000]));
  });

  it('delays([100, 500, 2000]): the last entry repeats', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: delays([100, 500, 2000]),
      exceptions: [TransientError],
      maxTries: 6,
    });
    const { fn, starts } = alwaysFailing();
    track(backoff.execute(fn));
    await clock.tickAsync(100_000);
    expect(starts).toEqual([0, 100, 600, 2600, 4600, 6600]);
  });

  it('randomBetween(200, 800): each pause is 200 + 600 * random()', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: randomBetween(200, 800),
      exceptions: [TransientError],
      maxTries: 6,
      random: seededRandom(1),
    });
    const { fn, starts } = alwaysFailing();
    track(backoff.execute(fn));
    await clock.tickAsync(100_000);
    const reference = seededRandom(1);
    const expected = Array.from({ length: 5 }, () => 200 + 600 * reference());
    expect(starts).toEqual(startsFor(expected));
  });

  it('fromFunction: gets the full DelayContext and its result is the pause', async () => {
    const { clock } = t;
    const random = seededRandom(1);
    const contexts: DelayContext[] = [];
    const backoff = new Backoff({
      pause: fromFunction((context) => {
        contexts.push(context);
        return context.attempt * 150;
      }),
      exceptions: [TransientError],
      maxTries: 4,
      deadline: 10_000,
      random,
    });
    const { fn, starts, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(10_000);
    expect(starts).toEqual([0, 150, 450, 900]);
    expect(result.error).toBe(thrown[3]);
    // Asked after attempts 1..3 failed; not after the last one.
    expect(contexts).toHaveLength(3);
    contexts.forEach((context, i) => {
      expect(context.attempt).toBe(i + 1);
      expect(context.fails).toBe(i + 1);
      expect(context.kind).toBe('error');
      expect(context.error).toBe(thrown[i]);
      expect(context.result).toBeUndefined();
      expect(context.previousDelay).toBe(i === 0 ? undefined : i * 150);
      expect(context.elapsed).toBe(starts[i]);
      expect(context.remaining).toBe(10_000 - starts[i]!);
      expect(context.random).toBe(random);
    });
  });

  it('a plain function as pause works like fromFunction', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: ({ attempt }: DelayContext) => 10 * attempt ** 2,
      exceptions: [TransientError],
      maxTries: 4,
    });
    const { fn, starts } = alwaysFailing();
    track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(starts).toEqual([0, 10, 50, 140]);
  });

  for (const c of CASES) {
    describe(c.name, () => {
      for (const jitter of JITTERS) {
        it(`jitter '${jitter}': attempts start exactly where the documented formula puts them (seed 1)`, async () => {
          const { clock } = t;
          const backoff = new Backoff({
            pause: c.make(jitter),
            exceptions: [TransientError],
            maxTries: TRIES,
            random: seededRandom(1),
          });
          const { fn, starts, thrown } = alwaysFailing();
          const result = track(backoff.execute(fn));
          await clock.tickAsync(1_000_000);
          const expected = startsFor(referencePauses(c.curve, jitter, seededRandom(1), TRIES - 1));
          expect(starts).toEqual(expected);
          expect(result.status).toBe('rejected');
          expect(result.error).toBe(thrown[TRIES - 1]);
          expect(result.at).toBe(expected[TRIES - 1]);
        });
      }
    });
  }

  it("'none' never calls random(); every other mode draws once per pause", async () => {
    const { clock } = t;
    for (const jitter of JITTERS) {
      let draws = 0;
      const inner = seededRandom(1);
      const backoff = new Backoff({
        pause: exponential({ initial: 1000, max: 20_000, jitter }),
        exceptions: [TransientError],
        maxTries: 5,
        random: () => {
          draws++;
          return inner();
        },
      });
      track(backoff.execute(alwaysFailing().fn));
      await clock.tickAsync(1_000_000);
      expect(draws, jitter).toBe(jitter === 'none' ? 0 : 4);
    }
  });
});

describe('a strategy that fails', () => {
  it('fromFunction returning a negative delay: the execution rejects with a RangeError; no further attempt', async () => {
    const { clock } = t;
    const backoff = new Backoff({ pause: fromFunction(() => -1), exceptions: [TransientError] });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(RangeError);
    expect(starts).toEqual([0]);
  });

  it('a custom strategy returning a non-number: TypeError', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: { delay: () => '100' as unknown as number },
      exceptions: [TransientError],
    });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(100);
    expect(result.error).toBeInstanceOf(TypeError);
    expect(starts).toEqual([0]);
  });

  it('a strategy that throws: the execution rejects with what it threw', async () => {
    const { clock } = t;
    const boom = new Error('strategy bug');
    const backoff = new Backoff({
      pause: fromFunction(() => {
        throw boom;
      }),
      exceptions: [TransientError],
    });
    const result = track(backoff.execute(alwaysFailing().fn));
    await clock.tickAsync(100);
    expect(result.error).toBe(boom);
  });
});

describe('decorrelated jitter uses the previous pause', () => {
  it('is handed previousDelay = the pause chosen before the previous retry', async () => {
    const { clock } = t;
    const decorrelated = exponential({ initial: 1000, max: 50_000, jitter: 'decorrelated' });
    const seen: (number | undefined)[] = [];
    const chosen: number[] = [];
    const spy: DelayStrategy = {
      delay(context) {
        seen.push(context.previousDelay);
        const d = decorrelated.delay(context);
        chosen.push(d);
        return d;
      },
    };
    const backoff = new Backoff({
      pause: spy,
      exceptions: [TransientError],
      maxTries: 6,
      random: seededRandom(1),
    });
    const { fn, starts } = alwaysFailing();
    track(backoff.execute(fn));
    await clock.tickAsync(1_000_000);
    expect(seen).toEqual([undefined, ...chosen.slice(0, -1)]);
    // The formula min(max, base + (max(base, 3 * prev) - base) * r) with prev = the previous pause.
    const reference = seededRandom(1);
    let prev = 1000;
    const expected = chosen.map(() => {
      const d = Math.min(50_000, 1000 + (Math.max(1000, 3 * prev) - 1000) * reference());
      prev = d;
      return d;
    });
    expect(chosen).toEqual(expected);
    expect(starts).toEqual(startsFor(expected));
  });

  it('restarts from base for every execution (previousDelay is per execution)', async () => {
    const { clock } = t;
    const seen: (number | undefined)[] = [];
    const backoff = new Backoff({
      pause: fromFunction((context) => {
        seen.push(context.previousDelay);
        return 100;
      }),
      exceptions: [TransientError],
      maxTries: 3,
    });
    track(backoff.execute(alwaysFailing().fn));
    await clock.tickAsync(1000);
    track(backoff.execute(alwaysFailing().fn));
    await clock.tickAsync(1000);
    expect(seen).toEqual([undefined, 100, undefined, 100]);
  });
});

describe('the deadline rule holds with strategies', () => {
  it('a pause that would cross the deadline is not slept: rejects at the failure time', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: exponential({ initial: 100 }),
      exceptions: [TransientError],
      deadline: 650,
    });
    const { fn, starts, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(300);
    // Attempt 3 failed at 300; the next pause (400) would end at 700 >= 650.
    expect(starts).toEqual([0, 100, 300]);
    expect(result.status).toBe('rejected');
    expect(result.error).toBe(thrown[2]);
    expect(result.at).toBe(300);
    // Shared timers are released in a setImmediate; a fake immediate queued during a tick runs 1 ms later.
    await clock.tickAsync(1);
    expect(clock.countTimers()).toBe(0);
  });

  it('a pause ending exactly at the deadline is not slept either', async () => {
    const { clock } = t;
    const backoff = new Backoff({
      pause: exponential({ initial: 100 }),
      exceptions: [TransientError],
      deadline: 700,
    });
    const { fn, starts } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(starts).toEqual([0, 100, 300]);
    expect(result.at).toBe(300);
  });

  it('with full jitter: the decision uses the drawn pause', async () => {
    const { clock } = t;
    const deadline = 9000;
    const backoff = new Backoff({
      pause: exponential({ initial: 1000, jitter: 'full' }),
      exceptions: [TransientError],
      deadline,
      random: seededRandom(1),
    });
    const { fn, starts, thrown } = alwaysFailing();
    const result = track(backoff.execute(fn));
    await clock.tickAsync(deadline);

    // Simulate: retry while start + pause < deadline.
    const reference = seededRandom(1);
    const expected = [0];
    for (let k = 1; ; k++) {
      const pause = 1000 * 2 ** (k - 1) * reference();
      const at = expected[expected.length - 1]!;
      if (at + pause >= deadline) break;
      expect(pause).toBeGreaterThanOrEqual(1);
      expected.push(at + Math.trunc(pause));
    }
    expect(starts).toEqual(expected);
    expect(result.error).toBe(thrown[thrown.length - 1]);
    expect(result.at).toBe(expected[expected.length - 1]);
  });
});

describe('one strategy shared by concurrent executions', () => {
  it('gives each execution the same sequence, counted from its own start', async () => {
    const { clock } = t;
    const strategy = exponential({ initial: 100, max: 10_000 });
    const backoff = new Backoff({ pause: strategy, exceptions: [TransientError], maxTries: 5 });
    const a = alwaysFailing();
    const b = alwaysFailing();
    track(backoff.execute(a.fn));
    await clock.tickAsync(50);
    track(backoff.execute(b.fn));
    await clock.tickAsync(10_000);
    expect(a.starts).toEqual([0, 100, 300, 700, 1500]);
    expect(b.starts).toEqual([50, 150, 350, 750, 1550]);
  });

  it('with jitter and the same seed, two instances sharing the strategy pause identically', async () => {
    const { clock } = t;
    const strategy = exponential({ initial: 1000, max: 60_000, jitter: 'decorrelated' });
    const one = new Backoff({
      pause: strategy,
      exceptions: [TransientError],
      maxTries: 6,
      random: seededRandom(1),
    });
    const two = new Backoff({
      pause: strategy,
      exceptions: [TransientError],
      maxTries: 6,
      random: seededRandom(1),
    });
    const a = alwaysFailing();
    const b = alwaysFailing();
    track(one.execute(a.fn));
    track(two.execute(b.fn));
    await clock.tickAsync(1_000_000);
    expect(a.starts).toHaveLength(6);
    expect(b.starts).toEqual(a.starts);
    const curve: Curve = { raw: () => 0, base: 1000, cap: 60_000 };
    expect(a.starts).toEqual(startsFor(referencePauses(curve, 'decorrelated', seededRandom(1), 5)));
  });
});

describe('strategies see retryIf results too', () => {
  it("kind 'result' and the result are in the context", async () => {
    const { clock } = t;
    const contexts: DelayContext[] = [];
    const backoff = new Backoff({
      pause: fromFunction((context) => {
        contexts.push(context);
        return 250;
      }),
      retryIf: (status: string) => status === 'run',
      maxTries: 5,
    });
    const { fn, starts } = scripted('run', 'run', 'success');
    const result = track(backoff.execute(fn));
    await clock.tickAsync(1000);
    expect(result.value).toBe('success');
    expect(starts).toEqual([0, 250, 500]);
    expect(contexts.map((c) => [c.kind, c.result, c.error])).toEqual([
      ['result', 'run', undefined],
      ['result', 'run', undefined],
    ]);
  });
});

// ---- property ---------------------------------------------------------------------------------------

type Spec =
  | { kind: 'exponential'; initial: number; factor: number; max: number; jitter: Jitter }
  | { kind: 'linear'; initial: number; step: number; max: number; jitter: Jitter }
  | { kind: 'fibonacci'; initial: number; max: number; jitter: Jitter }
  | { kind: 'delays'; list: number[]; max: number; jitter: Jitter }
  | { kind: 'constant'; ms: number; max: number; jitter: Jitter }
  | { kind: 'randomBetween'; min: number; max: number };

// 0 or >= 1 ms: the fake clock reads a denormal delay such as 5e-324 as '5e-324' -> 5 ms.
const time = fc.oneof(fc.constant(0), fc.double({ min: 1, max: 3000, noNaN: true }));
const jitterArb = fc.constantFrom<Jitter>('none', 'full', 'equal', 'decorrelated');

const specArb: fc.Arbitrary<Spec> = fc
  .oneof(
    fc.record({
      kind: fc.constant('exponential' as const),
      initial: time,
      factor: fc.double({ min: 1, max: 4, noNaN: true }),
      extra: time,
      jitter: jitterArb,
    }),
    fc.record({
      kind: fc.constant('linear' as const),
      initial: time,
      step: time,
      extra: time,
      jitter: jitterArb,
    }),
    fc.record({
      kind: fc.constant('fibonacci' as const),
      initial: time,
      extra: time,
      jitter: jitterArb,
    }),
    fc.record({
      kind: fc.constant('delays' as const),
      list: fc.array(time, { minLength: 1, maxLength: 5 }),
      extra: time,
      jitter: jitterArb,
    }),
    fc.record({ kind: fc.constant('constant' as const), ms: time, extra: time, jitter: jitterArb }),
    fc.record({ kind: fc.constant('randomBetween' as const), min: time, extra: time }),
  )
  .map((r): Spec => {
    switch (r.kind) {
      case 'exponential':
        return {
          kind: r.kind,
          initial: r.initial,
          factor: r.factor,
          max: r.initial + r.extra,
          jitter: r.jitter,
        };
      case 'linear':
        return {
          kind: r.kind,
          initial: r.initial,
          step: r.step,
          max: r.initial + r.extra,
          jitter: r.jitter,
        };
      case 'fibonacci':
        return { kind: r.kind, initial: r.initial, max: r.initial + r.extra, jitter: r.jitter };
      case 'delays':
        return { kind: r.kind, list: r.list, max: Math.max(...r.list) + r.extra, jitter: r.jitter };
      case 'constant':
        return { kind: r.kind, ms: r.ms, max: r.ms + r.extra, jitter: r.jitter };
      default:
        return { kind: r.kind, min: r.min, max: r.min + r.extra };
    }
  })
  // Decorrelated jitter needs a base > 0 (a RangeError at construction otherwise).
  .filter((s) => {
    if (s.kind === 'randomBetween' || s.jitter !== 'decorrelated') return true;
    const base = s.kind === 'delays' ? s.list[0]! : s.kind === 'constant' ? s.ms : s.initial;
    return base > 0;
  });

function build(spec: Spec): DelayStrategy {
  switch (spec.kind) {
    case 'exponential':
      return exponential({
        initial: spec.initial,
        factor: spec.factor,
        max: spec.max,
        jitter: spec.jitter,
      });
    case 'linear':
      return linear({ initial: spec.initial, step: spec.step, max: spec.max, jitter: spec.jitter });
    case 'fibonacci':
      return fibonacci({ initial: spec.initial, max: spec.max, jitter: spec.jitter });
    case 'delays':
      return delays(spec.list, { max: spec.max, jitter: spec.jitter });
    case 'constant':
      return constant(spec.ms, { max: spec.max, jitter: spec.jitter });
    case 'randomBetween':
      return randomBetween(spec.min, spec.max);
  }
}

/** [low, high] of the pause after attempt k failed, from the documented bounds. */
function bounds(spec: Spec, k: number): [number, number] {
  if (spec.kind === 'randomBetween') return [spec.min, spec.max];
  let raw: number;
  let base: number;
  switch (spec.kind) {
    case 'exponential':
      raw = spec.initial === 0 ? 0 : Math.min(spec.max, spec.initial * spec.factor ** (k - 1));
      base = spec.initial;
      break;
    case 'linear':
      raw = Math.min(spec.max, spec.initial + spec.step * (k - 1));
      base = spec.initial;
      break;
    case 'fibonacci':
      raw = Math.min(spec.max, spec.initial * fib(k));
      base = spec.initial;
      break;
    case 'delays':
      raw = spec.list[Math.min(k, spec.list.length) - 1]!;
      base = spec.list[0]!;
      break;
    case 'constant':
      raw = spec.ms;
      base = spec.ms;
      break;
  }
  switch (spec.jitter) {
    case 'none':
      return [raw, raw];
    case 'full':
      return [0, raw];
    case 'equal':
      return [raw / 2, raw];
    case 'decorrelated':
      return [base, spec.max];
  }
}

describe('property: deadline and bounds hold for any strategy', () => {
  it('no attempt starts at/after the deadline, every gap is within the bounds, rejection is at the last failure', async () => {
    await fc.assert(
      fc.asyncProperty(
        specArb,
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer(),
        async (spec, deadline, maxTries, seed) => {
          const { clock } = t;
          const t0 = now();
          const backoff = new Backoff({
            pause: build(spec),
            exceptions: [TransientError],
            deadline,
            maxTries,
            random: seededRandom(seed),
          });
          const { fn, starts, thrown } = alwaysFailing();
          const result = track(backoff.execute(fn));
          await clock.tickAsync(deadline + 1);
          await clock.tickAsync(1);

          // The clock runs on across runs, so t0 is large: round away the float error of `s - t0`
          // (seen once: a start at 4 ms came out as 3.99999999994).
          const since = (time: number) => Math.round((time - t0) * 1e6) / 1e6;
          const rel = starts.map(since);
          const last = rel[rel.length - 1]!;
          expect(result.status).toBe('rejected');
          expect(result.error).toBe(thrown[thrown.length - 1]);
          expect(rel.length).toBeGreaterThanOrEqual(1);
          expect(rel.length).toBeLessThanOrEqual(maxTries);
          for (const s of rel) expect(s).toBeLessThan(deadline);
          for (let k = 1; k < rel.length; k++) {
            const gap = rel[k]! - rel[k - 1]!;
            const [low, high] = bounds(spec, k);
            expect(gap).toBeGreaterThanOrEqual(Math.floor(low));
            expect(gap).toBeLessThanOrEqual(Math.max(1, Math.ceil(high)));
          }
          // Every attempt fails at once, so the execution rejects at the last failure: a pause that
          // would cross the deadline is never slept. (Exception: a sub-millisecond jittered pause
          // that fits before the deadline but whose timer, like Node's, waits a whole 1 ms: then
          // the deadline fires during it.)
          const at = since(result.at);
          expect(at).toBeLessThanOrEqual(deadline);
          if (at !== last) {
            expect(at).toBe(deadline);
            expect(last + 1).toBeGreaterThanOrEqual(deadline);
          } else if (rel.length < maxTries) {
            // Stopped early: even the longest allowed pause would have crossed the deadline.
            const [, high] = bounds(spec, rel.length);
            expect(last + high).toBeGreaterThanOrEqual(deadline);
          }
          expect(clock.countTimers()).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
