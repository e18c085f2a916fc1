/**
 * Batches through one shared instance: a bounded worker pool that pulls items lazily from any
 * iterable, runs each through `execute`, and keeps results in input order. Budget, statistics and
 * the instance signal are the instance's own, so the whole batch shares them.
 */
import type { Backoff } from './backoff.js';
import { nextMicrotask } from './clock.js';
import { SignalLink } from './signals.js';
import { checkOptions, describe } from './validate.js';

/** Progress of a batch, reported after every item settles. */
export interface BatchProgress {
  /** Items settled so far. */
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Items running now. */
  readonly inFlight: number;
  /** The number of items, when the input has a `length` or `size`; else `undefined`. */
  readonly total: number | undefined;
}

/**
 * How one item ended, in `settled` mode: the shape of `Promise.allSettled`, plus the item and its
 * index, so that the failed ones can be run again ({@link rerunFailed}).
 */
export type BatchOutcome<R, T = unknown> =
  | {
      readonly status: 'fulfilled';
      readonly value: R;
      readonly item: T;
      readonly index: number;
    }
  | {
      readonly status: 'rejected';
      readonly reason: unknown;
      readonly item: T;
      readonly index: number;
    };

/** Options of `Backoff.map`. */
export interface MapOptions {
  /**
   * Items in flight at once (an integer >= 1, or `Infinity`). Workers are started only for items
   * there are: `concurrency: 2 ** 31` over 3 items runs 3 at once.
   * @defaultValue `10`
   */
  concurrency?: number | undefined;
  /**
   * On the first item that fails finally: `true` aborts the items in flight (their attempt signals
   * abort with that error), starts no new ones and rejects with the error; `false` runs every item
   * and then rejects with an `AggregateError` of all failures. Ignored in `settled` mode.
   * @defaultValue `true`
   */
  stopOnError?: boolean | undefined;
  /**
   * Resolve with each item's outcome (`{ status, value | reason }`) instead of rejecting.
   * @defaultValue `false`
   */
  settled?: boolean | undefined;
  /** Cancels the batch: items in flight abort with the signal's reason and no new ones start. */
  signal?: AbortSignal | undefined;
  /** Called after every item settles. */
  onProgress?: ((progress: BatchProgress) => void) | undefined;
}

const MAP_OPTIONS = ['concurrency', 'stopOnError', 'settled', 'signal', 'onProgress'];

function sizeOf(items: unknown): number | undefined {
  const candidate = items as { length?: unknown; size?: unknown };
  if (typeof candidate.length === 'number') return candidate.length;
  if (typeof candidate.size === 'number') return candidate.size;
  return undefined;
}

