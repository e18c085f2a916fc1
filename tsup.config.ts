import { readdirSync, readFileSync } from 'node:fs';
import { defineConfig, type Options } from 'tsup';
// The entry list lives in package.json ("exports", "bin"); see scripts/entries.mjs.
import { binEntries, libraryEntries } from './scripts/entries.mjs';

/** Every TypeScript source under src/, for the class-name guard below. */
function sources(dir = 'src'): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(`${dir}/${entry.name}`)
      : entry.name.endsWith('.ts')
        ? [readFileSync(`${dir}/${entry.name}`, 'utf8')]
        : [],
  );
}

/**
 * Gives bundled classes back their own names. esbuild bundles `class X { ... X ... }` (a class
 * whose body names itself, as every error class's `Symbol.hasInstance` does) as
 * `var X = class _X { ... _X ... }`, so `X.name` and `error.constructor.name` read `_X` and
 * `console.log(error)` prints `_X: ...`. Renaming the inner binding back to `X` restores the
 * source's own form, `var X = class X { ... X ... }` (inside the body `X` is the class itself, as
 * in the source). esbuild's `keepNames` would fix the names too, but it adds a `__name()` call
 * (an `Object.defineProperty`) around 126 functions and closures, some of them made per execution
 * on the retry path. This rename leaves the code byte for byte as esbuild emits it, but for the
 * identifiers, so it costs nothing at run time.
 *
 * esbuild picks `_X` only when no other symbol has that name; the guard refuses to build if a
 * source spells `_X` anywhere, so the rename can never touch anything but the inner binding.
 */
function restoreClassNames(): NonNullable<Options['plugins']>[number] {
  let text: string | undefined;
  return {
    name: 'restore-class-names',
    renderChunk(code, chunk) {
      if (!/\.(c|m)?js$/.test(chunk.path)) return;
      let out = code;
      for (const [, name] of code.matchAll(/^var ([A-Za-z$][\w$]*) = class _\1(?= )/gm)) {
        const inner = new RegExp(`(?<![\\w$])_${name!.replace(/\$/g, '\\$')}(?![\\w$])`, 'g');
        text ??= sources().join('\n');
        if (inner.test(text))
          throw new Error(`restore-class-names: the sources spell _${name}; cannot rename safely`);
        out = out.replace(inner, name!);
      }
      if (/ = class _[\w$]+ /.test(out))
        throw new Error(`restore-class-names: a renamed class is left in ${chunk.path}`);
      return { code: out };
    },
  };
}

const common = {
  // Both formats build at once, so neither cleans: `npm run build` empties dist/ first.
  clean: false,
  target: 'node20',
  platform: 'node',
  splitting: false,
  treeshake: true,
  // No source maps: the bundles are unminified and read like the source, and a map would point
  // at src/, which the package does not ship.
  sourcemap: false,
  plugins: [restoreClassNames()],
} satisfies Options;

export default defineConfig([
  {
    ...common,
    entry: Object.fromEntries(libraryEntries().map((entry) => [entry.name, entry.source])),
    format: ['esm', 'cjs'],
    dts: true,
    // The adapters import the core as 'asyncbackoff' (the package's self-reference): it must stay
    // an import, not a second bundled copy of the core.
    external: ['asyncbackoff'],
  },
  {
    ...common,
    // The commands (package.json "bin"). The shebang comes from the source (src/cli/bin.ts);
    // tsup makes a file that starts with one executable.
    entry: Object.fromEntries(binEntries().map((entry) => [entry.name, entry.source])),
    format: ['esm'],
    dts: false,
  },
]);
