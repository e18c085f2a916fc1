import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The adapters (asyncbackoff/redis, asyncbackoff/postgres) import the core by its package name,
    // as the built package does; in tests that name is the source.
    alias: [
      {
        find: /^asyncbackoff$/,
        replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
      },
      {
        // asyncbackoff/postgres → src/postgres.ts, asyncbackoff/redis → src/redis.ts (the adapters' own subpaths).
        find: /^asyncbackoff\/([a-z]+)$/,
        replacement: fileURLToPath(new URL('./src/$1.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/integration/**', 'node_modules/**'],
    // A test that leaves a rejection unhandled fails the run.
    dangerouslyIgnoreUnhandledErrors: false,
    // `npm run test:coverage` (and .ci/run): v8 coverage of src/, failing under 95% of lines or
    // branches. The integration suite is not counted: the gate is what the unit tests prove.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'text', 'json-summary'],
      reportsDirectory: 'coverage',
      thresholds: { lines: 95, branches: 95 },
    },
  },
});
