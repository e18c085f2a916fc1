/**
 * The fake clock every time-dependent test uses. Everything time-related is faked except the
 * microtask queues: fake-timers 15's default install() also fakes `nextTick` and `queueMicrotask`,
 * which loses vitest's own worker messages at uninstall (the run then hangs after the file passes).
 */
import FakeTimers from '@sinonjs/fake-timers';

export const FAKED = [
  'setTimeout',
  'clearTimeout',
  'setInterval',
  'clearInterval',
  'setImmediate',
  'clearImmediate',
  'Date',
  'hrtime',
  'performance',
] as const;

export type InstalledClock = ReturnType<typeof FakeTimers.install>;

/** Installs the fake clock (the globals above only). */
export function installFakeClock(now?: number): InstalledClock {
  return FakeTimers.install({ toFake: [...FAKED], ...(now === undefined ? {} : { now }) });
}

// Captured at import, before any fake clock: a real macrotask turn, after which Node has reported
// any rejection left unhandled.
const realSetImmediate = globalThis.setImmediate;
export const nextMacrotask = (): Promise<void> =>
  new Promise<void>((resolve) => realSetImmediate(resolve));

/**
 * Drives `clock` one timer at a time until `promise` settles, and returns it. For executions that
 * retry with a pause of 0 more than once: the second immediate retry of a turn waits for the check
 * phase, which a fake clock runs only when driven (fake-timers places an immediate created during
 * a tick one fake millisecond later).
 */
export async function settle<T>(
  clock: InstalledClock,
  promise: Promise<T>,
  limit = 100_000,
): Promise<T> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await Promise.resolve();
  for (let i = 0; !done && i < limit; i++) {
    if (clock.countTimers() === 0) {
      await Promise.resolve();
      continue;
    }
    await clock.nextAsync();
  }
  return promise;
}
