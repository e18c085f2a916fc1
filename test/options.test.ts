import FakeTimers from '@sinonjs/fake-timers';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AttemptTimeoutError,
  asyncbackoff,
  asyncretry,
  Backoff,
  type BackoffOptions,
  DeadlineExceededError,
} from '../src/index.js';

/** Lets a deliberately wrong value through the type checker. */
const bad = (value: unknown): any => value;

type ErrorCtor = typeof TypeError | typeof RangeError;

interface Case {
  readonly title: string;
  readonly options: Record<string, unknown>;
  readonly error: ErrorCtor;
  /** Must match the message: the option's name and the given value. */
  readonly message: RegExp;
}

/** Runs `build` and returns what it threw (fails the test when nothing was thrown). */
function thrown(build: () => unknown): Error {
  try {
    build();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw, nothing was thrown');
}

function expectThrow(build: () => unknown, klass: ErrorCtor, message: RegExp): void {
  const error = thrown(build);
  // RangeError and TypeError are siblings, so the exact class is checked, not just instanceof.
  expect(error).toBeInstanceOf(klass);
  expect(error.constructor).toBe(klass);
  expect(error.message).toMatch(message);
}

const MAX = 2_147_483_647;

const cases: Case[] = [
  // attemptTimeout: > 0, <= 2^31-1, a number
  {
    title: 'attemptTimeout 0',
    options: { attemptTimeout: 0 },
    error: RangeError,
    message: /attemptTimeout.*got 0\b/,
  },
  {
    title: 'attemptTimeout -1',
    options: { attemptTimeout: -1 },
    error: RangeError,
    message: /attemptTimeout.*got -1\b/,
  },
  {
    title: 'attemptTimeout -Infinity',
    options: { attemptTimeout: Number.NEGATIVE_INFINITY },
    error: RangeError,
    message: /attemptTimeout.*got -Infinity/,
  },
  {
    title: 'attemptTimeout NaN',
    options: { attemptTimeout: Number.NaN },
    error: RangeError,
    message: /attemptTimeout.*got NaN/,
  },
  {
    title: 'attemptTimeout 2^31',
    options: { attemptTimeout: MAX + 1 },
    error: RangeError,
    message: /attemptTimeout.*2147483647.*got 2147483648\b/,
  },
  {
    title: "attemptTimeout '100'",
    options: { attemptTimeout: '100' },
    error: TypeError,
    message: /attemptTimeout.*'100'/,
  },
  {
    title: 'attemptTimeout true',
    options: { attemptTimeout: true },
    error: TypeError,
    message: /attemptTimeout.*true/,
  },
  // deadline: >= 0 (0 allowed), <= 2^31-1, a number
  {
    title: 'deadline -1',
    options: { deadline: -1 },
    error: RangeError,
    message: /deadline.*got -1\b/,
  },
  {
    title: 'deadline NaN',
    options: { deadline: Number.NaN },
    error: RangeError,
    message: /deadline.*got NaN/,
  },
  {
    title: 'deadline 2^31',
    options: { deadline: MAX + 1 },
    error: RangeError,
    message: /deadline.*got 2147483648\b/,
  },
  {
    title: "deadline '1000'",
    options: { deadline: '1000' },
    error: TypeError,
    message: /deadline.*'1000'/,
  },
  // pause: >= 0 number, a strategy, or a function
  { title: 'pause -1', options: { pause: -1 }, error: RangeError, message: /pause.*got -1\b/ },
  {
    title: 'pause NaN',
    options: { pause: Number.NaN },
    error: RangeError,
    message: /pause.*got NaN/,
  },
  {
    title: 'pause 2^31',
    options: { pause: MAX + 1 },
    error: RangeError,
    message: /pause.*got 2147483648\b/,
  },
  {
    title: 'pause Infinity',
    options: { pause: Number.POSITIVE_INFINITY },
    error: RangeError,
    message: /pause.*got Infinity/,
  },
  { title: "pause 'x'", options: { pause: 'x' }, error: TypeError, message: /pause.*'x'/ },
  { title: 'pause {}', options: { pause: {} }, error: TypeError, message: /pause.*object/ },
  {
    title: 'pause { delay: 5 } (not a strategy)',
    options: { pause: { delay: 5 } },
    error: TypeError,
    message: /pause.*object/,
  },
  // maxTries: an integer >= 1
  {
    title: 'maxTries 0',
    options: { maxTries: 0 },
    error: RangeError,
    message: /maxTries.*got 0\b/,
  },
  {
    title: 'maxTries 1.5',
    options: { maxTries: 1.5 },
    error: RangeError,
    message: /maxTries.*got 1\.5\b/,
  },
  {
    title: 'maxTries -1',
    options: { maxTries: -1 },
    error: RangeError,
    message: /maxTries.*got -1\b/,
  },
  {
    title: 'maxTries NaN',
    options: { maxTries: Number.NaN },
    error: RangeError,
    message: /maxTries.*got NaN/,
  },
  {
    title: 'maxTries 2^31 (above the largest count)',
    options: { maxTries: 2 ** 31 },
    error: RangeError,
    message: /maxTries.*got 2147483648/,
  },
  {
    title: 'attemptTimeout 0.5 (a time in seconds?)',
    options: { attemptTimeout: 0.5 },
    error: RangeError,
    message: /attemptTimeout' is 0\.5 ms; times are milliseconds \(write 500 for 0\.5 s\)/,
  },
  {
    title: 'pause 0.1 (a time in seconds?)',
    options: { pause: 0.1 },
    error: RangeError,
    message: /pause' is 0\.1 ms; times are milliseconds/,
  },
  {
    title: 'deadline -0',
    options: { deadline: -0 },
    error: RangeError,
    message: /deadline.*got -0/,
  },
  {
    title: "maxTries '3'",
    options: { maxTries: '3' },
    error: TypeError,
    message: /maxTries.*'3'/,
  },
  // giveup
  {
    title: 'giveup true',
    options: { giveup: true },
    error: TypeError,
    message: /giveup.*function.*true/,
  },
  {
    title: "giveup 'never'",
    options: { giveup: 'never' },
    error: TypeError,
    message: /giveup.*function.*'never'/,
  },
  // exceptions
  {
    title: 'exceptions Error (not an array)',
    options: { exceptions: Error },
    error: TypeError,
    message: /exceptions.*array.*function/,
  },
  {
    title: "exceptions 'Error'",
    options: { exceptions: 'Error' },
    error: TypeError,
    message: /exceptions.*array.*'Error'/,
  },
  {
    title: "exceptions ['Error']",
    options: { exceptions: ['Error'] },
    error: TypeError,
    message: /exceptions\[0\].*class.*'Error'/,
  },
  {
    title: 'exceptions [TypeError, arrow function]',
    options: { exceptions: [TypeError, () => {}] },
    error: TypeError,
    message: /exceptions\[1\].*class.*function/,
  },
  {
    title: 'exceptions [null]',
    options: { exceptions: [null] },
    error: TypeError,
    message: /exceptions\[0\].*null/,
  },
  {
    title: 'exceptions [{}]',
    options: { exceptions: [{}] },
    error: TypeError,
    message: /exceptions\[0\].*object/,
  },
  // signal
  {
    title: 'signal: an AbortController (a common slip)',
    options: { signal: new AbortController() },
    error: TypeError,
    message: /signal.*AbortSignal.*AbortController/,
  },
  {
    title: 'signal: a look-alike object',
    options: { signal: { aborted: false, addEventListener() {} } },
    error: TypeError,
    message: /signal.*AbortSignal.*object/,
  },
  {
    title: 'signal: null',
    options: { signal: null },
    error: TypeError,
    message: /signal.*AbortSignal.*null/,
  },
  // booleans
  {
    title: "retryAll 'yes'",
    options: { retryAll: 'yes' },
    error: TypeError,
    message: /retryAll.*boolean.*'yes'/,
  },
  {
    title: 'returnLastResult 1',
    options: { returnLastResult: 1 },
    error: TypeError,
    message: /returnLastResult.*boolean.*1/,
  },
  {
    title: "context 'off'",
    options: { context: 'off' },
    error: TypeError,
    message: /'context'.*boolean.*'off'/,
  },
  // maxRetryAfter
  {
    title: 'maxRetryAfter -1',
    options: { maxRetryAfter: -1 },
    error: RangeError,
    message: /maxRetryAfter.*-1/,
  },
  {
    title: 'maxRetryAfter NaN',
    options: { maxRetryAfter: Number.NaN },
    error: RangeError,
    message: /maxRetryAfter.*NaN/,
  },
  {
    title: "maxRetryAfter '5'",
    options: { maxRetryAfter: '5' },
    error: TypeError,
    message: /maxRetryAfter.*'5'/,
  },
  // budget
  {
    title: 'budget {}',
    options: { budget: {} },
    error: TypeError,
    message: /budget.*RetryBudget.*object/,
  },
  {
    title: 'budget missing recordSuccess',
    options: { budget: { tryAcquire: () => true, recordFailure() {} } },
    error: TypeError,
    message: /budget/,
  },
  // function options
  {
    title: 'retryIf true',
    options: { retryIf: true },
    error: TypeError,
    message: /retryIf.*function.*true/,
  },
  {
    title: "retryIf 'method' (no method names for retryIf)",
    options: { retryIf: 'isPending' },
    error: TypeError,
    message: /retryIf.*'isPending'/,
  },
  {
    title: 'random 0.5',
    options: { random: 0.5 },
    error: TypeError,
    message: /random.*function.*0\.5/,
  },
  {
    title: 'retryAfter 100',
    options: { retryAfter: 100 },
    error: TypeError,
    message: /retryAfter.*function.*100/,
  },
  {
    title: 'policy {}',
    options: { policy: {} },
    error: TypeError,
    message: /policy.*function or a method name.*object/,
  },
  {
    title: "policy '' (empty method name)",
    options: { policy: '' },
    error: TypeError,
    message: /policy.*''/,
  },
  {
    title: 'onRetry 1',
    options: { onRetry: 1 },
    error: TypeError,
    message: /onRetry.*function or a method name.*1/,
  },
  {
    title: 'afterFailure []',
    options: { afterFailure: [] },
    error: TypeError,
    message: /afterFailure.*array/,
  },
  {
    title: 'onGiveup true',
    options: { onGiveup: true },
    error: TypeError,
    message: /onGiveup.*true/,
  },
  {
    title: 'onSuccess {}',
    options: { onSuccess: {} },
    error: TypeError,
    message: /onSuccess.*object/,
  },
  // unknown keys
  {
    title: 'unknown key timeout',
    options: { timeout: 100 },
    error: TypeError,
    message: /unknown option 'timeout'/,
  },
  {
    title: 'unknown key max_tries (aiomisc spelling)',
    options: { max_tries: 3 },
    error: TypeError,
    message: /unknown option 'max_tries'/,
  },
  {
    title: 'unknown key with an undefined value',
    options: { attempt_timeout: undefined },
    error: TypeError,
    message: /unknown option 'attempt_timeout'/,
  },
  {
    title: 'misspelled maxtries',
    options: { maxtries: 3 },
    error: TypeError,
    message: /unknown option 'maxtries'/,
  },
];

describe('option validation: new Backoff(options)', () => {
  it.each(cases)('$title → $error.name', ({ options, error, message }) => {
    expectThrow(() => new Backoff(bad(options)), error, message);
    expect(thrown(() => new Backoff(bad(options))).message).toMatch(/^Backoff: /);
  });
});

describe('option validation: asyncbackoff(options)', () => {
  it.each(cases)('$title → $error.name', ({ options, error, message }) => {
    expectThrow(() => asyncbackoff(bad(options)), error, message);
    // The message names what the user called, not the class behind it.
    expect(thrown(() => asyncbackoff(bad(options))).message).toMatch(/^asyncbackoff: /);
  });
});

describe('option validation: asyncretry(3, options)', () => {
  it.each(cases.filter((c) => !('maxTries' in c.options)))(
    '$title → $error.name',
    ({ options, error, message }) => {
      expectThrow(() => asyncretry(3, bad(options)), error, message);
      expect(thrown(() => asyncretry(3, bad(options))).message).toMatch(/^asyncretry: /);
    },
  );
});

describe('option validation: asyncbackoff positional (attemptTimeout, deadline, pause, ...)', () => {
  it.each([
    [[0, 1000], RangeError, /attemptTimeout.*got 0\b/],
    [[-1, 1000], RangeError, /attemptTimeout.*got -1\b/],
    [[Number.NaN, 1000], RangeError, /attemptTimeout.*got NaN/],
    [[MAX + 1, 1000], RangeError, /attemptTimeout.*got 2147483648\b/],
    [['100', 1000], TypeError, /attemptTimeout.*'100'/],
    [[100, -1], RangeError, /deadline.*got -1\b/],
    [[100, Number.NaN], RangeError, /deadline.*got NaN/],
    [[100, '1000'], TypeError, /deadline.*'1000'/],
    [[100, 1000, -1], RangeError, /pause.*got -1\b/],
    [[100, 1000, Number.NaN], RangeError, /pause.*got NaN/],
    [[100, 1000, 'x'], TypeError, /pause.*'x'/],
    // the third argument is the pause: an options object there is a misplaced argument
    [[100, 1000, { maxTries: 3 }], TypeError, /pause/],
    [[100, 1000, 0, 'Error'], TypeError, /argument 4 must be an error class.*'Error'/],
    [[100, 1000, 0, TypeError, () => {}], TypeError, /exceptions\[1\].*function/],
    [[100, 1000, 0, [TypeError]], TypeError, /argument 4 must be an error class.*array/],
    // An AbortSignal (or any class instance) last is not the trailing options: it is refused.
    [
      [100, 1000, 0, Error, new AbortController().signal],
      TypeError,
      /argument 5 must be an error class.*AbortSignal/,
    ],
    [[100, 1000, 0, TypeError, { maxTries: 0 }], RangeError, /maxTries.*got 0\b/],
    [[100, 1000, 0, { maxTries: '3' }], TypeError, /maxTries.*'3'/],
    [[100, 1000, 0, { giveup: 1 }], TypeError, /giveup.*1/],
    [[100, 1000, 0, { signal: {} }], TypeError, /signal.*AbortSignal/],
    [[100, 1000, 0, { bogus: 1 }], TypeError, /unknown option 'bogus'/],
    // an options object that is not last is taken as an exception entry and rejected
    [
      [100, 1000, 0, { maxTries: 3 }, TypeError],
      TypeError,
      /argument 4 must be an error class.*object/,
    ],
  ] as const)('asyncbackoff(%o) → %o', (args, error, message) => {
    expectThrow(() => (asyncbackoff as any)(...args), error, message);
    expect(thrown(() => (asyncbackoff as any)(...args)).message).toMatch(/^asyncbackoff: /);
  });

  it.each([
    [[], /expected .*got 0 argument/],
    [[100], /expected .*got 1 argument/],
    [['100'], /expected .*got 1 argument/],
  ] as const)('asyncbackoff(%o) → TypeError (too few arguments)', (args, message) => {
    expectThrow(() => (asyncbackoff as any)(...args), TypeError, message);
  });
});

describe('positional / options conflicts in asyncbackoff', () => {
  it.each([
    ['pause', [1, 2, 0, { pause: 3 }]],
    ['attemptTimeout', [1, 2, 0, { attemptTimeout: 3 }]],
    ['deadline', [1, 2, 0, { deadline: 3 }]],
    ['exceptions', [1, 2, 0, { exceptions: [TypeError] }]],
    ['exceptions', [1, 2, 0, RangeError, { exceptions: [TypeError] }]],
    // undefined pause positionally still counts as given positionally
    ['pause', [1, 2, undefined, { pause: 3 }]],
    // even an undefined value in the trailing options conflicts
    ['deadline', [1, 2, 0, { deadline: undefined }]],
  ] as const)("'%s' both positional and in the trailing options → TypeError", (key, args) => {
    expectThrow(
      () => (asyncbackoff as any)(...args),
      TypeError,
      new RegExp(`'${key}'.*positionally`),
    );
  });

  it('asyncbackoff(1, 2, 0, { pause: 3 }) names the option', () => {
    expect(() => asyncbackoff(1, 2, 0, bad({ pause: 3 }))).toThrow(TypeError);
    expect(() => asyncbackoff(1, 2, 0, bad({ pause: 3 }))).toThrow(/pause/);
  });

  it('trailing options without a conflict are accepted', () => {
    const giveup = () => false;
    expect(() => asyncbackoff(1, 2, 0, { maxTries: 3, giveup })).not.toThrow();
    expect(() => asyncbackoff(1, 2, 0, TypeError, RangeError, { maxTries: 3 })).not.toThrow();
    expect(() => asyncbackoff(null, null, undefined, { retryAll: true })).not.toThrow();
  });
});

describe('asyncretry(maxTries, options)', () => {
  it.each([
    ["'3'", '3', TypeError, /maxTries.*'3'/],
    ['null', null, TypeError, /maxTries.*null/],
    ['undefined', undefined, TypeError, /maxTries.*undefined/],
    ['0', 0, RangeError, /maxTries.*got 0\b/],
    ['-1', -1, RangeError, /maxTries.*got -1\b/],
    ['1.5', 1.5, RangeError, /maxTries.*got 1\.5\b/],
    ['NaN', Number.NaN, RangeError, /maxTries.*got NaN/],
    ['Infinity', Number.POSITIVE_INFINITY, RangeError, /maxTries.*got Infinity/],
  ] as const)('asyncretry(%s) → %o', (_, value, error, message) => {
    expectThrow(() => asyncretry(bad(value)), error, message);
    // maxTries is required here, so "or null" would be wrong advice.
    expect(thrown(() => asyncretry(bad(value))).message).toMatch(
      /^asyncretry: 'maxTries' must be an integer >= 1 and <= 2147483647, got /,
    );
  });

  it('asyncretry(3, { maxTries: 2 }) → TypeError naming maxTries', () => {
    expectThrow(() => asyncretry(3, bad({ maxTries: 2 })), TypeError, /maxTries/);
  });

  it('asyncretry(3, { maxTries: undefined }) → TypeError too (the key is given)', () => {
    expectThrow(() => asyncretry(3, bad({ maxTries: undefined })), TypeError, /maxTries/);
  });

  it.each([
    ["'x'", 'x', /options.*object.*'x'/],
    ['null', null, /options.*object.*null/],
    ['[]', [], /options.*object.*array/],
    ['5', 5, /options.*object.*5/],
  ] as const)('asyncretry(3, %s) → TypeError', (_, value, message) => {
    expectThrow(() => asyncretry(3, bad(value)), TypeError, message);
  });

  it('asyncretry(1) and asyncretry(3, {}) are fine', () => {
    expect(() => asyncretry(1)).not.toThrow();
    expect(() => asyncretry(3, {})).not.toThrow();
    expect(() => asyncretry(3, undefined)).not.toThrow();
  });
});

describe('options argument itself', () => {
  it.each([
    ['a number', 5, /options.*object.*5/],
    ['a string', 'fast', /options.*object.*'fast'/],
    ['true', true, /options.*object.*true/],
  ] as const)('new Backoff(%s) → TypeError', (_, value, message) => {
    expectThrow(() => new Backoff(bad(value)), TypeError, message);
  });

  it('new Backoff(), new Backoff(undefined), new Backoff({}) are fine', () => {
    expect(() => new Backoff()).not.toThrow();
    expect(() => new Backoff(undefined)).not.toThrow();
    expect(() => new Backoff({})).not.toThrow();
  });

  it('option objects are not mutated', () => {
    const options: BackoffOptions = { attemptTimeout: 100, exceptions: [TypeError], maxTries: 3 };
    const snapshot = { ...options, exceptions: [...(options.exceptions ?? [])] };
    new Backoff(options);
    asyncbackoff(options);
    expect(options).toEqual(snapshot);
  });

  it('a later change to the exceptions array does not change the policy', async () => {
    const exceptions: (typeof Error)[] = [TypeError];
    const backoff = new Backoff({ exceptions, maxTries: 3 });
    exceptions.push(RangeError);
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new RangeError('not retriable at construction time');
    };
    await expect(backoff.execute(failing)).rejects.toThrow(RangeError);
    expect(calls).toBe(1);
  });
});

