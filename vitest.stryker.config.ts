// The unit suite as Stryker runs it: the same tests, minus the depth of the two that repeat work
// (the property search's 10,000 schedules would run again for every mutant they cover; 500 still
// find what a mutant breaks in the engine's ordering), and no coverage.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

process.env.PROPERTY_RUNS ??= '500';
// The batch memory test's million items, instrumented, take a minute on a busy machine.
process.env.BATCH_MEMORY_ITEMS ??= '100000';

export default mergeConfig(
  base,
  defineConfig({
    // Instrumented code on a loaded 2-core machine runs several times slower than `npm test`.
    test: { coverage: { enabled: false }, testTimeout: 30_000 },
  }),
);
