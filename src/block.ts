/**
 * The code-block form: retry a block of code in place, under the same policy as `execute`.
 *
 * ```ts
 * for await (const attempt of backoff.attempts()) {
 *   try { lock = await acquire(attempt.signal); attempt.succeed(); }
 *   catch (error) { attempt.fail(error); }
 * }
 * ```
 *
 * It is built so that mistakes surface instead of looping or vanishing: an attempt that ends
 * without `succeed()` or `fail()` is a `TypeError` at the next iteration; leaving the loop after
 * `fail(error)` rethrows `error`; leaving it without a report is a `TypeError`.
 */
import type { Attempt, AttemptLike } from './attempt.js';
import { type Core, Execution, type ManualDriver } from './engine.js';
import { attemptStorage } from './process-state.js';
import type { SignalLink } from './signals.js';

/** One pass through the loop body of `backoff.attempts()`. */
export interface BlockAttempt {
  /** Aborts on the attempt timeout, the deadline, or cancellation; pass it to the work in the block. */
  readonly signal: AbortSignal;
  /** The 1-based attempt number. */
  readonly attempt: number;
  /** Milliseconds left for this attempt; `Infinity` if unbounded. */
  readonly remaining: number;
  /**
   * Reports success: the loop ends at its next iteration. With `retryIf`, pass the pass's result:
   * `retryIf(value)` decides whether it is done, as for `execute()`.
   */
  succeed(value?: unknown): void;
  /**
   * Reports a failure: at the next iteration the loop pauses and goes on, or throws `error` (or the
   * deadline's error) when the policy does not retry it.
   */
  fail(error: unknown): void;
}

type Outcome =
  | { readonly kind: 'none' }
  | { readonly kind: 'success'; readonly value: unknown }
  | { readonly kind: 'error'; readonly error: unknown }
  | { readonly kind: 'timeout'; readonly error: unknown };

const NONE: Outcome = { kind: 'none' };

class BlockAttemptImpl implements BlockAttempt {
  outcome: Outcome = NONE;
  constructor(readonly inner: Attempt) {}
  get signal(): AbortSignal {
    return this.inner.signal;
  }
  get attempt(): number {
    return this.inner.attempt;
  }
  get remaining(): number {
    return this.inner.remaining;
  }
  succeed(value?: unknown): void {
    this.report({ kind: 'success', value }, 'succeed()');
  }
  fail(error: unknown): void {
    this.report({ kind: 'error', error }, 'fail()');
  }
  private report(outcome: Outcome, what: string): void {
    // A timeout recorded by the timer stands; the body's own report of the abort adds nothing.
    if (this.outcome.kind === 'timeout') return;
    if (this.outcome.kind !== 'none')
      throw new TypeError(
        `attempts(): ${what} called on attempt ${this.attempt}, which was already reported (${this.outcome.kind})`,
      );
    this.outcome = outcome;
  }
}

class AttemptIterator implements AsyncIterator<BlockAttempt>, ManualDriver {
  private readonly execution: Execution;
  /** Set when the loop is left: a retryIf that rejects the reported value ends the execution. */
  leaving = false;
  private current: BlockAttemptImpl | undefined = undefined;
  private waiting:
    | { resolve: (r: IteratorResult<BlockAttempt>) => void; reject: (e: unknown) => void }
    | undefined = undefined;
  /** How the execution ended: set by its resolve/reject. */
  private final: { ok: boolean; value: unknown } | undefined = undefined;
  private begun = false;

  constructor(
    core: Core,
    link: SignalLink | undefined,
    private readonly parent: AttemptLike | undefined,
  ) {
    const execution = new Execution(core, link, noopFn, undefined, []);
    execution.driver = this;
    execution.resolve = (value) => this.finish(true, value);
    execution.reject = (error) => this.finish(false, error);
    this.execution = execution;
  }

  started(attempt: Attempt): void {
    this.current = new BlockAttemptImpl(attempt);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve({ value: this.current, done: false });
  }

  timedOut(error: unknown): void {
    // The attempt that timed out is the one the body runs (the execution starts no other meanwhile).
    this.current!.outcome = { kind: 'timeout', error };
  }

  private finish(ok: boolean, value: unknown): void {
    this.final = { ok, value };
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting === undefined) return;
    if (ok) waiting.resolve({ value: undefined, done: true });
    else waiting.reject(value);
  }

  next(): Promise<IteratorResult<BlockAttempt>> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      if (!this.begun) {
        this.begun = true;
        this.execution.start(this.parent);
        return;
      }
      const attempt = this.current;
      if (this.final === undefined && attempt !== undefined) {
        const outcome = attempt.outcome;
        if (outcome.kind === 'none') {
          this.waiting = undefined;
          reject(
            this.abandon(
              new TypeError(
                `attempts(): attempt ${attempt.attempt} ended without attempt.succeed() or attempt.fail(error)`,
              ),
            ),
          );
          return;
        }
        this.execution.report(
          attempt.inner,
          outcome.kind,
          outcome.kind === 'success' ? outcome.value : outcome.error,
        );
      }
      // Settled now or earlier (deadline, cancellation, give-up): hand over the final outcome.
      const final = this.final;
      if (final !== undefined && this.waiting !== undefined) {
        this.waiting = undefined;
        if (final.ok) resolve({ value: undefined, done: true });
        else reject(final.value);
      }
    });
  }

  /** Leaving the loop: `break`, `return`, or an uncaught throw (whose own error then wins). */
  async return(): Promise<IteratorResult<BlockAttempt>> {
    const attempt = this.current;
    // Settled already (the deadline, a cancellation): leaving the loop hands over how it ended.
    const settled = this.final;
    if (settled !== undefined) {
      if (!settled.ok) throw settled.value;
      return { value: undefined, done: true };
    }
    if (attempt !== undefined) {
      const outcome = attempt.outcome;
      if (outcome.kind === 'success') {
        this.leaving = true;
        this.execution.report(attempt.inner, 'success', outcome.value);
        // An async onSuccess hook or retryIf may still be running; wait for the execution to
        // settle (if retryIf rejects the value, no attempt follows: it ends as out of tries).
        if (this.final === undefined)
          await new Promise<void>((resolve) => {
            this.waiting = { resolve: () => resolve(), reject: () => resolve() };
          });
        const final = this.final as { ok: boolean; value: unknown } | undefined;
        if (final !== undefined && !final.ok) throw final.value;
        return { value: undefined, done: true };
      }
      throw this.abandon(
        outcome.kind !== 'none'
          ? outcome.error
          : new TypeError(
              `attempts(): the loop was left during attempt ${attempt.attempt} without attempt.succeed() or attempt.fail(error)`,
            ),
      );
    }
    return { value: undefined, done: true };
  }

  /**
   * Ends the execution without a verdict (the loop was left, or the body broke the protocol), and
   * remembers `error` as how the loop ended: what a further `next()` or `return()` hands over.
   */
  private abandon(error: unknown): unknown {
    this.execution.abandon();
    this.final = { ok: false, value: error };
    return error;
  }
}

function noopFn(): void {}

/** @internal Used by `Backoff.attempts()`. */
export function attemptsIterable(
  core: Core,
  link: SignalLink | undefined,
): AsyncIterable<BlockAttempt> {
  return {
    // The enclosing attempt, if any, is the one around the loop when it starts.
    [Symbol.asyncIterator]: () => new AttemptIterator(core, link, attemptStorage.getStore()),
  };
}
