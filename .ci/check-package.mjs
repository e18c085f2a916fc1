// Checks a packed tarball carries exactly what it should:
//   node .ci/check-package.mjs asyncbackoff-<version>.tgz
// - the files: package.json, README.md, LICENSE, CHANGELOG.md, and for every entry in
//   package.json "exports" and "bin" its built files (scripts/entries.mjs); nothing else (no
//   src/, test/, benchmarks/, source maps);
// - each "bin" file starts with a node shebang and is executable;
// - no built file refers to a source map, and every import is a Node builtin, the package itself
//   (the adapters' self-reference), a declared dependency, or a relative file in the tarball;
// - every declared runtime dependency is imported somewhere (one that ships unused is dead weight).
// Exits non-zero with the list of problems.

import { readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { binEntries, libraryEntries } from '../scripts/entries.mjs';

const tarball = process.argv[2];
if (!tarball) {
  console.error('usage: node .ci/check-package.mjs <tarball>');
  process.exit(2);
}

/** The regular files of a (gzipped) tar archive: path → { mode, text }. */
function readTar(file) {
  const data = gunzipSync(readFileSync(file));
  const files = new Map();
  let longName;
  for (let offset = 0; offset + 512 <= data.length; ) {
    const header = data.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start, length) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    const prefix = field(345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    const body = data.subarray(offset + 512, offset + 512 + size);
    longName = undefined;
    if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0')
      files.set(name, {
        mode: Number.parseInt(field(100, 8).trim(), 8),
        text: body.toString('utf8'),
      });
    else if (type !== '5' && type !== 'x' && type !== 'g')
      files.set(name, { mode: 0, text: '', odd: `tar entry type '${type}'` });
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

const problems = [];
const files = readTar(tarball);
const inPackage = new Map([...files].map(([path, file]) => [path.replace(/^package\//, ''), file]));
const manifest = JSON.parse(inPackage.get('package.json')?.text ?? '{}');
const dependencies = Object.keys({
  ...manifest.dependencies,
  ...manifest.optionalDependencies,
  ...manifest.peerDependencies,
});

// 1. Exactly the expected files.
const bins = binEntries();
const expected = new Set([
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  ...libraryEntries().flatMap((entry) => entry.files),
  ...bins.map((bin) => bin.file),
]);
for (const path of files.keys())
  if (!path.startsWith('package/')) problems.push(`outside package/: ${path}`);
for (const [path, file] of inPackage) {
  if (file.odd) problems.push(`${path}: ${file.odd}`);
  if (!expected.has(path)) problems.push(`unexpected file: ${path}`);
}
for (const path of expected) if (!inPackage.has(path)) problems.push(`missing file: ${path}`);

// 2. The commands run as they are.
for (const bin of bins) {
  const file = inPackage.get(bin.file);
  if (file === undefined) continue;
  if (!file.text.startsWith('#!/usr/bin/env node\n'))
    problems.push(`${bin.file} (bin ${bin.command}) does not start with '#!/usr/bin/env node'`);
  if ((file.mode & 0o111) === 0)
    problems.push(
      `${bin.file} (bin ${bin.command}) is not executable (mode ${file.mode.toString(8)})`,
    );
}

// 3. Imports and source maps of the built files.
const IMPORT =
  /(?:^|[\s;}])(?:import|export)\s*(?:[\w$*{}\s,]+?\s*from\s*)?['"]([^'"]+)['"]|\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
const used = new Set();
for (const [path, file] of inPackage) {
  if (!/\.(c|m)?js$|\.d\.c?ts$/.test(path)) continue;
  if (/sourceMappingURL=/.test(file.text)) problems.push(`${path} refers to a source map`);
  // TSDoc examples in the .d.ts files import whatever they show: look at the code only.
  const code = file.text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const match of code.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2];
    if (specifier.startsWith('.')) {
      const target = posix.normalize(posix.join(posix.dirname(path), specifier));
      if (!inPackage.has(target)) problems.push(`${path} imports ${specifier}, not in the tarball`);
      continue;
    }
    const name = specifier.startsWith('@')
      ? specifier.split('/').slice(0, 2).join('/')
      : specifier.split('/')[0];
    if (isBuiltin(specifier) || name === manifest.name) continue;
    if (dependencies.includes(name)) used.add(name);
    else problems.push(`${path} imports '${specifier}', which package.json does not declare`);
  }
}
for (const name of dependencies)
  if (!used.has(name)) problems.push(`dependency '${name}' is declared but nothing imports it`);

// 4. package.json points at files that are there.
for (const field of ['main', 'module', 'types'])
  if (manifest[field] !== undefined && !inPackage.has(posix.normalize(manifest[field])))
    problems.push(`package.json "${field}" names ${manifest[field]}, not in the tarball`);

if (problems.length > 0) {
  console.error(`${tarball}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(
  `${tarball}: ${inPackage.size} files as expected (${[...expected].sort().join(', ')}); ` +
    `imports: Node builtins${used.size > 0 ? `, ${[...used].join(', ')}` : ''} only`,
);
