// Adds lock entries for other platforms' optional binaries (@biomejs/cli-darwin-arm64,
// @rollup/rollup-win32-x64-msvc, ...). The registry this project's machines reach does not serve
// them, so `npm install` leaves them out of package-lock.json, and `npm ci` then refuses the lock
// ("Missing: <name>@ from lock file"). With an entry that names its os/cpu/libc, npm skips the
// package on other platforms without fetching it. Run after `npm install` changes the lock:
//   node .ci/complete-lock.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;
const OSES = [
  'aix',
  'android',
  'darwin',
  'freebsd',
  'linux',
  'netbsd',
  'openbsd',
  'openharmony',
  'sunos',
  'win32',
];

/** os, cpu and libc from a platform package's name, e.g. rollup-linux-arm-musleabihf. */
function platformOf(name) {
  const parts = name
    .split('/')
    .pop()
    .split('-')
    .filter((part) => part !== 'cli' && part !== 'rollup');
  if (!OSES.includes(parts[0]) || parts.length < 2) return undefined;
  const meta = { os: [parts[0]], cpu: [parts[1]] };
  const abi = parts.slice(2).join('-');
  if (abi.startsWith('musl')) meta.libc = ['musl'];
  else if (abi.startsWith('gnu')) meta.libc = ['glibc'];
  return meta;
}

let added = 0;
for (const [key, meta] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const at = `${key.slice(0, key.lastIndexOf('node_modules/'))}node_modules/${name}`;
    const platform = platformOf(name);
    if (packages[at] || !platform || !/^\d+\.\d+\.\d+$/.test(version)) continue;
    packages[at] = { version, dev: meta.dev ?? false, optional: true, ...platform };
    if (!meta.dev) delete packages[at].dev;
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) =>
    a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0,
  ),
);
writeFileSync(file, `${JSON.stringify({ ...lock, packages: sorted }, null, 2)}\n`);
console.log(`complete-lock: added ${added} platform entr${added === 1 ? 'y' : 'ies'}`);
