import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/integration/**', 'node_modules/**'],
    // A test that leaves a rejection unhandled fails the run.
    dangerouslyIgnoreUnhandledErrors: false,
  },
});