describe('accepted values at the edges', () => {
  it.each([
    ['attemptTimeout 1', { attemptTimeout: 1 }],
    ['attemptTimeout 1.5 (fractional ms)', { attemptTimeout: 1.5 }],
    ['attemptTimeout 2^31-1', { attemptTimeout: MAX }],
    ['attemptTimeout Infinity (unbounded)', { attemptTimeout: Number.POSITIVE_INFINITY }],
    ['deadline 0', { deadline: 0 }],
    ['deadline 2^31-1', { deadline: MAX }],
    ['deadline Infinity (unbounded)', { deadline: Number.POSITIVE_INFINITY }],
    ['pause 0', { pause: 0 }],
    ['pause 2^31-1', { pause: MAX }],
    ['pause function', { pause: () => 10 }],
    ['pause strategy', { pause: { delay: () => 10 } }],
    ['maxTries 1', { maxTries: 1 }],
    ['maxTries 2^31-1', { maxTries: MAX }],
    ['maxTries Infinity (unbounded)', { maxTries: Number.POSITIVE_INFINITY }],
    ['exceptions []', { exceptions: [] }],
    ['exceptions [Error, class {}]', { exceptions: [Error, class Custom {}] }],
    // a plain function has a prototype, so it is accepted as a class
    ['exceptions [function]', { exceptions: [function Legacy() {}] }],
    ['signal', { signal: new AbortController().signal }],
    ['signal AbortSignal.timeout', { signal: AbortSignal.timeout(MAX) }],
    ['signal already aborted', { signal: AbortSignal.abort() }],
    ['policy method name', { policy: 'decide' }],
    ['hook method names', { onRetry: 'a', afterFailure: 'b', onGiveup: 'c', onSuccess: 'd' }],
    ['maxRetryAfter 0', { maxRetryAfter: 0 }],
    ['maxRetryAfter Infinity', { maxRetryAfter: Number.POSITIVE_INFINITY }],
    ['retryAll false', { retryAll: false }],
    ['budget', { budget: { tryAcquire: () => true, recordFailure() {}, recordSuccess() {} } }],
  ] as const)('%s', (_, options) => {
    expect(() => new Backoff(bad(options))).not.toThrow();
    expect(() => asyncbackoff(bad(options))).not.toThrow();
  });

  it('every option may be undefined', () => {
    expect(
      () =>
        new Backoff({
          attemptTimeout: undefined,
          deadline: undefined,
          pause: undefined,
          exceptions: undefined,
          retryAll: undefined,
          maxTries: undefined,
          giveup: undefined,
          signal: undefined,
          policy: undefined,
          retryIf: undefined,
          returnLastResult: undefined,
          onRetry: undefined,
          afterFailure: undefined,
          onGiveup: undefined,
          onSuccess: undefined,
          random: undefined,
          budget: undefined,
          retryAfter: undefined,
          maxRetryAfter: undefined,
        }),
    ).not.toThrow();
  });

  it('null is accepted where it means "unbounded" or "none"', () => {
    expect(
      () => new Backoff({ attemptTimeout: null, deadline: null, maxTries: null }),
    ).not.toThrow();
    expect(() => new Backoff({ giveup: null })).not.toThrow();
    expect(() => asyncbackoff(null, null)).not.toThrow();
    expect(() => asyncbackoff({ attemptTimeout: null, deadline: null })).not.toThrow();
  });
});

