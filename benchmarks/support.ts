/**
 * What the benchmarks share: statistics, machine facts, which peer versions and which build of
 * asyncbackoff run here, child processes, and the report every scenario prints and writes.
 */

import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

// --- statistics ------------------------------------------------------------------------------------

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The p-quantile (0..1) of an ascending array, nearest rank. */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

// --- command line ----------------------------------------------------------------------------------

const argv = process.argv.slice(2);

/** `--name` given? */
export function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}

/** The value of `--name=value` or `--name value`, or undefined. */
export function option(name: string): string | undefined {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i === -1) return undefined;
  const a = argv[i]!;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[i + 1];
}

export function numberOption(name: string, fallback: number): number {
  const value = option(name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new RangeError(`--${name}: expected a number, got ${value}`);
  return n;
}

/** Every scenario takes --smoke: tiny sizes, so that the whole suite runs end to end in seconds. */
export const SMOKE = flag('smoke');

// --- what is measured ------------------------------------------------------------------------------

export type Library = typeof import('../src/index.js');

/**
 * Which build of asyncbackoff the benchmarks load: `dist` (the built package, what `npm pack`
 * ships; the default) or `src` (the TypeScript source through tsx). Set by the runner for every
 * process it starts, through the environment, so that children load the same one.
 */
export const TARGET: 'dist' | 'src' =
  process.env.ASYNCBACKOFF_BENCH_TARGET === 'src' ? 'src' : 'dist';

const root = fileURLToPath(new URL('../', import.meta.url));

export async function loadLibrary(): Promise<Library> {
  if (TARGET === 'src') return import('../src/index.js');
  const file = join(root, 'dist/index.js');
  if (!existsSync(file))
    throw new Error(
      'dist/index.js is missing: run `npm run build` (npm run bench does), or set ASYNCBACKOFF_BENCH_TARGET=src',
    );
  return (await import(new URL('../dist/index.js', import.meta.url).href)) as Library;
}

export function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {}
  return os.cpus()[0]?.model ?? 'unknown';
}

/** A short hash of src/*.ts, so that a result can be matched to the code it measured. */
export function srcHash(): string {
  const dir = join(root, 'src');
  const hash = createHash('sha256');
  for (const name of readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort())
    hash.update(name).update(readFileSync(join(dir, name)));
  return hash.digest('hex').slice(0, 12);
}

/** What was measured, in one line: the source hash and, for dist, whether it is older than src. */
export function targetDescription(): string {
  if (TARGET === 'src') return `src/*.ts sha256 ${srcHash()} (the source, through tsx)`;
  const file = join(root, 'dist/index.js');
  const dist = existsSync(file)
    ? createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12)
    : 'missing';
  const srcDir = join(root, 'src');
  const newest = Math.max(
    ...readdirSync(srcDir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => statSync(join(srcDir, f)).mtimeMs),
  );
  const stale = existsSync(file) && statSync(file).mtimeMs < newest;
  return `src/*.ts sha256 ${srcHash()}, built dist/index.js sha256 ${dist}${stale ? ' (WARNING: dist is older than src; run npm run build)' : ''}`;
}

