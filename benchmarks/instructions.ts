/**
 * Instructions per call, counted by valgrind's callgrind: a figure the machine's load does not move
 * (this machine is shared, and wall-clock ratios drift with what else runs).
 *
 * Run: `npx tsx benchmarks/instructions.ts [--node 24]` (needs `valgrind` and a built `dist/`:
 * `npm run build`). Each case runs in a process of its own under `node --single-threaded` (no
 * background compiler or GC threads, so the count repeats), once with N1 and once with N2 calls
 * after the same warm-up; the figure is (count(N2) − count(N1)) / (N2 − N1): start-up, loading and
 * warm-up cancel out. N1 = 5,000 and N2 = 45,000: with fewer calls, when a collection happens
 * moves the count of the cheapest case by ±1,000 per call.
 *
 * Cases (the same as calls.bench.ts and failure.bench.ts measure in time):
 * - happy path: `async () => 1` awaited one call after another: a bare call; the floor
 *   (`performance.now()`, `als.run(store, fn).then(...)` reading the clock again); asyncbackoff with
 *   no limits, with `context: false`, and bounded (`attemptTimeout` + `deadline` + `withSignal`);
 * - failure path, pause 0, "1 failure" with a pre-made error (`fail:`) and with a fresh
 *   `new Error()` thrown before the function's first await (`fresh:`, stack capture included): a
 *   hand-written try/catch loop, the same loop with `als.run` per attempt (what carrying an attempt
 *   context costs at the least), asyncbackoff by default and with `context: false`.
 *
 * Options: `--cases=fail:default,fresh:default` (some cases; the table shows the ratios whose
 * cases ran), `--dist=<path to index.js>` (another build, e.g. of an earlier commit, for an A/B).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { callgrindCount, nodeFromArgv } from './callgrind.js';

/** `--name=value` or `--name value`. Not support.ts's: loading it would change what the children count. */
function option(name: string): string | undefined {
  const argv = process.argv;
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i === -1) return undefined;
  return argv[i]!.includes('=') ? argv[i]!.slice(argv[i]!.indexOf('=') + 1) : argv[i + 1];
}

const CASES = [
  'bare',
  'floor',
  'default',
  'context-false',
  'bounded',
  'fail:hand',
  'fail:hand+als',
  'fail:default',
  'fail:context-false',
  'fresh:hand',
  'fresh:hand+als',
  'fresh:default',
  'fresh:context-false',
] as const;
type Case = (typeof CASES)[number];

const N1 = 5_000;
const N2 = 45_000;
const WARMUP = 20_000;

// --- child mode: run one case N times after the warm-up -------------------------------------------

async function child(kind: Case, n: number): Promise<void> {
  const dist = process.env.ASYNCBACKOFF_DIST!;
  const { Backoff } = (await import(pathToFileURL(dist).href)) as typeof import('../src/index.js');
  const { AsyncLocalStorage } = await import('node:async_hooks');
  const ok = async () => 1;
  const error = new Error('down');
  const failOnce = () => {
    let calls = 0;
    return () => (calls++ === 0 ? Promise.reject(error) : Promise.resolve(1));
  };
  const freshFailOnce = () => {
    let calls = 0;
    return async () => {
      if (calls++ === 0) throw new Error('down');
      return 1;
    };
  };
  const make = kind.startsWith('fresh:') ? freshFailOnce : failOnce;
  let call: () => Promise<unknown>;
  switch (kind) {
    case 'bare':
      call = () => ok();
      break;
    case 'floor': {
      const als = new AsyncLocalStorage<object>();
      const store = {};
      let sum = 0;
      call = () => {
        const t = performance.now();
        return als.run(store, ok).then((value) => {
          sum += performance.now() - t;
          return value;
        });
      };
      void sum;
      break;
    }
    case 'default':
    case 'context-false': {
      const backoff = new Backoff({
        exceptions: [Error],
        maxTries: 3,
        context: kind === 'default',
      });
      call = () => backoff.execute(ok);
      break;
    }
    case 'bounded': {
      const backoff = new Backoff({ attemptTimeout: 1000, deadline: 5000, exceptions: [Error] });
      const longLived = new AbortController();
      call = () => backoff.withSignal(longLived.signal).execute(ok);
      break;
    }
    case 'fail:hand':
    case 'fail:hand+als':
    case 'fresh:hand':
    case 'fresh:hand+als': {
      const als = kind.endsWith('+als') ? new AsyncLocalStorage<object>() : undefined;
      call = async () => {
        const fn = make();
        for (let attempt = 1; ; attempt++) {
          try {
            return await (als === undefined ? fn() : als.run({ attempt }, fn));
          } catch (caught) {
            if (attempt >= 3) throw caught;
          }
        }
      };
      break;
    }
    case 'fail:default':
    case 'fail:context-false':
    case 'fresh:default':
    case 'fresh:context-false': {
      const backoff = new Backoff({
        exceptions: [Error],
        maxTries: 3,
        pause: 0,
        context: kind.endsWith(':default'),
      });
      call = () => backoff.execute(make());
      break;
    }
  }
  for (let i = 0; i < WARMUP; i++) await call();
  for (let i = 0; i < n; i++) await call();
}