/** @internal The implementation of `Backoff.map`. */
export function runBatch<T, R>(
  backoff: Backoff<any>,
  items: Iterable<T> | AsyncIterable<T>,
  fn: (item: T, index: number) => R | PromiseLike<R>,
  options?: MapOptions,
  /** The name errors start with: `rerunFailed` passes its own. */
  where = 'Backoff.map',
): Promise<R[] | BatchOutcome<R, T>[]> {
  if (options === undefined) options = {};
  else
    try {
      checkOptions(where, options, MAP_OPTIONS);
    } catch (error) {
      return Promise.reject(error);
    }
  if (typeof fn !== 'function')
    return Promise.reject(new TypeError(`${where}: 'fn' must be a function, got ${describe(fn)}`));
  const concurrency = options.concurrency === undefined ? 10 : options.concurrency;
  if (typeof concurrency !== 'number')
    return Promise.reject(
      new TypeError(
        `${where}: 'concurrency' must be an integer >= 1, got ${describe(concurrency)}`,
      ),
    );
  if (
    !(Number.isInteger(concurrency) || concurrency === Number.POSITIVE_INFINITY) ||
    concurrency < 1
  )
    return Promise.reject(
      new RangeError(
        `${where}: 'concurrency' must be an integer >= 1, got ${describe(concurrency)}`,
      ),
    );
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    return Promise.reject(
      new TypeError(`${where}: 'signal' must be an AbortSignal, got ${describe(signal)}`),
    );
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function')
    return Promise.reject(
      new TypeError(`${where}: 'onProgress' must be a function, got ${describe(onProgress)}`),
    );
  for (const key of ['settled', 'stopOnError'] as const) {
    const value = options[key];
    if (value !== undefined && typeof value !== 'boolean')
      return Promise.reject(
        new TypeError(`${where}: '${key}' must be a boolean, got ${describe(value)}`),
      );
  }
  const settled = options.settled === true;
  const stopOnError = options.stopOnError ?? true;

  let iterator: Iterator<T> | AsyncIterator<T>;
  let isAsync: boolean;
  if (items != null && typeof (items as Iterable<T>)[Symbol.iterator] === 'function') {
    iterator = (items as Iterable<T>)[Symbol.iterator]();
    isAsync = false;
  } else if (
    items != null &&
    typeof (items as AsyncIterable<T>)[Symbol.asyncIterator] === 'function'
  ) {
    iterator = (items as AsyncIterable<T>)[Symbol.asyncIterator]();
    isAsync = true;
  } else
    return Promise.reject(
      new TypeError(
        `${where}: 'items' must be an iterable or async iterable, got ${describe(items)}`,
      ),
    );

  if (signal?.aborted) return Promise.reject(signal.reason);

  // One controller per batch: stopping the batch aborts every execution in it through one view.
  const controller = new AbortController();
  const view = backoff.withSignal(controller.signal);
  // Through the signal's shared hub (signals.ts), as executions are: batches on one long-lived
  // signal (a service's shutdown) add one abort listener to it, not one each.
  const link = signal === undefined ? undefined : new SignalLink([signal]);
  const joined = link?.join({ cancel: (reason) => controller.abort(reason) });
  // Workers waiting on a slow async source, woken when the batch stops so they do not hold it up.
  // (A Promise.race against one promise that settles at the stop would leave a reaction on it per
  // pull, and with it every item pulled, until the batch ended.)
  const waiting = new Set<(step: IteratorResult<T>) => void>();
  const onStop = () => {
    for (const wake of [...waiting]) wake({ done: true, value: undefined });
    waiting.clear();
  };
  if (isAsync) controller.signal.addEventListener('abort', onStop, { once: true });

  const total = sizeOf(items);
  const results: (R | BatchOutcome<R, T>)[] = [];
  const errors: unknown[] = [];
  let index = 0;
  let inFlight = 0;
  let succeeded = 0;
  let failed = 0;
  let exhausted = false;
  let stopped = false;
  let firstError: { error: unknown } | undefined;
  let pulling: Promise<unknown> = Promise.resolve();

  const stop = (error: unknown) => {
    stopped = true;
    firstError ??= { error };
    controller.abort(error);
  };

  const report = () => {
    if (onProgress === undefined) return;
    try {
      onProgress({ done: succeeded + failed, succeeded, failed, inFlight, total });
    } catch (error) {
      // A broken progress callback ends the batch like a final failure, not half of it.
      stop(error);
    }
  };

  // Async iterators must not be asked for the next item before the previous answer arrived.
  const pullAsync = (): Promise<IteratorResult<T>> => {
    const next = pulling.then(() =>
      // Once the batch stopped, the source is asked for nothing more.
      controller.signal.aborted
        ? ({ done: true, value: undefined } as IteratorResult<T>)
        : (iterator as AsyncIterator<T>).next(),
    );
    // Only the order matters here: holding the step would keep the last item alive.
    pulling = next.then(
      () => undefined,
      () => undefined,
    );
    if (controller.signal.aborted) return Promise.resolve({ done: true, value: undefined });
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      waiting.add(resolve);
      next.then(
        (step) => {
          waiting.delete(resolve);
          resolve(step);
        },
        (error: unknown) => {
          waiting.delete(resolve);
          reject(error);
        },
      );
    });
  };

  // The instance's circuit breaker: while it is open, no new item is pulled (the items already
  // in flight are the engine's to hold or fail); when it half-opens, one item may carry the probe.
  const breaker = backoff.core.policy.breaker;
  /** Workers that passed the gate and hold an item (or are pulling one). */
  let busy = 0;
  const gateWaiters: (() => void)[] = [];
  let unsubscribeReady: (() => void) | undefined;
  const wakeGate = () => {
    if (gateWaiters.length === 0) return;
    for (const wake of gateWaiters.splice(0)) wake();
  };
  const mayPull = (): boolean => {
    if (breaker === undefined || stopped || controller.signal.aborted) return true;
    // A sized input whose items have all been taken: pulling only finds its end.
    if (total !== undefined && index >= total) return true;
    const state = breaker.state;
    return state === 'closed' || (state === 'half-open' && busy === 0);
  };
  /** Waits for a reason to look at the breaker again: it became ready, an item settled, the batch stopped. */
  const gateChange = () =>
    new Promise<void>((resolve) => {
      gateWaiters.push(resolve);
      // Only an open circuit is worth a readiness callback: a half-open one calls back at once.
      if (breaker!.state === 'open' && unsubscribeReady === undefined)
        unsubscribeReady = breaker!.onReady(() => {
          unsubscribeReady = undefined;
          wakeGate();
        });
    });
  if (breaker !== undefined) controller.signal.addEventListener('abort', wakeGate, { once: true });

  const limit = concurrency;
  let workers = 0;
  let allDone!: () => void;
  const finished = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  /** Another worker, if the limit allows and items may remain. */
  const spawnIfNeeded = () => {
    if (workers < limit && !exhausted && !stopped && !controller.signal.aborted) spawn();
  };

  const worker = async (): Promise<void> => {
    while (!stopped && !exhausted && !controller.signal.aborted) {
      while (!mayPull()) await gateChange();
      if (stopped || exhausted || controller.signal.aborted) return;
      busy++;
      let step: IteratorResult<T>;
      try {
        // A sync source is read in place: no promise and no await per item.
        step = isAsync ? await pullAsync() : (iterator as Iterator<T>).next();
      } catch (error) {
        busy--;
        // The input itself failed: that ends the batch, whatever the mode.
        stop(error);
        return;
      }
      if (stopped || controller.signal.aborted || step.done) {
        busy--;
        // A stopped batch's pull ends as `done` too: that is not the end of the input.
        if (step.done && !stopped && !controller.signal.aborted) {
          exhausted = true;
          wakeGate(); // workers waiting on the breaker have nothing left to pull
        }
        return;
      }
      const at = index++;
      const item = step.value;
      inFlight++;
      // One more worker only once this one has an item: never more workers than items known.
      if (workers < limit && !spawningSync) nextMicrotask(spawnIfNeeded);
      try {
        const value = await view.execute(fn, item, at);
        succeeded++;
        results[at] = settled ? { status: 'fulfilled', value, item, index: at } : value;
      } catch (error) {
        failed++;
        if (settled) results[at] = { status: 'rejected', reason: error, item, index: at };
        else if (stopOnError) {
          if (firstError === undefined) stop(error);
        } else errors.push(error);
      } finally {
        inFlight--;
        busy--;
      }
      wakeGate();
      report();
    }
  };

  function spawn(): void {
    workers++;
    void worker()
      .then(undefined, stop)
      .finally(() => {
        if (--workers === 0) allDone();
      });
  }

  // A sync source fills the workers at once (each takes its first item before its first await),
  // as long as it yields items; the others grow one at a time as items come.
  let spawningSync = true;
  const initial = total === undefined ? limit : Math.max(1, Math.min(limit, total));
  for (let i = 0; i < initial; i++) {
    const before = index;
    spawn();
    if (index === before) break; // async source, exhausted, gated or stopped: grow lazily
  }
  spawningSync = false;
  if (workers > 0 && workers < limit && index > 0 && !exhausted) nextMicrotask(spawnIfNeeded);

  return finished.then(async () => {
    if (joined !== undefined) link!.leave(joined);
    unsubscribeReady?.();
    if (breaker !== undefined) controller.signal.removeEventListener('abort', wakeGate);
    if (isAsync) controller.signal.removeEventListener('abort', onStop);
    if ((stopped || controller.signal.aborted) && !exhausted) {
      // Let the input release what it holds (close a file, a cursor). Not awaited: an async
      // source may still be busy with a `next()` the batch stopped waiting for.
      try {
        const closing = iterator.return?.();
        if (closing instanceof Promise) closing.catch(() => undefined);
      } catch {
        // The batch's own outcome is what the caller needs; a failing cleanup adds nothing.
      }
    }
    if (firstError !== undefined) throw firstError.error;
    if (controller.signal.aborted) throw controller.signal.reason;
    if (errors.length > 0)
      throw new AggregateError(errors, `Backoff.map: ${errors.length} of ${index} item(s) failed`);
    return results as R[] | BatchOutcome<R, T>[];
  });
}