export function versionOf(pkg: string): string {
  const file = join(root, `node_modules/${pkg}/package.json`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** The newest peer versions that run on this Node: p-retry 9 and cockatiel 4 need Node >= 22. */
export function peerPackages(): { pRetry: string; cockatiel: string } {
  const modern = Number(process.versions.node.split('.')[0]) >= 22;
  return modern
    ? { pRetry: 'p-retry', cockatiel: 'cockatiel' }
    : { pRetry: 'p-retry-node20', cockatiel: 'cockatiel-node20' };
}

/** The peers, loaded in the versions that suit this Node. */
export async function loadPeers() {
  const { pRetry: pRetryPkg, cockatiel: cockatielPkg } = peerPackages();
  const imported = await import(cockatielPkg as string);
  const cockatiel = (imported.retry ? imported : imported.default) as typeof import('cockatiel');
  const pRetry = (
    (await import(pRetryPkg as string)) as { default: typeof import('p-retry').default }
  ).default;
  const acx = await import('abort-controller-x');
  const expBackoff = await import('exponential-backoff');
  const versions =
    `${pRetryPkg}=p-retry@${versionOf(pRetryPkg)}, ${cockatielPkg}=cockatiel@${versionOf(cockatielPkg)}, ` +
    `abort-controller-x@${versionOf('abort-controller-x')}, exponential-backoff@${versionOf('exponential-backoff')}`;
  return { cockatiel, pRetry, acxRetry: acx.retry, backOff: expBackoff.backOff, versions };
}

/** A new `Error` without a stack, as a verdict's error is built (the stack says nothing here). */
export function stacklessError(message = 'timed out'): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error = new Error(message);
  Error.stackTraceLimit = limit;
  return error;
}

/**
 * The context floor: the least a bounded call costs when it carries an attempt context as
 * asyncbackoff does. One shared FIFO timer for all calls (entries share one duration, so they
 * expire in the order they were added), a promise per call, the attempt run in
 * `AsyncLocalStorage.run`, the caller's async context kept in an `AsyncResource` for the verdict,
 * and `verdictError()` as the rejection (by default a new stackless `Error` per verdict).
 */
export function contextFloor(
  attempt: () => Promise<never>,
  bound: number,
  verdictError: () => Error = stacklessError,
): () => Promise<unknown> {
  interface Entry {
    dueAt: number;
    next: Entry | undefined;
    reject: (error: Error) => void;
    scope: AsyncResource;
  }
  const storage = new AsyncLocalStorage<{ signal: undefined }>();
  let head: Entry | undefined;
  let tail: Entry | undefined;
  let armed = false;
  const timedOut = (entry: Entry) => entry.reject(verdictError());
  const fire = () => {
    armed = false;
    const now = performance.now();
    while (head !== undefined && head.dueAt <= now) {
      const entry = head;
      head = entry.next;
      if (head === undefined) tail = undefined;
      entry.scope.runInAsyncScope(timedOut, undefined, entry);
    }
    if (head !== undefined) arm(head.dueAt - performance.now());
  };
  const arm = (ms: number) => {
    armed = true;
    setTimeout(fire, Math.max(1, Math.ceil(ms)));
  };
  return () =>
    new Promise((resolve, reject) => {
      const entry: Entry = {
        dueAt: performance.now() + bound,
        next: undefined,
        reject,
        scope: new AsyncResource('floor', { requireManualDestroy: true }),
      };
      if (tail === undefined) head = entry;
      else tail.next = entry;
      tail = entry;
      if (!armed) arm(bound);
      storage.run({ signal: undefined }, attempt).then(resolve, reject);
    });
}

/**
 * The rows of the memory probes (pending-size.ts, verdict-alloc.ts): the context floor and
 * asyncbackoff's `attemptTimeout` and `deadline` executions, each bounded to `bound` ms, with
 * attempts that never settle.
 */
export async function boundedRows(bound: number): Promise<[string, () => Promise<unknown>][]> {
  const { Backoff } = await loadLibrary();
  const never = () => new Promise<never>(() => {});
  const executes = (backoff: InstanceType<typeof Backoff>) => () => backoff.execute(never);
  return [
    ['context floor (precision bench)', contextFloor(never, bound)],
    [
      'asyncbackoff attemptTimeout (maxTries 1)',
      executes(new Backoff({ attemptTimeout: bound, maxTries: 1 })),
    ],
    ['asyncbackoff deadline', executes(new Backoff({ deadline: bound }))],
  ];
}

export const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

// --- child processes -------------------------------------------------------------------------------

/** A child process that answers one line per request line. */
export interface Worker {
  request(line: string): Promise<string>;
  stop(): void;
}

/**
 * Starts `script` again in a child process (same Node, same execArgv, so also under tsx) with
 * `args`, waits for it to print `ready`, and returns a way to send it request lines; it answers each
 * with one line. The baselines and every isolated case run this way, so that they share no heap,
 * no AsyncLocalStorage and no inline caches with anything else.
 */
export async function startWorker(
  script: string,
  args: readonly string[],
  execArgv: readonly string[] = [],
): Promise<Worker> {
  const child = spawn(process.execPath, [...process.execArgv, ...execArgv, script, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const name = `${basename(script)} ${args.join(' ')}`;
  const next = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the child ${name} exited (code ${child.exitCode})`);
    return value;
  };
  const ready = await next();
  if (ready !== 'ready') throw new Error(`the child ${name} said ${JSON.stringify(ready)}`);
  return {
    request: async (line) => {
      child.stdin!.write(`${line}\n`);
      return next();
    },
    stop: () => child.stdin!.end(),
  };
}

/**
 * The child side of {@link startWorker}: prints `ready`, then answers each line on stdin with
 * `answer(line)`, and exits when stdin closes.
 */
export async function serveRequests(answer: (line: string) => Promise<string>): Promise<never> {
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === '') continue;
    process.stdout.write(`${await answer(line)}\n`);
  }
  process.exit(0);
}

/** [wall ns, cpu ns] of one measurement. */
export type Sample = [wall: number, cpu: number];

/** A {@link startWorker} child that answers each `round` with `wall cpu`. */
export async function startChild(
  script: string,
  flagArg: string,
  args: readonly string[],
): Promise<{ round: (request?: string) => Promise<Sample>; stop: () => void }> {
  const worker = await startWorker(script, [flagArg, ...args]);
  return {
    round: async (request = 'round') => {
      const [wall, cpu] = (await worker.request(request)).split(' ').map(Number);
      return [wall!, cpu!];
    },
    stop: worker.stop,
  };
}

// --- the report ------------------------------------------------------------------------------------

export interface Environment {
  node: string;
  platform: string;
  cpus: number;
  cpu: string;
  target: 'dist' | 'src';
  source: string;
  peers?: string;
  loadBefore: number;
  loadAfter?: number;
}

export interface Table {
  readonly title?: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<string>>;
  /** Per column 'l' or 'r'; default: the first left, the others right (figures). */
  readonly align?: string;
}

export interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

export interface Chart {
  readonly title: string;
  /** File name, relative to the report's directory. */
  readonly file: string;
}

export type Block =
  | { readonly kind: 'table'; readonly table: Table }
  | { readonly kind: 'text'; readonly lines: readonly string[] }
  | { readonly kind: 'chart'; readonly chart: Chart };

export interface ScenarioReport {
  readonly scenario: string;
  readonly title: string;
  /** How to run this scenario alone, exactly as it ran. */
  readonly command: string;
  readonly smoke: boolean;
  readonly environment: Environment;
  readonly method: readonly string[];
  readonly blocks: readonly Block[];
  readonly checks: readonly Check[];
  /** The line above the checks. */
  readonly checksHeading: string;
  readonly seconds: number;
  /** Raw figures for the JSON file. */
  readonly data: Record<string, unknown>;
}

/** How Node is started, as a reader would type it (the runner sets it for `--node 24`). */
export function nodeCommand(): string {
  return process.env.ASYNCBACKOFF_BENCH_NODE ?? 'node';
}

/**
 * Collects one scenario's results: prints the header at once (so a reader of the log knows what
 * ran where), and at the end prints the markdown and writes the JSON file and the charts.
 *
 * Options every scenario takes: `--json=FILE` (write the report there), `--out=DIR` (charts;
 * default: a temporary directory), `--prefix=P` (prepended to chart file names), `--smoke`.
 */
export class Report {
  private readonly started = performance.now();
  private readonly blocks: Block[] = [];
  private readonly checks: Check[] = [];
  private readonly data: Record<string, unknown> = {};
  readonly environment: Environment;
  readonly outDir: string;
  private readonly prefix: string;
  private readonly execArgv: string;
  private readonly checksHeading: string;

  constructor(
    readonly scenario: string,
    readonly title: string,
    /** The script, relative to the repository, e.g. benchmarks/calls.bench.ts. */
    private readonly script: string,
    private readonly method: string[],
    options: { peers?: string; execArgv?: string; checksHeading?: string } = {},
  ) {
    this.environment = {
      node: process.version,
      platform: `${process.platform}/${process.arch}`,
      cpus: os.availableParallelism(),
      cpu: cpuModel(),
      target: TARGET,
      source: targetDescription(),
      ...(options.peers === undefined ? {} : { peers: options.peers }),
      loadBefore: os.loadavg()[0]!,
    };
    this.execArgv = options.execArgv ?? '';
    this.checksHeading =
      options.checksHeading ?? 'Targets (a report: a FAIL does not fail the run):';
    this.outDir = option('out') ?? join(os.tmpdir(), `asyncbackoff-bench-${process.pid}`);
    this.prefix = option('prefix') ?? '';
    const e = this.environment;
    console.log(`# ${title}${SMOKE ? ' (--smoke: tiny sizes, not figures)' : ''}`);
    console.log(`node ${e.node} (${e.platform}), ${e.cpus} CPUs: ${e.cpu}`);
    console.log(`asyncbackoff: ${e.source}`);
    if (e.peers !== undefined) console.log(`peers: ${e.peers}`);
    console.log(
      `load average (1 min) at start: ${e.loadBefore.toFixed(2)}${busyWarning(e.loadBefore)}`,
    );
  }

  get command(): string {
    const passed = process.argv
      .slice(2)
      .filter((a) => !/^--(json|out|prefix)=/.test(a))
      .join(' ');
    const env = TARGET === 'src' ? 'ASYNCBACKOFF_BENCH_TARGET=src ' : '';
    return `${env}${nodeCommand()} ${this.execArgv ? `${this.execArgv} ` : ''}--import tsx ${this.script}${passed ? ` ${passed}` : ''}`;
  }

  table(table: Table): void {
    this.blocks.push({ kind: 'table', table });
  }

  text(...lines: string[]): void {
    this.blocks.push({ kind: 'text', lines });
  }

  /** Writes an SVG chart into the output directory and places it in the report. */
  chart(name: string, title: string, svg: string): void {
    mkdirSync(this.outDir, { recursive: true });
    const file = `${this.prefix}${name}.svg`;
    writeFileSync(join(this.outDir, file), svg);
    this.blocks.push({ kind: 'chart', chart: { title, file } });
  }

  check(name: string, pass: boolean, detail: string): void {
    this.checks.push({ name, pass, detail });
  }

  set(key: string, value: unknown): void {
    this.data[key] = value;
  }

  /** Prints the report as markdown and writes the JSON file if --json was given. */
  finish(): ScenarioReport {
    const loadAfter = os.loadavg()[0]!;
    const report: ScenarioReport = {
      scenario: this.scenario,
      title: this.title,
      command: this.command,
      smoke: SMOKE,
      environment: { ...this.environment, loadAfter },
      method: this.method,
      blocks: this.blocks,
      checks: this.checks,
      checksHeading: this.checksHeading,
      seconds: (performance.now() - this.started) / 1000,
      data: this.data,
    };
    console.log('');
    console.log(renderScenario(report, { chartDir: this.outDir, heading: '##', header: false }));
    const json = option('json');
    if (json !== undefined) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  }
}

function busyWarning(load: number): string {
  return load > os.availableParallelism() * 0.75
    ? ' (WARNING: the machine is busy; absolute figures are inflated, ratios are time-matched)'
    : '';
}

function escapeCell(cell: string): string {
  return cell.replace(/\|/g, '\\|');
}

/** A markdown table, padded for reading. */
export function markdownTable(t: Table): string {
  const rows = [t.columns, ...t.rows].map((r) => r.map(escapeCell));
  const widths = t.columns.map((_, i) => Math.max(3, ...rows.map((r) => (r[i] ?? '').length)));
  const left = (i: number) => (t.align === undefined ? i === 0 : t.align[i] !== 'r');
  const line = (r: readonly string[]) =>
    `| ${r.map((c, i) => (left(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  // The rule as biome formats it (benchmarks/README.md is checked by `biome check`).
  const rule = `| ${widths.map((w, i) => (left(i) ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n');
}

/** One scenario as markdown; charts are linked relative to `chartDir` (a path or a URL prefix). */
export function renderScenario(
  r: ScenarioReport,
  options: { chartDir: string; heading: string; header: boolean },
): string {
  const out: string[] = [];
  const e = r.environment;
  out.push(`${options.heading} ${r.title}`, '');
  if (options.header) {
    out.push(
      `Command: \`${r.command}\` — node ${e.node} (${e.platform}), ${e.cpus} CPUs: ${e.cpu}; ` +
        `load ${e.loadBefore.toFixed(2)} → ${(e.loadAfter ?? Number.NaN).toFixed(2)}; ${r.seconds.toFixed(0)} s.`,
      '',
    );
    out.push(`asyncbackoff: ${e.source}.${e.peers ? ` Peers: ${e.peers}.` : ''}`, '');
  }
  if (r.method.length > 0) out.push(...r.method.map((m) => `- ${m}`), '');
  for (const b of r.blocks) {
    if (b.kind === 'table') {
      if (b.table.title) out.push(`**${b.table.title}**`, '');
      out.push(markdownTable(b.table), '');
    } else if (b.kind === 'text') out.push(...b.lines, '');
    else {
      const dir = options.chartDir.endsWith('/') ? options.chartDir : `${options.chartDir}/`;
      out.push(`![${b.chart.title}](${dir}${b.chart.file})`, '');
    }
  }
  if (r.checks.length > 0) {
    out.push(r.checksHeading, '', '```');
    for (const c of r.checks) out.push(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
    out.push('```', '');
  }
  return out.join('\n');
}

// --- formatting --------------------------------------------------------------------------------------

/** 12345.6 → "12,346"; 12.34 → "12.3"; 0.123 → "0.12". */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return n.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export const times = (x: number): string => `${x.toFixed(2)}x`;

/** Resolves after one turn of the event loop (after the I/O and check phases). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The collector's `gc()`, without starting node with `--expose-gc`: the flag is set at run time and
 * the function read from a fresh context (the flag only exposes `gc` to contexts made after it).
 */
export function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}