// --- parent mode ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1] as Case, Number(argv[2]));
  const node = nodeFromArgv(argv);
  const dist = option('dist') ?? fileURLToPath(new URL('../dist/index.js', import.meta.url));
  if (!existsSync(dist)) throw new Error(`${dist} is missing: run npm run build`);
  const only = option('cases')?.split(',');
  const unknown = only?.filter((kind) => !(CASES as readonly string[]).includes(kind));
  if (unknown?.length) throw new Error(`unknown --cases: ${unknown.join(', ')}`);
  process.env.ASYNCBACKOFF_DIST = dist;
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'asyncbackoff-callgrind-'));
  const script = fileURLToPath(import.meta.url);
  const figures = new Map<Case, number>();
  try {
    for (const kind of CASES) {
      if (only !== undefined && !only.includes(kind)) continue;
      const count = (n: number) => callgrindCount(node, script, ['--child', kind, String(n)], dir);
      const perCall = (count(N2) - count(N1)) / (N2 - N1);
      figures.set(kind, perCall);
      console.error(`${kind}: ${Math.round(perCall)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const get = (kind: Case) => figures.get(kind)!;
  const ratio = (a: Case, b: Case) =>
    figures.has(a) && figures.has(b) ? `${(get(a) / get(b)).toFixed(2)}x` : '–';
  console.log(`# Instructions per call (callgrind), Node ${version}\n\ndist: ${dist}\n`);
  console.log('| case | instructions/call | ratio |');
  console.log('| --- | ---: | --- |');
  const rows: [Case, string][] = [
    ['bare', ''],
    ['floor', `${ratio('floor', 'bare')} bare`],
    ['default', `${ratio('default', 'bare')} bare, ${ratio('default', 'floor')} floor`],
    ['context-false', `${ratio('context-false', 'bare')} bare`],
    ['bounded', `${ratio('bounded', 'bare')} bare`],
    ['fail:hand', ''],
    ['fail:hand+als', `${ratio('fail:hand+als', 'fail:hand')} hand`],
    [
      'fail:default',
      `${ratio('fail:default', 'fail:hand')} hand, ${ratio('fail:default', 'fail:hand+als')} hand+als`,
    ],
    ['fail:context-false', `${ratio('fail:context-false', 'fail:hand')} hand`],
    ['fresh:hand', ''],
    ['fresh:hand+als', `${ratio('fresh:hand+als', 'fresh:hand')} hand`],
    [
      'fresh:default',
      `${ratio('fresh:default', 'fresh:hand')} hand, ${ratio('fresh:default', 'fresh:hand+als')} hand+als`,
    ],
    ['fresh:context-false', `${ratio('fresh:context-false', 'fresh:hand')} hand`],
  ];
  for (const [kind, note] of rows)
    if (figures.has(kind))
      console.log(`| ${kind} | ${Math.round(get(kind)).toLocaleString('en-US')} | ${note} |`);
}

await main();
