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
