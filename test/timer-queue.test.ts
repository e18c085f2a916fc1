/**
 * The shared timer queue on its own, on a fake clock: one timer for many same-length deadlines,
 * and what happens when that timer runs late (the event loop was blocked).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { afterVerdicts, FifoTimerQueue, type TimerNode } from '../src/timer-queue.js';
import { type InstalledClock, installFakeClock } from './support/clock.js';

let clock: InstalledClock;
beforeEach(() => {
  clock = installFakeClock();
});
afterEach(() => {
  clock.uninstall();
});

/** A queue entry that logs `name@time` when it expires. */
function entry(log: string[], name: string): TimerNode {
  return {
    tExpiresAt: 0,
    tPrev: null,
    tNext: null,
    tLive: false,
    onTimer(at) {
      log.push(`${name}@${at}`);
    },
  };
}

/** Timers and immediates pending on the fake clock. */
const pending = () => clock.countTimers();

describe('FifoTimerQueue', () => {
  it('expires entries in order, on time, behind one timer', async () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    queue.push(entry(log, 'a'), 0);
    await clock.tickAsync(5);
    queue.push(entry(log, 'b'), 5);
    expect(pending()).toBe(1);
    await clock.tickAsync(20);
    expect(log).toEqual(['a@20', 'b@25']);
  });

  it('a removed entry never expires, and the drained queue releases its timer after the turn', async () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    const a = entry(log, 'a');
    queue.push(a, 0);
    queue.remove(a);
    expect(pending()).toBe(2); // the timer, and the immediate that will release it
    await clock.tickAsync(1);
    expect(pending()).toBe(0);
    await clock.tickAsync(50);
    expect(log).toEqual([]);
  });

  it('run more than 2 ms late, it expires entries in the check phase, after I/O, as of when it ran', async () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    queue.push(entry(log, 'a'), 0);
    clock.jump(30); // to 30: the timer runs 10 ms late
    expect(log).toEqual([]);
    await clock.tickAsync(1); // the check phase, at 31 on this clock
    expect(log).toEqual(['a@30']);
  });

  it('lateness counts from when the timer was due, not from the head it finds', async () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    const a = entry(log, 'a');
    queue.push(a, 0); // the timer is armed for 20
    await clock.tickAsync(2);
    queue.push(entry(log, 'b'), 2); // due 22
    queue.remove(a); // the timer stays armed for 20
    clock.jump(22); // to 24: 4 ms after the timer was due, though only 2 after b
    expect(log).toEqual([]);
    await clock.tickAsync(1);
    expect(log).toEqual(['b@24']);
  });

  it('run 2 ms late or less, it expires entries at once', () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    queue.push(entry(log, 'a'), 0);
    clock.jump(22); // to 22
    expect(log).toEqual(['a@22']);
  });

  it('between a late timer and its expiry: a push arms nothing, a remove releases nothing, expiry re-arms', async () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    const b = entry(log, 'b');
    queue.push(entry(log, 'a'), 0);
    await clock.tickAsync(5);
    queue.push(b, 5);
    clock.jump(25); // to 30: a (due 20) and b (due 25) are overdue; both wait for the check phase
    const inWindow = pending();
    queue.push(entry(log, 'c'), 30); // due 50
    queue.remove(b); // answered meanwhile
    expect(pending()).toBe(inWindow);
    await clock.tickAsync(1);
    expect(log).toEqual(['a@30']);
    expect(pending()).toBe(1); // re-armed for c
    await clock.tickAsync(19);
    expect(log).toEqual(['a@30', 'c@50']);
  });

  it('one late timer makes every queue firing in the same timers phase wait, however late it is', async () => {
    const log: string[] = [];
    const first = new FifoTimerQueue(20);
    const second = new FifoTimerQueue(21);
    first.push(entry(log, 'x'), 0);
    second.push(entry(log, 'y'), 0);
    clock.jump(23); // to 23: the first runs 3 ms late, the second only 2
    expect(log).toEqual([]);
    await clock.tickAsync(1);
    expect(log).toEqual(['x@23', 'y@23']);
    // The next timers phase decides afresh: on time, at once.
    first.push(entry(log, 'z'), 24);
    clock.jump(20); // to 44
    expect(log).toEqual(['x@23', 'y@23', 'z@44']);
  });

  it('entries that came due while an expiry ran wait for the check phase, not for a 1 ms timer', async () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    const slow: TimerNode = {
      ...entry(log, 'a'),
      onTimer(at) {
        log.push(`a@${at}`);
        clock.jump(3); // the expiry itself takes 3 ms: b (due 21) comes due meanwhile
      },
    };
    queue.push(slow, 0);
    await clock.tickAsync(1);
    queue.push(entry(log, 'b'), 1);
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setImmediateSpy = vi.spyOn(globalThis, 'setImmediate');
    await clock.tickAsync(19); // to 20: a expires, and the clock is at 23 when it returns
    expect(log).toEqual(['a@20', 'b@23']);
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    expect(setImmediateSpy).toHaveBeenCalled();
    setTimeoutSpy.mockRestore();
    setImmediateSpy.mockRestore();
  });

  it('an expiry callback that throws does not strand the entries behind it', async () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    queue.push(
      {
        ...entry(log, 'a'),
        onTimer: () => {
          throw new Error('boom');
        },
      },
      0,
    );
    await clock.tickAsync(5);
    queue.push(entry(log, 'b'), 5);
    await expect(clock.tickAsync(15)).rejects.toThrow('boom');
    await clock.tickAsync(5);
    expect(log).toEqual(['b@25']);
  });

  it('afterVerdicts: during an expiry, once the reactions its verdicts queued have run; outside one, at once', async () => {
    const log: string[] = [];
    const later = { afterVerdicts: (name: string) => log.push(`after ${name}`) };
    const verdict = (name: string): TimerNode => ({
      ...entry(log, name),
      onTimer() {
        void Promise.resolve().then(() => log.push(`reaction ${name}`));
        afterVerdicts(later, name);
        log.push(`verdict ${name}`);
      },
    });
    const queue = new FifoTimerQueue(20);
    queue.push(verdict('a'), 0);
    queue.push(verdict('b'), 0);
    await clock.tickAsync(20);
    expect(log).toEqual([
      'verdict a',
      'verdict b',
      'reaction a',
      'reaction b',
      'after a',
      'after b',
    ]);
    log.length = 0;
    afterVerdicts(later, 'c');
    expect(log).toEqual(['after c']);
  });

  it('afterVerdicts: an expiry run inside another (a fake clock ticked in a callback) joins the outer batch', async () => {
    const log: string[] = [];
    const later = { afterVerdicts: (name: string) => log.push(`after ${name}`) };
    const outer = new FifoTimerQueue(20);
    const inner = new FifoTimerQueue(20);
    outer.push(
      {
        ...entry(log, 'a'),
        onTimer() {
          afterVerdicts(later, 'a');
          clock.tick(5); // runs inner's expiry from inside this one
          afterVerdicts(later, 'a2');
          log.push('verdict a');
        },
      },
      0,
    );
    await clock.tickAsync(5);
    inner.push(
      {
        ...entry(log, 'b'),
        onTimer() {
          void Promise.resolve().then(() => log.push('reaction b'));
          afterVerdicts(later, 'b');
          log.push('verdict b');
        },
      },
      5,
    );
    await clock.tickAsync(15); // to 20: outer expires; its callback ticks to 25, where inner expires
    expect(log).toEqual(['verdict b', 'verdict a', 'reaction b', 'after a', 'after b', 'after a2']);
  });

  it('an entry due exactly when an expiry returns goes on in the check phase too', async () => {
    const log: string[] = [];
    const queue = new FifoTimerQueue(20);
    queue.push(
      {
        ...entry(log, 'a'),
        onTimer(at) {
          log.push(`a@${at}`);
          clock.jump(1); // to 21: b is due this very moment
        },
      },
      0,
    );
    await clock.tickAsync(1);
    queue.push(entry(log, 'b'), 1);
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    await clock.tickAsync(19);
    expect(log).toEqual(['a@20', 'b@21']);
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    setTimeoutSpy.mockRestore();
  });
});
