import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Demo plumbing that has nothing to do with retries: a bounded worker pool, a progress display
 * and latency percentiles.
 */

/** Counters the progress line shows besides done/ok/failed. */
export interface LiveCounters {
  attempts: number;
  timeouts: number;
}

export interface BatchResult {
  readonly label: string;
  readonly calls: number;
  readonly succeeded: number;
  /** Failed calls, by kind of final error. */
  readonly failures: ReadonlyMap<string, number>;
  /** Milliseconds per call, from the call to its settlement, sorted ascending. */
  readonly latencies: readonly number[];
  readonly wallMs: number;
  /**
   * How late this process's event loop ran (p99 and max, ms). The client and the server share it:
   * when it is late, every answer is late, and an attempt timeout may fire before an answer that
   * has already arrived is read.
   */
  readonly loopDelayMs: { readonly p99: number; readonly max: number };
}

export interface BatchOptions {
  readonly label: string;
  readonly calls: number;
  readonly concurrency: number;
  /** Makes call number `index`; a rejection counts as a failed call. */
  readonly call: (index: number) => Promise<unknown>;
  /** Names the kind of a final error, for the failure breakdown. */
  readonly classify: (error: unknown) => string;
  /** Read on every progress update. */
  readonly live: () => LiveCounters;
}

/**
 * Runs `calls` calls with at most `concurrency` in flight: `concurrency` workers, each taking the
 * next index until none is left.
 */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const { calls, concurrency, call, classify } = options;
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  let next = 0;
  let succeeded = 0;

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const started = performance.now();
  const progress = startProgress(options, () => ({
    done: latencies.length,
    succeeded,
    failed: latencies.length - succeeded,
    elapsedMs: performance.now() - started,
  }));

  const worker = async (): Promise<void> => {
    while (next < calls) {
      const index = next++;
      const t0 = performance.now();
      try {
        await call(index);
        succeeded++;
      } catch (error) {
        const kind = classify(error);
        failures.set(kind, (failures.get(kind) ?? 0) + 1);
      }
      latencies.push(performance.now() - t0);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, calls) }, worker));
  } finally {
    progress.stop();
    loopDelay.disable();
  }

  return {
    label: options.label,
    calls,
    succeeded,
    failures,
    latencies: latencies.sort((a, b) => a - b),
    wallMs: performance.now() - started,
    // the histogram counts nanoseconds
    loopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
  };
}

interface Progress {
  done: number;
  succeeded: number;
  failed: number;
  elapsedMs: number;
}

/**
 * On a terminal: one line on stderr, redrawn 10 times a second. Otherwise (piped to a file, CI):
 * a plain line every second. Either way a last line when the batch ends.
 */
function startProgress(options: BatchOptions, read: () => Progress): { stop(): void } {
  const tty = process.stderr.isTTY === true;
  const width = String(options.calls).length;
  const line = (): string => {
    const p = read();
    const { attempts, timeouts } = options.live();
    const rate = p.elapsedMs > 0 ? Math.round((p.done * 1000) / p.elapsedMs) : 0;
    return (
      `${options.label.padEnd(14)} ${String(p.done).padStart(width)}/${options.calls}` +
      `  ok ${String(p.succeeded).padStart(width)}  failed ${String(p.failed).padStart(4)}` +
      `  attempts ${String(attempts).padStart(width)}  timeouts ${String(timeouts).padStart(4)}` +
      `  ${String(rate).padStart(5)} calls/s  ${(p.elapsedMs / 1000).toFixed(1)} s`
    );
  };
  const draw = (): void => {
    if (tty) {
      // \r: back to column 0; \x1b[2K: erase the line. Cut to the terminal width so it never wraps.
      const columns = process.stderr.columns || 120;
      process.stderr.write(`\r\x1b[2K${line().slice(0, columns - 1)}`);
    } else process.stderr.write(`${line()}\n`);
  };
  const timer = setInterval(draw, tty ? 100 : 1000);
  if (tty) draw();
  return {
    stop() {
      clearInterval(timer);
      draw();
      if (tty) process.stderr.write('\n');
    },
  };
}

/** The nearest-rank percentile `p` (0-100) of ascending `sorted`. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}
