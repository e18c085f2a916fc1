/**
 * Linking executions to long-lived signals (service shutdown, a request's signal).
 *
 * Adding and removing an abort listener costs about as much as the rest of a call, so one link per
 * instance listens for all of its live executions: the listener is added when the first execution
 * starts and removed after the event-loop turn in which the last one settled. A million calls
 * through an instance bound to one signal add one listener, not a million.
 */
import { afterTurn } from './clock.js';

export interface Cancellable {
  cancel(reason: unknown): void;
}

const NOT_ABORTED: unique symbol = Symbol('not aborted');
export type NotAborted = typeof NOT_ABORTED;
export { NOT_ABORTED };

export class SignalLink {
  private readonly live = new Set<Cancellable>();
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
    this.live.add(execution);
    if (!this.listening) {
      this.listening = true;
      for (const signal of this.signals) signal.addEventListener('abort', this.onAbort);
    }
  }

  delete(execution: Cancellable): void {
    this.live.delete(execution);
    if (this.live.size === 0 && this.listening && !this.releasePending) {
      this.releasePending = true;
      afterTurn(this.release);
    }
  }

  /** True while listeners are attached; for tests and leak checks. */
  get attached(): boolean {
    return this.listening;
  }

  private readonly release = (): void => {
    this.releasePending = false;
    if (this.live.size === 0 && this.listening) {
      this.listening = false;
      for (const signal of this.signals) signal.removeEventListener('abort', this.onAbort);
    }
  };

  private readonly onAbort = (event: Event): void => {
    const reason = (event.target as AbortSignal).reason;
    // cancel() removes the execution from `live`; copy first.
    for (const execution of [...this.live]) execution.cancel(reason);
  };
}
