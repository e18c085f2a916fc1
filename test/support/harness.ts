/**
 * Helpers shared by the policy tests (strategies, policy, retry-if, hooks, attempts, statistics): a
 * fake clock that leaves the microtask queues real, promise tracking and scripted functions.
 */
import FakeTimers from '@sinonjs/fake-timers';
import { afterEach, beforeEach } from 'vitest';
import type { BackoffStatistics } from '../../src/index.js';
import { FAKED } from './clock.js';

export type InstalledClock = ReturnType<typeof FakeTimers.install>;

/** Installs a fake clock before each test of the calling file and uninstalls it after. */
export function useFakeClock(): { readonly clock: InstalledClock } {
  const holder = {} as { clock: InstalledClock };
  beforeEach(() => {
    holder.clock = FakeTimers.install({ toFake: [...FAKED] });
  });
  afterEach(() => {
    holder.clock.uninstall();
  });
  return holder;
}

/** Fake milliseconds since the clock was installed. */
export const now = (): number => performance.now();

export class TransientError extends Error {
  override name = 'TransientError';
}
export class FatalError extends Error {
  override name = 'FatalError';
}

export interface Tracked<T> {
  status: 'pending' | 'fulfilled' | 'rejected';
  value: T | undefined;
  error: unknown;
  /** Fake time at which the promise settled. */
  at: number;
}

/** Observes a promise (so it never counts as unhandled), recording how and when it settled. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const state: Tracked<T> = {
    status: 'pending',
    value: undefined,
    error: undefined,
    at: Number.NaN,
  };
  promise.then(
    (value) => {
      state.status = 'fulfilled';
      state.value = value;
      state.at = now();
    },
    (error: unknown) => {
      state.status = 'rejected';
      state.error = error;
      state.at = now();
    },
  );
  return state;
}

/** A promise that never settles. */
export const hang = <T = never>(): Promise<T> => new Promise<T>(() => {});

/** Resolves after `ms` fake milliseconds. */
export const sleep = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * An async function whose n-th call plays `steps[n]` (the last step repeats): an Error instance is
 * thrown (rejected), anything else returned. Records the fake time of each call and the errors.
 */
export function scripted<T>(...steps: (T | Error)[]) {
  const starts: number[] = [];
  const thrown: Error[] = [];
  const returned: T[] = [];
  const fn = async (): Promise<T> => {
    starts.push(now());
    const step = steps[Math.min(starts.length - 1, steps.length - 1)]!;
    if (step instanceof Error) {
      // A fresh object per call, so identity checks can tell attempts apart.
      const ErrorClass = step.constructor as new (message: string) => Error;
      const error = new ErrorClass(`${step.message} #${starts.length}`);
      thrown.push(error);
      throw error;
    }
    returned.push(step);
    return step;
  };
  return { fn, starts, thrown, returned };
}

/** Always fails with a fresh TransientError; records the fake start times. */
export function alwaysFailing() {
  const starts: number[] = [];
  const thrown: TransientError[] = [];
  const fn = async (): Promise<never> => {
    starts.push(now());
    const error = new TransientError(`attempt ${starts.length}`);
    thrown.push(error);
    throw error;
  };
  return { fn, starts, thrown };
}

export const ZERO_STATS: BackoffStatistics = {
  attempts: 0,
  done: 0,
  errors: 0,
  cancels: 0,
  sumTime: 0,
  timeouts: 0,
  retries: 0,
  giveUps: 0,
  sleptTime: 0,
  budgetRefusals: 0,
  successes: 0,
  lateResults: 0,
  breakerRefusals: 0,
};
export const stats = (partial: Partial<BackoffStatistics>): BackoffStatistics => ({
  ...ZERO_STATS,
  ...partial,
});

/**
 * Applies a decorator the way TypeScript's legacy (`experimentalDecorators`) emit does: the test
 * transformer does not support decorator syntax, so the classes in these tests decorate by hand.
 */
export function decorateMethod(
  klass: { prototype: object },
  key: string,
  decorator: (target: object, key: string, descriptor: PropertyDescriptor) => unknown,
): void {
  const descriptor = Object.getOwnPropertyDescriptor(klass.prototype, key)!;
  const result = decorator(klass.prototype, key, descriptor) as PropertyDescriptor | undefined;
  Object.defineProperty(klass.prototype, key, result ?? descriptor);
}