// process.nextTick stays real: a vitest report queued on a fake nextTick is lost at uninstall and
// deadlocks the run (fake-timers 15's install() fakes nextTick and queueMicrotask by default).
describe('null / undefined mean unbounded', () => {
  let clock: InstalledClock | undefined;
  afterEach(() => {
    clock?.uninstall();
    clock = undefined;
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
  ] as const)('maxTries %s: retries until success', async (_, maxTries) => {
    const backoff = new Backoff({ maxTries, retryAll: true });
    let calls = 0;
    const result = await backoff.execute(async () => {
      if (++calls < 200) throw new Error(`fail ${calls}`);
      return calls;
    });
    expect(result).toBe(200);
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['Infinity', Number.POSITIVE_INFINITY],
  ] as const)('attemptTimeout %s: an attempt may run for days', async (_, attemptTimeout) => {
    clock = FakeTimers.install({ toNotFake: ['nextTick', 'queueMicrotask'] });
    const backoff = new Backoff({ attemptTimeout });
    const sleepy = () => new Promise<string>((resolve) => setTimeout(resolve, MAX * 2, 'done'));
    const promise = backoff.execute(sleepy);
    expect(clock.countTimers()).toBe(1); // only the function's own timer
    await clock.tickAsync(MAX * 2);
    await expect(promise).resolves.toBe('done');
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['Infinity', Number.POSITIVE_INFINITY],
  ] as const)('deadline %s: retries with pauses for days', async (_, deadline) => {
    clock = FakeTimers.install({ toNotFake: ['nextTick', 'queueMicrotask'] });
    const backoff = new Backoff({ deadline, pause: MAX, maxTries: 3, retryAll: true });
    let calls = 0;
    const promise = backoff.execute(async () => {
      if (++calls < 3) throw new Error('again');
      return calls;
    });
    await clock.tickAsync(MAX * 2);
    await expect(promise).resolves.toBe(3);
  });

  it('asyncbackoff(null, null): neither limit applies', async () => {
    clock = FakeTimers.install({ toNotFake: ['nextTick', 'queueMicrotask'] });
    const slow = asyncbackoff(
      null,
      null,
    )(() => new Promise<number>((resolve) => setTimeout(resolve, MAX * 3, 7)));
    const promise = slow();
    await clock.tickAsync(MAX * 3);
    await expect(promise).resolves.toBe(7);
  });
});