/** Options of {@link rerunFailed}: those of `Backoff.map` but `settled` (always on) and `stopOnError`. */
export type RerunOptions = Omit<MapOptions, 'settled' | 'stopOnError'>;

/**
 * Runs the failed items of a settled batch again, through `backoff` (the same instance or
 * another), and returns the whole batch's outcomes: the fulfilled ones as they were, the failed
 * ones replaced by how their new run ended. `fn` gets each item with its original index.
 *
 * Use it after an outage outlasted the batch's deadline, or to retry a batch's failures later
 * (after a fix, under a longer deadline). Outcomes of a batch that was run with `settled: true`
 * carry their `item` and `index`, so nothing else needs to be kept.
 *
 * @returns the outcomes, in the order given, with the failed entries run again.
 * @throws (rejects with) a TypeError when `backoff` is not a Backoff, `outcomes` is not an array of batch outcomes or `fn` is
 * not a function, a TypeError or RangeError for bad options (as `map`'s, named `rerunFailed`); the batch's own failures are outcomes, as in `settled` mode.
 *
 * @example
 * ```ts
 * let outcomes = await db.map(rows, insertRow, { concurrency: 50, settled: true });
 * if (outcomes.some((o) => o.status === 'rejected')) outcomes = await rerunFailed(db, outcomes, insertRow);
 * ```
 */
