import { describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  DeadlineExceededError,
  RetryConditionError,
  TimeoutError,
} from '../src/index.js';

import { installFakeClock } from './support/clock.js';

type ErrorsModule = typeof import('../src/errors.js');

/**
 * Loads a second, independent copy of src/errors.ts (a cache-busting query makes vitest evaluate
 * the module again), standing in for a second copy of the package in one dependency tree.
 * The specifier is held in a variable so that tsc does not try to resolve the query.
 */
async function loadSecondCopy(tag: string): Promise<ErrorsModule> {
  const specifier = `../src/errors.ts?copy=${tag}`;
  return (await import(/* @vite-ignore */ specifier)) as ErrorsModule;
}

describe('error classes: names, codes, fields', () => {
  it('TimeoutError', () => {
    const error = new TimeoutError('too slow', 250);
    expect(error.name).toBe('TimeoutError');
    expect(error.code).toBe('ASYNCBACKOFF_TIMEOUT');
    expect(error.timeout).toBe(250);
    expect(error.message).toBe('too slow');
    expect(String(error)).toBe('TimeoutError: too slow');
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).not.toBeInstanceOf(AttemptTimeoutError);
    expect(error).not.toBeInstanceOf(DeadlineExceededError);
    expect(error.stack).toContain('TimeoutError');
  });

  it('AttemptTimeoutError', () => {
    const error = new AttemptTimeoutError(100, 3);
    expect(error.name).toBe('AttemptTimeoutError');
    expect(error.code).toBe('ASYNCBACKOFF_ATTEMPT_TIMEOUT');
    expect(error.timeout).toBe(100);
    expect(error.attempt).toBe(3);
    expect(error.message).toMatch(/\b3\b/);
    expect(error.message).toMatch(/\b100 ms\b/);
    expect(String(error)).toMatch(/^AttemptTimeoutError: /);
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(DeadlineExceededError);
    expect(error).not.toBeInstanceOf(RetryConditionError);
    expect(error.stack).toContain('AttemptTimeoutError');
  });

  it('timeout errors made one after another each carry their own numbers in the message', () => {
    // (The message of the last numbers is shared; no other numbers may get it.)
    const cases: Array<[number, number]> = [
      [100, 1],
      [100, 1],
      [100, 2],
      [250, 2],
      [100, 1],
    ];
    for (const [timeout, n] of cases) {
      expect(new AttemptTimeoutError(timeout, n).message).toBe(
        `Attempt ${n} timed out after ${timeout} ms`,
      );
      expect(new DeadlineExceededError(timeout, n).message).toBe(
        `Deadline of ${timeout} ms exceeded after ${n} attempt(s)`,
      );
    }
  });

  it('a message is not remembered for what is not a number (a caller ignoring the types)', () => {
    const timeout = { ms: 5, toString: () => String(timeout.ms) };
    expect(new AttemptTimeoutError(timeout as never, 1).message).toBe(
      'Attempt 1 timed out after 5 ms',
    );
    timeout.ms = 7;
    expect(new AttemptTimeoutError(timeout as never, 1).message).toBe(
      'Attempt 1 timed out after 7 ms',
    );
    expect(new DeadlineExceededError(timeout as never, 1).message).toBe(
      'Deadline of 7 ms exceeded after 1 attempt(s)',
    );
    timeout.ms = 9;
    expect(new DeadlineExceededError(timeout as never, 1).message).toBe(
      'Deadline of 9 ms exceeded after 1 attempt(s)',
    );
  });

  it('DeadlineExceededError', () => {
    const error = new DeadlineExceededError(1000, 4);
    expect(error.name).toBe('DeadlineExceededError');
    expect(error.code).toBe('ASYNCBACKOFF_DEADLINE_EXCEEDED');
    expect(error.timeout).toBe(1000);
    expect(error.attempts).toBe(4);
    expect(error.message).toMatch(/\b1000 ms\b/);
    expect(error.message).toMatch(/\b4 attempt/);
    expect(String(error)).toMatch(/^DeadlineExceededError: /);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(AttemptTimeoutError);
    expect(error).not.toBeInstanceOf(RetryConditionError);
  });

  it('RetryConditionError', () => {
    const last = { status: 'pending' };
    const error = new RetryConditionError(last, 5);
    expect(error.name).toBe('RetryConditionError');
    expect(error.code).toBe('ASYNCBACKOFF_RETRY_CONDITION');
    expect(error.lastResult).toBe(last);
    expect(error.attempts).toBe(5);
    expect(error.message).toMatch(/\b5 attempt/);
    expect(String(error)).toMatch(/^RetryConditionError: /);
    expect(error).toBeInstanceOf(RetryConditionError);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(TimeoutError);
    expect(error).not.toBeInstanceOf(AttemptTimeoutError);
    expect(error).not.toBeInstanceOf(DeadlineExceededError);
  });

  it('codes are distinct and stable across instances', () => {
    const codes = [
      new TimeoutError('x', 1).code,
      new AttemptTimeoutError(1, 1).code,
      new DeadlineExceededError(1, 1).code,
      new RetryConditionError(undefined, 1).code,
    ];
    expect(new Set(codes).size).toBe(4);
    expect(new AttemptTimeoutError(5, 9).code).toBe(new AttemptTimeoutError(7, 1).code);
  });

  it('name and code are own data properties (what structured loggers read)', () => {
    const error = new AttemptTimeoutError(10, 1);
    expect(Object.getOwnPropertyDescriptor(error, 'name')?.value).toBe('AttemptTimeoutError');
    expect(Object.getOwnPropertyDescriptor(error, 'code')?.value).toBe(
      'ASYNCBACKOFF_ATTEMPT_TIMEOUT',
    );
  });
});

