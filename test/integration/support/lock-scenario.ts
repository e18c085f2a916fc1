/**
 * Runs lock workers (lock-worker.ts) as child processes and checks what they did: the critical
 * sections of all processes on one clock, overlaps, lock waits. Shared by the integration tests
 * and benchmarks/lock-wait.ts.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerConfig } from './lock-worker.js';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
const workerScript = fileURLToPath(new URL('./lock-worker.ts', import.meta.url));

export interface Section {
  worker: number;
  i: number;
  /** process.hrtime ns: one monotonic clock for every process on the machine. */
  start: bigint;
  end: bigint;
  wait: number;
  fence: number;
}

export interface WorkerSummary {
  completed: number;
  acquireFailures: number;
  bodyFailures: number;
  fencedOut: number;
  skipped: number;
  failuresByName: Record<string, number>;
}

export interface WorkerError {
  worker: number;
  i: number;
  phase: 'acquire' | 'body';
  name: string;
  message: string;
}

export interface RunResult {
  sections: Section[];
  summaries: (WorkerSummary | undefined)[];
  errors: WorkerError[];
  /** The victim's open section: from its start until it was killed. */
  killed: { worker: number; start: bigint; at: bigint } | undefined;
  /** Wall time from the start signal until the last worker exited, ms. */
  elapsed: number;
}

export interface RunOptions {
  url: string;
  client: WorkerConfig['client'];
  recipe: WorkerConfig['recipe'];
  name: string;
  workers: number;
  count: number;
  /** Worker `worker` hangs inside section `at` and is SIGKILLed there. */
  kill?: { worker: number; at: number };
  /** Worker `worker` lingers 300 ms inside section `at`; `onInside` is called as it enters. */
  pause?: { worker: number; at: number };
  onInside?: () => void;
  /** Called once every worker has started incrementing. */
  started?: () => void;
  /** Called for every section completed (by any worker), in arrival order. */
  onSection?: (section: Section, total: number) => void;
  /** The whole run is cut (every worker killed) after this long, ms. */
  timeout?: number;
}

/** Spawns the workers, starts them together, and waits until all have exited. */
export async function runWorkers(options: RunOptions): Promise<RunResult> {
  const sections: Section[] = [];
  const summaries: (WorkerSummary | undefined)[] = [];
  const errors: WorkerError[] = [];
  let killed: RunResult['killed'];
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  const exited: Promise<void>[] = [];
  const stderr: string[] = [];

  for (let worker = 0; worker < options.workers; worker++) {
    const config: WorkerConfig = {
      url: options.url,
      client: options.client,
      recipe: options.recipe,
      name: options.name,
      id: worker,
      count: options.count,
      ...(options.kill?.worker === worker ? { hangAt: options.kill.at } : {}),
      ...(options.pause?.worker === worker ? { pauseAt: options.pause.at } : {}),
    };
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', workerScript, JSON.stringify(config)],
      {
        cwd: root,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    let onReady: () => void;
    ready.push(new Promise((resolve) => (onReady = resolve)));
    exited.push(new Promise((resolve) => child.once('exit', () => resolve())));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let newline = buffer.indexOf('\n');
      while (newline !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
        const event = JSON.parse(line) as { type: string } & Record<string, any>;
        if (event.type === 'ready') onReady!();
        else if (event.type === 'section') {
          const section: Section = {
            worker,
            i: event.i,
            start: BigInt(event.start),
            end: BigInt(event.end),
            wait: event.wait,
            fence: event.fence,
          };
          sections.push(section);
          options.onSection?.(section, sections.length);
        } else if (event.type === 'holding') {
          child.kill('SIGKILL');
          killed = { worker, start: BigInt(event.start), at: process.hrtime.bigint() };
        } else if (event.type === 'inside') options.onInside?.();
        else if (event.type === 'error')
          errors.push({ worker, ...event } as unknown as WorkerError);
        else if (event.type === 'done') summaries[worker] = event as unknown as WorkerSummary;
      }
    });
  }

  const timeout = setTimeout(() => {
    for (const child of children) child.kill('SIGKILL');
  }, options.timeout ?? 60_000);
  try {
    await Promise.race([
      Promise.all(ready),
      Promise.all(exited).then(() => {
        throw new Error(`lock workers exited before they were ready:\n${stderr.join('')}`);
      }),
    ]);
    const t0 = performance.now();
    for (const child of children) child.stdin!.end('go\n');
    options.started?.();
    await Promise.all(exited);
    const elapsed = performance.now() - t0;
    if (stderr.length > 0) throw new Error(`lock workers wrote on stderr:\n${stderr.join('')}`);
    return { sections, summaries, errors, killed, elapsed };
  } finally {
    clearTimeout(timeout);
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Pairs of sections that overlap in time (none, when the lock excludes). */
export function overlaps<S extends { start: bigint; end: bigint }>(
  sections: readonly S[],
): [S, S][] {
  const sorted = [...sections].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const found: [S, S][] = [];
  let latest = sorted[0];
  for (const section of sorted.slice(1)) {
    if (latest !== undefined && section.start < latest.end) found.push([latest, section]);
    if (latest === undefined || section.end > latest.end) latest = section;
  }
  return found;
}

/** The p-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** The gaps (ms) between one holder's section end and the next section's start: the lock idle. */
export function idleGaps(sections: readonly Section[]): number[] {
  const sorted = [...sections].sort((a, b) => (a.start < b.start ? -1 : 1));
  const gaps: number[] = [];
  for (let k = 1; k < sorted.length; k++)
    gaps.push(Number(sorted[k]!.start - sorted[k - 1]!.end) / 1e6);
  return gaps;
}

/**
 * Fault injection on the Redis that .ci/services.sh started (never on another): `redis-pause`,
 * `redis-resume`, `redis-stop`, `redis-restart`. Refuses when REDIS_URL is not that server.
 */
export function redisFault(
  command: 'redis-pause' | 'redis-resume' | 'redis-stop' | 'redis-restart',
) {
  const script = `${root}.ci/services.sh`;
  const env = spawnSync('bash', [script, 'env'], { encoding: 'utf8' });
  const url = /REDIS_URL=(\S+)/.exec(env.stdout)?.[1];
  if (url === undefined || url !== process.env.REDIS_URL)
    throw new Error(
      `fault injection needs the Redis that .ci/services.sh started (REDIS_URL=${process.env.REDIS_URL}, services.sh env: ${url ?? env.stderr.trim()}); set SERVICES_DIR as when it was started`,
    );
  const run = spawnSync('bash', [script, command], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`services.sh ${command} failed: ${run.stderr}`);
}
