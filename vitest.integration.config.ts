import { defineConfig, mergeConfig } from 'vitest/config';
import unit from './vitest.config.js';

export default mergeConfig(
  { resolve: unit.resolve },
  defineConfig({
    test: {
      include: ['test/integration/**/*.test.ts'],
      testTimeout: 30_000,
      hookTimeout: 30_000,
      fileParallelism: false,
    },
  }),
);
