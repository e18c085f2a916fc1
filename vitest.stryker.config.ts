// The unit suite as Stryker runs it: the same tests, minus the property search's depth (its 10,000
// schedules would run again for every mutant they cover; 500 still find what a mutant breaks in
// the engine's ordering), and no coverage.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

process.env.PROPERTY_RUNS ??= '500';

export default mergeConfig(
  base,
  defineConfig({
    test: { coverage: { enabled: false } },
  }),
);
