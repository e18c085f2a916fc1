/**
 * The engine keeps one instance of each class of the verdict path alive (`Execution.specimens`),
 * so that V8 keeps those shapes, and the optimized code that refers to them, through a full
 * collection that finds no execution alive. A specimen only does that if it has the very shape a
 * real instance ends up with: checked with V8's own %HaveSameMap.
 */
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { Attempt } from '../src/attempt.js';
import { AttemptTimeoutError, DeadlineExceededError } from '../src/errors.js';
import { Execution } from '../src/execution.js';
import { Backoff, currentAttempt } from '../src/index.js';

v8.setFlagsFromString('--allow-natives-syntax');
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (
  a: object,
  b: object,
) => boolean;

const never = () => new Promise<never>(() => {});

function specimen<T>(type: abstract new (...args: any[]) => T): T {
  const found = Execution.specimens.filter((value) => value instanceof type);
  expect(found).toHaveLength(1);
  return found[0] as T;
}

describe('Execution.specimens', () => {
  it.each([
    ['an attempt timeout', { attemptTimeout: 5, maxTries: 1 }],
    ['a fractional attempt timeout', { attemptTimeout: 5.5, maxTries: 1 }],
    ['a deadline', { deadline: 5 }],
    ['two attempts under a deadline', { attemptTimeout: 3, deadline: 5, maxTries: 2 }],
  ])('share the shapes of a real execution that ends by %s', async (_name, options) => {
    const backoff = new Backoff(options);
    const attempts: Attempt[] = [];
    const error = await backoff
      .execute(() => {
        attempts.push(currentAttempt() as Attempt);
        return never();
      })
      .catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(Error);
    const first = attempts[0]!;
    expect(first).toBeInstanceOf(Attempt);
    expect(haveSameMap(specimen(Attempt), first)).toBe(true);
    expect(haveSameMap(specimen(Execution), first.owner as Execution)).toBe(true);
    const type =
      error instanceof DeadlineExceededError ? DeadlineExceededError : AttemptTimeoutError;
    expect(haveSameMap(specimen<object>(type), error as object)).toBe(true);
  });
});
