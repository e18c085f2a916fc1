/**
 * The benchmark suite's runner: `npm run bench` runs every scenario on the running Node, one after
 * another, each in a process of its own (and each starts its own children), then writes
 * `benchmarks/results/<node-version>.{md,json}` with the SVG charts beside them, and replaces the
 * block for this Node major in benchmarks/README.md.
 *
 *   npm run bench                       # build dist/, run everything on this Node
 *   npm run bench -- --node 24          # the same under Node 24 (npx -y node@24), peers for Node 24
 *   npm run bench -- --smoke            # tiny sizes, every scenario end to end, into a temp dir
 *   npm run bench -- --only=precision,failure   # some scenarios (results: a temp dir, README untouched)
 *   npm run bench -- --src              # measure src/ through tsx instead of the built dist/
 *   npm run bench -- --no-build         # use dist/ as it is
 *
 * The figures are a report: a target that fails never fails the run. The exit status is 1 only if
 * a scenario crashed or returned wrong results (or the soak found a leak, or the retry-storm model
 * stopped showing what its write-up claims).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cpuModel,
  flag,
  markdownTable,
  NODE_MAJOR,
  nodeCommand,
  option,
  renderScenario,
  type ScenarioReport,
  SMOKE,
  TARGET,
  targetDescription,
} from './support.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const argv = process.argv.slice(2);

interface Scenario {
  readonly name: string;
  readonly script: string;
  readonly execArgv?: readonly string[];
  /** Node-independent (deterministic): full runs write beside the other results, unprefixed. */
  readonly shared?: boolean;
}
const SCENARIOS: readonly Scenario[] = [
  { name: 'happy', script: 'benchmarks/calls.bench.ts' },
  { name: 'failure', script: 'benchmarks/failure.bench.ts' },
  { name: 'precision', script: 'benchmarks/precision.bench.ts' },
  { name: 'verdicts', script: 'benchmarks/verdicts.bench.ts' },
  { name: 'memory', script: 'benchmarks/soak.ts', execArgv: ['--expose-gc'] },
  { name: 'batch', script: 'benchmarks/batch.bench.ts' },
  { name: 'retry-storm', script: 'benchmarks/retry-storm/study.ts', shared: true },
];

const only = option('only')?.split(',');
if (only !== undefined)
  for (const name of only)
    if (!SCENARIOS.some((s) => s.name === name))
      throw new Error(
        `--only: unknown scenario ${name} (${SCENARIOS.map((s) => s.name).join(', ')})`,
      );
const nodeArg = option('node');
const targetArg: 'dist' | 'src' = flag('src') ? 'src' : TARGET;

// --- build, and hand over to another Node if asked --------------------------------------------------

if (targetArg === 'dist' && !flag('no-build')) {
  console.log('=== npm run build (the suite measures dist/, what the package ships)');
  const built = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
} else if (targetArg === 'dist' && !existsSync(join(root, 'dist/index.js'))) {
  console.error('dist/index.js is missing: run npm run build (or drop --no-build)');
  process.exit(1);
}

if (nodeArg !== undefined && Number(nodeArg) !== NODE_MAJOR) {
  if (!/^\d+$/.test(nodeArg)) throw new Error(`--node: expected a major version, got ${nodeArg}`);
  const rest = argv.filter((a, i) => !/^--node(=|$)/.test(a) && argv[i - 1] !== '--node');
  const runner = `npx -y node@${nodeArg}`;
  console.log(`=== ${runner} --import tsx benchmarks/run.ts ${rest.join(' ')}`);
  const child = spawnSync(
    'npx',
    ['-y', `node@${nodeArg}`, '--import', 'tsx', 'benchmarks/run.ts', ...rest, '--no-build'],
    {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        ASYNCBACKOFF_BENCH_NODE: runner,
        ASYNCBACKOFF_BENCH_TARGET: targetArg,
        ASYNCBACKOFF_BENCH_COMMAND: `npm run bench -- ${argv.join(' ')}`,
      },
    },
  );
  process.exit(child.status ?? 1);
}

// --- run the scenarios ------------------------------------------------------------------------------

const partial = only !== undefined;
const command =
  process.env.ASYNCBACKOFF_BENCH_COMMAND ??
  `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`;
const version = process.version;
const resultsDir = join(root, 'benchmarks/results');
const outDir =
  SMOKE || partial ? mkdtempSync(join(os.tmpdir(), 'asyncbackoff-bench-')) : resultsDir;
mkdirSync(outDir, { recursive: true });
const scratch = mkdtempSync(join(os.tmpdir(), 'asyncbackoff-bench-json-'));
const env = { ...process.env, ASYNCBACKOFF_BENCH_TARGET: targetArg };

