import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    // Both builds run at once, so neither cleans: `npm run build` empties dist/ first.
    clean: false,
    target: 'node20',
    splitting: false,
    treeshake: true,
  },
  {
    // Subpath exports (asyncbackoff/postgres, asyncbackoff/redis). They import the core by the
    // package's own name, so it stays external: one copy of the core (one attempt context, one set
    // of error classes), whichever entry a program loads first.
    entry: { postgres: 'src/postgres.ts', redis: 'src/redis.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'node20',
    splitting: false,
    treeshake: true,
    external: ['asyncbackoff'],
  },
  {
    // The `asyncbackoff` command (package.json "bin"). The shebang comes from src/cli/main.ts;
    // tsup makes a file that starts with one executable.
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    splitting: false,
    treeshake: true,
  },
]);