describe('validated values take effect', () => {
  let clock: InstalledClock | undefined;
  afterEach(() => {
    clock?.uninstall();
    clock = undefined;
  });

  it('deadline 0 rejects with DeadlineExceededError and never calls fn', async () => {
    const backoff = new Backoff({ deadline: 0 });
    let calls = 0;
    const error = await backoff
      .execute(async () => {
        calls++;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(calls).toBe(0);
  });

  it('attemptTimeout 2^31-1 is honoured, not fired at once', async () => {
    clock = FakeTimers.install({ toNotFake: ['nextTick', 'queueMicrotask'] });
    const backoff = new Backoff({ attemptTimeout: MAX, maxTries: 1 });
    const promise = backoff.execute(() => new Promise<never>(() => {})).catch((e: unknown) => e);
    await clock.tickAsync(MAX - 1);
    let settled = false;
    void promise.then(() => {
      settled = true;
    });
    await clock.tickAsync(0);
    expect(settled).toBe(false);
    await clock.tickAsync(1);
    expect(await promise).toBeInstanceOf(AttemptTimeoutError);
  });

  it('maxTries 1 makes exactly one call', async () => {
    const backoff = new Backoff({ maxTries: 1, retryAll: true });
    let calls = 0;
    await expect(
      backoff.execute(async () => {
        calls++;
        throw new Error('once');
      }),
    ).rejects.toThrow('once');
    expect(calls).toBe(1);
  });
});

describe('method argument validation', () => {
  const backoff = new Backoff();

  it('execute with a non-function rejects (does not throw) with a TypeError', async () => {
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = backoff.execute(bad('fn'));
    }).not.toThrow();
    await expect(promise).rejects.toThrow(TypeError);
    await expect(backoff.execute(bad(42))).rejects.toThrow(/fn.*42/);
  });

  it('wrap with a non-function throws a TypeError', () => {
    expectThrow(() => backoff.wrap(bad({})), TypeError, /fn.*object/);
  });

  it('withSignal with a non-AbortSignal throws a TypeError', () => {
    expectThrow(
      () => backoff.withSignal(bad(new AbortController())),
      TypeError,
      /signal.*AbortSignal.*AbortController/,
    );
    expectThrow(() => backoff.withSignal(bad(undefined)), TypeError, /signal.*undefined/);
  });
});