describe('cause passes through ErrorOptions', () => {
  const cause = new Error('socket hang up');

  it('TimeoutError', () => {
    expect(new TimeoutError('t', 1, { cause }).cause).toBe(cause);
  });
  it('AttemptTimeoutError', () => {
    expect(new AttemptTimeoutError(1, 1, { cause }).cause).toBe(cause);
  });
  it('DeadlineExceededError', () => {
    expect(new DeadlineExceededError(1, 1, { cause }).cause).toBe(cause);
  });
  it('RetryConditionError', () => {
    expect(new RetryConditionError('x', 1, { cause }).cause).toBe(cause);
  });
  it('a non-Error cause is kept as is', () => {
    expect(new AttemptTimeoutError(1, 1, { cause: 'why' }).cause).toBe('why');
  });
  it('no cause: no own cause property', () => {
    expect(Object.hasOwn(new AttemptTimeoutError(1, 1), 'cause')).toBe(false);
    expect(Object.hasOwn(new RetryConditionError(1, 1), 'cause')).toBe(false);
  });
});

describe('instanceof across two copies of the package', () => {
  it('the second copy is a distinct module with distinct classes', async () => {
    const copy = await loadSecondCopy('distinct');
    expect(copy.AttemptTimeoutError).not.toBe(AttemptTimeoutError);
    expect(copy.TimeoutError).not.toBe(TimeoutError);
    expect(copy.DeadlineExceededError).not.toBe(DeadlineExceededError);
    expect(copy.RetryConditionError).not.toBe(RetryConditionError);
  });

  it('an error from copy B is an instance of the classes of copy A', async () => {
    const b = await loadSecondCopy('b-to-a');
    expect(new b.AttemptTimeoutError(1, 1)).toBeInstanceOf(AttemptTimeoutError);
    expect(new b.AttemptTimeoutError(1, 1)).toBeInstanceOf(TimeoutError);
    expect(new b.DeadlineExceededError(1, 1)).toBeInstanceOf(DeadlineExceededError);
    expect(new b.DeadlineExceededError(1, 1)).toBeInstanceOf(TimeoutError);
    expect(new b.TimeoutError('x', 1)).toBeInstanceOf(TimeoutError);
    expect(new b.RetryConditionError(1, 1)).toBeInstanceOf(RetryConditionError);
    // and no cross-matching between siblings
    expect(new b.AttemptTimeoutError(1, 1)).not.toBeInstanceOf(DeadlineExceededError);
    expect(new b.DeadlineExceededError(1, 1)).not.toBeInstanceOf(AttemptTimeoutError);
    expect(new b.TimeoutError('x', 1)).not.toBeInstanceOf(AttemptTimeoutError);
    expect(new b.RetryConditionError(1, 1)).not.toBeInstanceOf(TimeoutError);
  });

  it('an error from copy A is an instance of the classes of copy B', async () => {
    const b = await loadSecondCopy('a-to-b');
    expect(new AttemptTimeoutError(1, 1)).toBeInstanceOf(b.AttemptTimeoutError);
    expect(new AttemptTimeoutError(1, 1)).toBeInstanceOf(b.TimeoutError);
    expect(new DeadlineExceededError(1, 1)).toBeInstanceOf(b.DeadlineExceededError);
    expect(new DeadlineExceededError(1, 1)).toBeInstanceOf(b.TimeoutError);
    expect(new TimeoutError('x', 1)).toBeInstanceOf(b.TimeoutError);
    expect(new RetryConditionError(1, 1)).toBeInstanceOf(b.RetryConditionError);
    expect(new AttemptTimeoutError(1, 1)).not.toBeInstanceOf(b.DeadlineExceededError);
    expect(new RetryConditionError(1, 1)).not.toBeInstanceOf(b.TimeoutError);
  });

  it('a user subclass of copy A is an instance of copy B classes', async () => {
    const b = await loadSecondCopy('subclass');
    class PoolTimeout extends AttemptTimeoutError {}
    const error = new PoolTimeout(10, 2);
    expect(error).toBeInstanceOf(b.AttemptTimeoutError);
    expect(error).toBeInstanceOf(b.TimeoutError);
  });

  it('a plain Error carrying the Symbol.for brand counts as one (simulated foreign copy)', () => {
    const foreign = Object.assign(new Error('foreign'), {
      [Symbol.for('asyncbackoff.AttemptTimeoutError')]: true,
      [Symbol.for('asyncbackoff.TimeoutError')]: true,
    });
    expect(foreign).toBeInstanceOf(AttemptTimeoutError);
    expect(foreign).toBeInstanceOf(TimeoutError);
    expect(foreign).not.toBeInstanceOf(DeadlineExceededError);
  });

  it('a brand set to a truthy non-true value does not count', () => {
    const fake = { [Symbol.for('asyncbackoff.AttemptTimeoutError')]: 1 };
    expect(fake instanceof AttemptTimeoutError).toBe(false);
  });
});

