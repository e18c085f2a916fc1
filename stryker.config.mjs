// Mutation testing of src/ (`npm run mutation`): StrykerJS with its vitest runner, which runs only
// the tests that cover each mutant. Incremental: the result of the last run is kept in
// reports/mutation/incremental.json (git-ignored: 26 MB), so a rerun after a small change tests only the
// mutants of changed code or changed tests. `npm run mutation -- --force` reruns everything.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts' },
  mutate: ['src/**/*.ts'],
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants: message texts, code sets, limits) are evaluated once
  // at import, so no test can be picked for them: each would rerun the whole suite (~70 s here),
  // 758 of them ~7 hours on 2 cores. They are reported as Ignored and left out of the score, which
  // CONTRIBUTING states beside the figure.
  ignoreStatic: true,
  incremental: true,
  incrementalFile: 'reports/mutation/incremental.json',
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  concurrency: 2,
  // Real-timer tests and fake-clock ticks both slow down under a mutant that loops: generous.
  timeoutMS: 10_000,
  timeoutFactor: 2,
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