export function rerunFailed<T, R>(
  backoff: Backoff<any>,
  outcomes: readonly BatchOutcome<R, T>[],
  fn: (item: T, index: number) => R | PromiseLike<R>,
  options?: RerunOptions,
): Promise<BatchOutcome<R, T>[]> {
  // (Duck-typed: a Backoff from another copy of the package does as well.)
  const candidate = backoff as Partial<Backoff<any>> | null | undefined;
  if (typeof candidate?.withSignal !== 'function' || typeof candidate.execute !== 'function')
    return Promise.reject(
      new TypeError(`rerunFailed: 'backoff' must be a Backoff, got ${describe(backoff)}`),
    );
  if (!Array.isArray(outcomes))
    return Promise.reject(
      new TypeError(
        `rerunFailed: 'outcomes' must be an array of batch outcomes (from map with settled: true), got ${describe(outcomes)}`,
      ),
    );
  const failedAt: number[] = [];
  for (let i = 0; i < outcomes.length; i++) {
    const outcome = outcomes[i] as Partial<BatchOutcome<R, T>> | null | undefined;
    const status = outcome?.status;
    if (
      (status !== 'fulfilled' && status !== 'rejected') ||
      !Number.isInteger(outcome!.index) ||
      !('item' in outcome!)
    )
      return Promise.reject(
        new TypeError(
          `rerunFailed: 'outcomes[${i}]' must be a batch outcome ({ status, item, index, ... }), got ${describe(outcome)}`,
        ),
      );
    if (status === 'rejected') failedAt.push(i);
  }
  // Checked here: with no failed outcome, runBatch would never call it.
  if (typeof fn !== 'function')
    return Promise.reject(
      new TypeError(`rerunFailed: 'fn' must be a function, got ${describe(fn)}`),
    );
  if (options !== undefined)
    try {
      checkOptions('rerunFailed', options, ['concurrency', 'signal', 'onProgress']);
    } catch (error) {
      return Promise.reject(error);
    }
  const rerun = runBatch(
    backoff,
    failedAt.map((i) => outcomes[i]!),
    (outcome) => fn(outcome.item, outcome.index),
    { ...options, settled: true },
    'rerunFailed',
  ) as Promise<BatchOutcome<R, BatchOutcome<R, T>>[]>;
  return rerun.then((again) => {
    const merged = outcomes.slice();
    again.forEach((outcome, k) => {
      const { item, index } = outcome.item;
      merged[failedAt[k]!] =
        outcome.status === 'fulfilled'
          ? { status: 'fulfilled', value: outcome.value, item, index }
          : { status: 'rejected', reason: outcome.reason, item, index };
    });
    return merged;
  });
}
