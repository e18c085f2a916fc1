// The package's entry points, in one place: package.json. Each "exports" subpath (`.` for the
// core, `./<name>` for the others) is built from src/<name>.ts (src/index.ts for `.`) into
// dist/<name>.js (import), dist/<name>.cjs (require) and their types, dist/<name>.d.ts and
// dist/<name>.d.cts; each "bin" file from the source named in BIN_SOURCES. tsup.config.ts builds
// them, typedoc.config.mjs documents them, .ci/check-package.mjs checks the tarball against them.
//
// To add an entry: add src/<name>.ts and, to package.json "exports", a block like "."'s with
// <name> for `index`.
import { readFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));

/** Sources of the files in package.json "bin", by file. */
const BIN_SOURCES = { './dist/cli.js': 'src/cli/bin.ts' };

/**
 * @typedef {object} LibraryEntry
 * @property {string} subpath  the "exports" key: `.`, `./redis`, ...
 * @property {string} name     `index`, `redis`, ...: the tsup entry name
 * @property {string} source   `src/index.ts`, ...
 * @property {string[]} files  the four built files, relative to the package root
 */

/** @returns {LibraryEntry[]} the "exports" entries, checked to follow the layout above. */
export function libraryEntries() {
  const entries = [];
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    if (subpath === './package.json') continue;
    const name = subpath === '.' ? 'index' : subpath.replace(/^\.\//, '');
    const expected = {
      import: { types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` },
      require: { types: `./dist/${name}.d.cts`, default: `./dist/${name}.cjs` },
    };
    if (!/^[a-z][a-z0-9-]*$/.test(name) || JSON.stringify(target) !== JSON.stringify(expected))
      throw new Error(
        `package.json "exports" ${JSON.stringify(subpath)} must be ${JSON.stringify(expected)}, got ${JSON.stringify(target)}`,
      );
    entries.push({
      subpath,
      name,
      source: `src/${name}.ts`,
      files: [
        expected.import.default,
        expected.require.default,
        expected.import.types,
        expected.require.types,
      ].map((file) => file.slice(2)),
    });
  }
  return entries;
}

/**
 * @typedef {object} BinEntry
 * @property {string} command  the command's name
 * @property {string} name     the tsup entry name (`cli`)
 * @property {string} source   `src/cli/bin.ts`
 * @property {string} file     `dist/cli.js`
 */

/** @returns {BinEntry[]} the package.json "bin" entries with their sources. */
export function binEntries() {
  return Object.entries(pkg.bin ?? {}).map(([command, file]) => {
    const source = BIN_SOURCES[file];
    const match = /^\.\/dist\/([a-z][a-z0-9-]*)\.js$/.exec(file);
    if (source === undefined || match === null)
      throw new Error(
        `package.json "bin" ${command}: ${file} has no source in scripts/entries.mjs`,
      );
    return { command, name: match[1], source, file: file.slice(2) };
  });
}