describe('the option names, read when the module is evaluated', () => {
  // Every documented option, spelled out here (not read from the module under test).
  const names = [
    'attemptTimeout',
    'deadline',
    'pause',
    'exceptions',
    'retryOn',
    'retryAll',
    'maxTries',
    'giveup',
    'signal',
    'policy',
    'retryIf',
    'returnLastResult',
    'onRetry',
    'afterFailure',
    'onGiveup',
    'onSuccess',
    'onLateResult',
    'random',
    'budget',
    'breaker',
    'retryAfter',
    'maxRetryAfter',
    'context',
  ];

  it.each(names)('a freshly imported normalizeOptions knows the option %s', async (name) => {
    vi.resetModules();
    const { normalizeOptions } = await import('../src/options.js');
    expect(() => normalizeOptions({ [name]: undefined }, 'Fresh')).not.toThrow();
  });

  it('a freshly imported normalizeOptions still refuses a name it does not know', async () => {
    vi.resetModules();
    const { normalizeOptions } = await import('../src/options.js');
    expectThrow(() => normalizeOptions(bad({ '': 1 }), 'Fresh'), TypeError, /unknown option ''/);
  });
});

describe('options: null and function-shaped values', () => {
  it('new Backoff(null) is refused, as by every other factory; undefined is the defaults', async () => {
    expectThrow(
      () => new Backoff(bad(null)),
      TypeError,
      /^Backoff: options must be an object, got null$/,
    );
    const backoff = new Backoff(undefined);
    await expect(backoff.execute(async () => 'ok')).resolves.toBe('ok');
    expect(backoff.statistics).toMatchObject({ attempts: 1, successes: 1 });
  });

  it('a function carrying the RetryBudget methods is not a budget', () => {
    const budget = Object.assign(() => true, {
      tryAcquire: () => true,
      recordFailure() {},
      recordSuccess() {},
    });
    expectThrow(() => new Backoff(bad({ budget })), TypeError, /'budget' must be a RetryBudget/);
  });

  it('a function carrying the CircuitBreaker methods is not a breaker', () => {
    const breaker = Object.assign(() => true, {
      tryPass: () => ({}),
      recordSuccess() {},
      recordFailure() {},
      release() {},
      retryAfter: () => 0,
      onReady() {},
    });
    expectThrow(
      () => new Backoff(bad({ breaker })),
      TypeError,
      /'breaker' must be a CircuitBreaker/,
    );
  });
});
