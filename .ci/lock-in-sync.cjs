// Exits 1 when package.json's dependency specs differ from package-lock.json's root entry: the
// check `npm ci` makes, for when .ci/run has to fall back to `npm install --no-save`.
const fs = require('node:fs');

const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8')).packages[''];
const bad = [];
for (const field of [
  'dependencies',
  'devDependencies',
  'optionalDependencies',
  'peerDependencies',
]) {
  const want = pkg[field] ?? {};
  const locked = lock[field] ?? {};
  for (const name of new Set([...Object.keys(want), ...Object.keys(locked)]))
    if (want[name] !== locked[name])
      bad.push(`${field}.${name}: package.json ${want[name]}, package-lock.json ${locked[name]}`);
}
if (bad.length > 0) {
  console.error(`package-lock.json is out of sync with package.json:\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