describe('user subclasses', () => {
  class MyTimeout extends AttemptTimeoutError {}
  class MyDeadline extends DeadlineExceededError {}
  class MyTimeoutBase extends TimeoutError {}
  class MyCondition extends RetryConditionError {}

  it('an instance of the library class is not an instance of a user subclass', () => {
    expect(new AttemptTimeoutError(1, 1) instanceof MyTimeout).toBe(false);
    expect(new DeadlineExceededError(1, 1) instanceof MyDeadline).toBe(false);
    expect(new TimeoutError('x', 1) instanceof MyTimeoutBase).toBe(false);
    expect(new AttemptTimeoutError(1, 1) instanceof MyTimeoutBase).toBe(false);
    expect(new RetryConditionError(1, 1) instanceof MyCondition).toBe(false);
  });

  it('an instance of a user subclass is an instance of the library classes', () => {
    const mine = new MyTimeout(5, 2);
    expect(mine instanceof MyTimeout).toBe(true);
    expect(mine instanceof AttemptTimeoutError).toBe(true);
    expect(mine instanceof TimeoutError).toBe(true);
    expect(mine instanceof Error).toBe(true);
    expect(mine instanceof DeadlineExceededError).toBe(false);
    expect(mine.name).toBe('AttemptTimeoutError');
    expect(mine.code).toBe('ASYNCBACKOFF_ATTEMPT_TIMEOUT');
    expect(new MyTimeoutBase('x', 1) instanceof TimeoutError).toBe(true);
    expect(new MyCondition(1, 1) instanceof RetryConditionError).toBe(true);
  });

  it('sibling user subclasses do not match each other', () => {
    class OtherTimeout extends AttemptTimeoutError {}
    expect(new OtherTimeout(1, 1) instanceof MyTimeout).toBe(false);
    expect(new MyTimeout(1, 1) instanceof OtherTimeout).toBe(false);
  });

  it('a user subclass may override name', () => {
    class DbTimeout extends AttemptTimeoutError {
      override name = 'AttemptTimeoutError' as const;
    }
    expect(new DbTimeout(1, 1)).toBeInstanceOf(AttemptTimeoutError);
  });
});

describe('non-instances', () => {
  const values: unknown[] = [
    null,
    undefined,
    0,
    'AttemptTimeoutError',
    Symbol('x'),
    {},
    { name: 'AttemptTimeoutError', code: 'ASYNCBACKOFF_ATTEMPT_TIMEOUT', timeout: 1, attempt: 1 },
    { name: 'TimeoutError', code: 'ASYNCBACKOFF_TIMEOUT' },
    new Error('plain'),
    Object.create(null),
    () => {},
  ];

  it.each([
    ['TimeoutError', TimeoutError],
    ['AttemptTimeoutError', AttemptTimeoutError],
    ['DeadlineExceededError', DeadlineExceededError],
    ['RetryConditionError', RetryConditionError],
  ] as const)('%s rejects plain objects and primitives', (_, klass) => {
    values.forEach((value, index) => {
      expect(value instanceof klass, `values[${index}]`).toBe(false);
    });
  });
});

describe('BrokenCircuitError from a breaker', () => {
  it('open: says how long until a probe; half-open with the probe in flight: retryAfter 0 and says so', async () => {
    const { Backoff, BrokenCircuitError, circuitBreaker } = await import('asyncbackoff');
    const clock = installFakeClock();
    try {
      const breaker = circuitBreaker({
        consecutiveFailures: 1,
        halfOpenAfter: 100,
        whenOpen: 'fail',
      });
      const backoff = new Backoff({ breaker, retryAll: true, maxTries: 1 });
      await backoff.execute(() => Promise.reject(new Error('down'))).catch(() => {});
      const open = await backoff.execute(async () => 'refused').catch((e: unknown) => e);
      expect(open).toBeInstanceOf(BrokenCircuitError);
      expect((open as InstanceType<typeof BrokenCircuitError>).retryAfter).toBe(100);
      expect((open as Error).message).toBe('Circuit open: no attempt for the next 100 ms');
      await clock.tickAsync(100);
      let release!: (value: string) => void;
      const probe = backoff.execute(() => new Promise<string>((resolve) => (release = resolve)));
      const refused = await backoff.execute(async () => 'refused').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BrokenCircuitError);
      expect((refused as InstanceType<typeof BrokenCircuitError>).retryAfter).toBe(0);
      expect((refused as Error).message).toBe('Circuit half-open: a probe is in flight');
      release('probe');
      await expect(probe).resolves.toBe('probe');
    } finally {
      clock.uninstall();
    }
  });
});
