/**
 * Linking executions to long-lived signals (service shutdown, a request's signal).
 *
 * Adding and removing an abort listener costs about as much as the rest of a call, so one link per
 * instance listens for all of its live executions: the listener is added when the first execution
 * starts and removed after the event-loop turn in which the last one settled. A million calls
 * through an instance bound to one signal add one listener, not a million.
 */
import { afterTurn } from './clock.js';

/** A live execution; the link threads them on an intrusive list so add/remove cost no hashing. */
export interface Cancellable {
  cancel(reason: unknown): void;
  linkPrev: Cancellable | null;
  linkNext: Cancellable | null;
}

/** What {@link SignalLink.abortedReason} returns when no signal is aborted (a reason may be anything). */
export const NOT_ABORTED: unique symbol = Symbol('not aborted');

export class SignalLink {
  private head: Cancellable | null = null;
  private listening = false;
  private releasePending = false;

  constructor(readonly signals: readonly AbortSignal[]) {}

  /** The reason of the first aborted signal, or {@link NOT_ABORTED}. */
  abortedReason(): unknown {
    const signals = this.signals;
    for (let i = 0; i < signals.length; i++) {
      const signal = signals[i]!;
      if (signal.aborted) return signal.reason;
    }
    return NOT_ABORTED;
  }

  add(execution: Cancellable): void {
    const head = this.head;
    execution.linkPrev = null;
    execution.linkNext = head;
    if (head !== null) head.linkPrev = execution;
    this.head = execution;
    if (!this.listening) {
      this.listening = true;
      for (const signal of this.signals) signal.addEventListener('abort', this.onAbort);
    }
  }

  delete(execution: Cancellable): void {
    const { linkPrev: prev, linkNext: next } = execution;
    if (prev !== null) prev.linkNext = next;
    else if (this.head === execution) this.head = next;
    else return; // not linked (already removed)
    if (next !== null) next.linkPrev = prev;
    execution.linkPrev = null;
    execution.linkNext = null;
    if (this.head === null && this.listening && !this.releasePending) {
      this.releasePending = true;
      afterTurn(this.release);
    }
  }

  private readonly release = (): void => {
    this.releasePending = false;
    if (this.head === null && this.listening) {
      this.listening = false;
      for (const signal of this.signals) signal.removeEventListener('abort', this.onAbort);
    }
  };

  private readonly onAbort = (event: Event): void => {
    const reason = (event.target as AbortSignal).reason;
    // cancel() unlinks the execution; collect first.
    const all: Cancellable[] = [];
    for (let e = this.head; e !== null; e = e.linkNext) all.push(e);
    for (const execution of all) execution.cancel(reason);
  };
}