console.log(
  `=== ${command}: node ${version}, ${os.availableParallelism()} CPUs (${cpuModel()}), load ${os.loadavg()[0]!.toFixed(2)}; measuring ${targetArg}/; results into ${outDir}`,
);

const started = performance.now();
const reports: ScenarioReport[] = [];
const failures: string[] = [];
const selected = SCENARIOS.filter((s) => only === undefined || only.includes(s.name));
for (const [i, s] of selected.entries()) {
  const json = join(scratch, `${s.name}.json`);
  const args = [
    ...process.execArgv,
    ...(s.execArgv ?? []),
    s.script,
    `--json=${json}`,
    `--out=${s.shared && !SMOKE && !partial ? resultsDir : outDir}`,
    ...(s.shared ? [] : [`--prefix=${version}-`]),
    ...(SMOKE ? ['--smoke'] : []),
  ];
  console.log(`\n=== [${i + 1}/${selected.length}] ${s.name}: ${s.script}`);
  const t0 = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
  const seconds = (performance.now() - t0) / 1000;
  if (result.status !== 0 || !existsSync(json)) {
    failures.push(
      `${s.name}: exit ${result.status ?? result.signal}${existsSync(json) ? '' : ', no report'}`,
    );
  }
  if (existsSync(json)) reports.push(JSON.parse(readFileSync(json, 'utf8')) as ScenarioReport);
  console.log(`=== ${s.name}: ${seconds.toFixed(1)} s, exit ${result.status ?? result.signal}`);
}
const seconds = (performance.now() - started) / 1000;

// --- write the results ------------------------------------------------------------------------------

/** The targets of every scenario in one table. */
function summary(): string {
  const rows = reports.flatMap((r) =>
    r.checks.map((c) => [r.title.split(':')[0]!, c.pass ? 'PASS' : 'FAIL', c.name, c.detail]),
  );
  return markdownTable({ columns: ['scenario', '', 'target', 'measured'], rows, align: 'llll' });
}

const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const headline = [
  `Command: \`${command}\` (${date}, ${seconds.toFixed(0)} s). Node ${version} (${nodeCommand()}), ${process.platform}/${process.arch}, ${os.availableParallelism()} CPUs: ${cpuModel()}.`,
  '',
  `asyncbackoff: ${targetDescription()}.`,
  ...(failures.length > 0 ? ['', `**Scenarios that failed:** ${failures.join('; ')}.`] : []),
];
const markdown = [
  `# Benchmarks on Node ${version}${SMOKE ? ' (--smoke: tiny sizes, not figures)' : ''}`,
  '',
  ...headline,
  '',
  '## Targets',
  '',
  summary(),
  '',
  ...reports.map((r) => renderScenario(r, { chartDir: '.', heading: '##', header: true })),
].join('\n');
const file = join(outDir, `${version}.md`);
writeFileSync(file, markdown);
writeFileSync(
  join(outDir, `${version}.json`),
  `${JSON.stringify({ command, date, node: version, smoke: SMOKE, target: targetArg, source: targetDescription(), seconds, failures, scenarios: reports }, null, 2)}\n`,
);

if (!SMOKE && !partial) {
  // benchmarks/README.md: replace this Node major's block (or add one at the end).
  const readme = join(root, 'benchmarks/README.md');
  const begin = `<!-- results: node ${NODE_MAJOR} (written by npm run bench; do not edit) -->`;
  const end = `<!-- end of results: node ${NODE_MAJOR} -->`;
  const block = [
    begin,
    '',
    `### Node ${NODE_MAJOR}: ${version}`,
    '',
    ...headline,
    `Full report: [results/${version}.md](results/${version}.md), raw figures: [results/${version}.json](results/${version}.json).`,
    '',
    summary(),
    '',
    ...reports.map((r) =>
      renderScenario({ ...r, method: [] }, { chartDir: 'results', heading: '####', header: true }),
    ),
    end,
  ].join('\n');
  let text = readFileSync(readme, 'utf8');
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  text =
    a !== -1 && b > a
      ? text.slice(0, a) + block + text.slice(b + end.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(readme, text);
  // `biome check .` covers this file: format it the way biome would, so a run never breaks lint.
  spawnSync('npx', ['--no-install', 'biome', 'format', '--write', 'benchmarks/README.md'], {
    cwd: root,
    stdio: 'ignore',
  });
  console.log(`\nupdated benchmarks/README.md (block for Node ${NODE_MAJOR})`);
}

console.log(`\n=== wrote ${file} (+ .json, charts) in ${seconds.toFixed(0)} s`);
console.log(summary());
if (failures.length > 0) {
  console.error(`\nscenarios that failed: ${failures.join('; ')}`);
  process.exitCode = 1;
}
