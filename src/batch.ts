/**
 * Batches through one shared instance: a bounded worker pool that pulls items lazily from any
 * iterable, runs each through `execute`, and keeps results in input order. Budget, statistics and
 * the instance signal are the instance's own, so the whole batch shares them.
 */
import type { Backoff } from './backoff.js';
import { describe } from './validate.js';

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

/** How one item ended, in `settled` mode (the shape of `Promise.allSettled`). */
export type BatchOutcome<R> =
  | { readonly status: 'fulfilled'; readonly value: R }
  | { readonly status: 'rejected'; readonly reason: unknown };

/** Options of `Backoff.map`. */
export interface MapOptions {
  /**
   * Items in flight at once.
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

const MAP_OPTIONS = new Set(['concurrency', 'stopOnError', 'settled', 'signal', 'onProgress']);

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
  options: MapOptions = {},
): Promise<R[] | BatchOutcome<R>[]> {
  if (typeof fn !== 'function')
    return Promise.reject(
      new TypeError(`Backoff.map: 'fn' must be a function, got ${describe(fn)}`),
    );
  const concurrency = options.concurrency ?? 10;
  if (typeof concurrency !== 'number')
    return Promise.reject(
      new TypeError(
        `Backoff.map: 'concurrency' must be an integer >= 1, got ${describe(concurrency)}`,
      ),
    );
  if (
    !(Number.isInteger(concurrency) || concurrency === Number.POSITIVE_INFINITY) ||
    concurrency < 1
  )
    return Promise.reject(
      new RangeError(
        `Backoff.map: 'concurrency' must be an integer >= 1, got ${describe(concurrency)}`,
      ),
    );
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    return Promise.reject(
      new TypeError(`Backoff.map: 'signal' must be an AbortSignal, got ${describe(signal)}`),
    );
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function')
    return Promise.reject(
      new TypeError(`Backoff.map: 'onProgress' must be a function, got ${describe(onProgress)}`),
    );
  for (const key of Object.keys(options))
    if (!MAP_OPTIONS.has(key))
      return Promise.reject(new TypeError(`Backoff.map: unknown option '${key}'`));
  for (const key of ['settled', 'stopOnError'] as const) {
    const value = options[key];
    if (value !== undefined && typeof value !== 'boolean')
      return Promise.reject(
        new TypeError(`Backoff.map: '${key}' must be a boolean, got ${describe(value)}`),
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
        `Backoff.map: 'items' must be an iterable or async iterable, got ${describe(items)}`,
      ),
    );

  if (signal?.aborted) return Promise.reject(signal.reason);

  // One controller per batch: stopping the batch aborts every execution in it through one view.
  const controller = new AbortController();
  const view = backoff.withSignal(controller.signal);
  const forward = () => controller.abort(signal!.reason);
  signal?.addEventListener('abort', forward);
  // Settles when the batch stops, so a worker waiting on a slow async source does not hold it up.
  let onStop: (() => void) | undefined;
  const stopping = new Promise<IteratorResult<T>>((resolve) => {
    onStop = () => resolve({ done: true, value: undefined });
  });
  if (isAsync) controller.signal.addEventListener('abort', onStop!, { once: true });

  const total = sizeOf(items);
  const results: (R | BatchOutcome<R>)[] = [];
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
    pulling = next.catch(() => undefined);
    return Promise.race([next, stopping]);
  };

  const worker = async (): Promise<void> => {
    while (!stopped && !exhausted && !controller.signal.aborted) {
      let step: IteratorResult<T>;
      try {
        // A sync source is read in place: no promise and no await per item.
        step = isAsync ? await pullAsync() : (iterator as Iterator<T>).next();
      } catch (error) {
        // The input itself failed: that ends the batch, whatever the mode.
        stop(error);
        return;
      }
      if (stopped || controller.signal.aborted) return;
      if (step.done) {
        exhausted = true;
        return;
      }
      const at = index++;
      inFlight++;
      try {
        const value = await view.execute(fn, step.value, at);
        succeeded++;
        results[at] = settled ? { status: 'fulfilled', value } : value;
      } catch (error) {
        failed++;
        if (settled) results[at] = { status: 'rejected', reason: error };
        else if (stopOnError) {
          if (firstError === undefined) stop(error);
        } else errors.push(error);
      } finally {
        inFlight--;
      }
      report();
    }
  };

  const workers: Promise<void>[] = [];
  const count = concurrency === Number.POSITIVE_INFINITY ? (total ?? 1024) : concurrency;
  for (let i = 0; i < Math.max(1, count); i++) workers.push(worker());

  return Promise.all(workers).then(async () => {
    signal?.removeEventListener('abort', forward);
    if (isAsync) controller.signal.removeEventListener('abort', onStop!);
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
    return results as R[] | BatchOutcome<R>[];
  });
}
