/**
 * Linking executions to long-lived signals (service shutdown, a request's signal).
 *
 * Adding and removing an abort listener costs about as much as the rest of a call, so each signal
 * has one hub per process copy, shared by every instance, view and one-off `retry()` bound to it:
 * the hub listens while it has live executions. A million calls through instances bound to one
 * signal add one listener, not a million, and a view per request (`withSignal(req.signal)`) on an
 * instance bound to `shutdown` adds nothing to `shutdown` per request.
 *
 * When its last execution settles, a hub that served several executions keeps listening until the
 * end of the event-loop turn (so a loop of calls does not add and remove it each time); a hub that
 * served only one stops at once, so a signal made for one call is not held past that call.
 */
import { afterTurn } from './clock.js';

/** A live execution, as the hubs see it. */
export interface Cancellable {
  cancel(reason: unknown): void;
}

/** One execution's place in one hub's list. */
export class Membership {
  prev: Membership | null = null;
  next: Membership | null = null;
  constructor(
    readonly hub: SignalHub,
    readonly member: Cancellable,
  ) {}
}

class SignalHub {
  private head: Membership | null = null;
  /** Whether the abort listener is on; it comes off when the signal aborts. */
  private listening = false;
  private releasePending = false;
  /** Executions served since the hub was made; see the file header. */
  private served = 0;

  constructor(readonly signal: AbortSignal) {}

  join(member: Cancellable): Membership {
    const node = new Membership(this, member);
    const head = this.head;
    node.next = head;
    if (head !== null) head.prev = node;
    this.head = node;
    this.served++;
    if (!this.listening) {
      this.listening = true;
      this.signal.addEventListener('abort', this);
    }
    return node;
  }

  /** Once per membership: the execution's release() and withLock's `finally` drop what they joined. */
  leave(node: Membership): void {
    const { prev, next } = node;
    if (prev !== null) prev.next = next;
    else this.head = next;
    if (next !== null) next.prev = prev;
    node.prev = null;
    node.next = null;
    if (this.head !== null || !this.listening) return;
    if (this.served <= 1) this.release();
    else if (!this.releasePending) {
      this.releasePending = true;
      afterTurn(() => {
        this.releasePending = false;
        this.release();
      });
    }
  }

  private release(): void {
    if (this.head === null && this.listening) {
      this.listening = false;
      this.signal.removeEventListener('abort', this);
    }
  }

  /** The abort listener (an object listener: no closure per hub). */
  handleEvent(): void {
    // An aborted signal never fires again; the listener is done (see abortedReason).
    this.listening = false;
    this.signal.removeEventListener('abort', this);
    const reason = this.signal.reason;
    // cancel() makes the execution leave; collect first.
    const all: Cancellable[] = [];
    for (let node = this.head; node !== null; node = node.next) all.push(node.member);
    for (const member of all)
      try {
        member.cancel(reason);
      } catch {
        // cancel() runs no user code that throws to here; one failure must not spare the rest.
      }
  }
}

const hubs = new WeakMap<AbortSignal, SignalHub>();

function hubOf(signal: AbortSignal): SignalHub {
  let hub = hubs.get(signal);
  if (hub === undefined) {
    hub = new SignalHub(signal);
    hubs.set(signal, hub);
  }
  return hub;
}

/** What {@link SignalLink.abortedReason} returns when no signal is aborted (a reason may be anything). */
export const NOT_ABORTED: unique symbol = Symbol('not aborted');

/** The signals an instance or a view stops on. */
export class SignalLink {
  private readonly hubs: readonly SignalHub[];

  constructor(readonly signals: readonly AbortSignal[]) {
    this.hubs = signals.map(hubOf);
  }

  /** The same signals and `signal`. */
  with(signal: AbortSignal): SignalLink {
    return new SignalLink([...this.signals, signal]);
  }

  /** The reason of the first aborted signal, or {@link NOT_ABORTED}. */
  abortedReason(): unknown {
    // Asked of the signal itself, not of whether its hub has heard the abort: while the abort
    // event is being dispatched, a listener that runs before the hub's may start an execution.
    const signals = this.signals;
    for (let i = 0; i < signals.length; i++) {
      const signal = signals[i]!;
      if (signal.aborted) return signal.reason;
    }
    return NOT_ABORTED;
  }

  /** Makes `member` stop when any of the signals aborts; pass the result to {@link leave}. */
  join(member: Cancellable): Membership | Membership[] {
    const hubs = this.hubs;
    if (hubs.length === 1) return hubs[0]!.join(member);
    return hubs.map((hub) => hub.join(member));
  }

  leave(joined: Membership | Membership[]): void {
    if (joined instanceof Membership) joined.hub.leave(joined);
    else for (const node of joined) node.hub.leave(node);
  }
}
