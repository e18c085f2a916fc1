#!/usr/bin/env bash
# Consumer test: installs the tarball `npm pack` made into a fresh project and uses it the way
# users will: ESM JavaScript, CommonJS, TypeScript with TC39 decorators, TypeScript with legacy
# decorators compiled to CommonJS (NestJS style), and the `asyncbackoff` command. Any failed check
# exits non-zero.
#
#   bash test/consumer/run.sh [package.tgz]   # without one, packs a clean clone (.ci/pack.sh)
#   KEEP_CONSUMER=1 ...                       # keeps the temporary project
#   EXTRA_NODES="/path/to/node ..." ...       # also runs the JavaScript checks on these binaries
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "${here}/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/asyncbackoff-consumer.XXXXXX")
cleanup() {
  if [[ -n ${KEEP_CONSUMER:-} ]]; then
    echo "consumer project kept in ${work}"
  else
    rm -rf "${work}"
  fi
}
trap cleanup EXIT

step() { printf '\n--- consumer: %s\n' "$*"; }

if [[ $# -gt 0 ]]; then
  tgz=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
  step 'npm pack in a clean clone'
  tgz=$(bash "${root}/.ci/pack.sh" "${work}/pack")
fi
echo "${tgz}"

step 'install the tarball into a fresh project'
app=${work}/app
mkdir -p "${app}"
cp -R "${here}/esm.mjs" "${here}/cjs.cjs" "${here}/names.cjs" "${here}/postgres.mjs" "${here}/redis.mjs" "${here}/tc39" "${here}/legacy" "${app}/"
printf '{ "name": "asyncbackoff-consumer", "private": true, "type": "module" }\n' >"${app}/package.json"
(cd "${app}" && npm install --no-audit --no-fund --prefer-offline --loglevel=error \
  "${tgz}" typescript@5.9.3 @types/node@20)

cd "${app}"
step "ESM import ($(node --version))"
node esm.mjs

step 'CommonJS require'
node cjs.cjs

step 'asyncbackoff/postgres (ESM and CommonJS)'
node postgres.mjs

step 'asyncbackoff/redis (ESM and CommonJS)'
node redis.mjs

step 'TypeScript, TC39 decorators (strict, skipLibCheck false)'
./node_modules/.bin/tsc -p tc39
node tc39/dist/main.js

step 'TypeScript, legacy decorators (experimentalDecorators, emitDecoratorMetadata, CommonJS)'
./node_modules/.bin/tsc -p legacy
node legacy/dist/main.js

step 'the asyncbackoff command, installed from the tarball'
[[ $(./node_modules/.bin/asyncbackoff --version) == $(node -p 'require("asyncbackoff/package.json").version') ]]
# Fails twice, then succeeds: three attempts, exit status 0.
./node_modules/.bin/asyncbackoff -n 3 -p 10ms --json node -e \
  'const f = "cli-count"; const fs = require("fs"); const n = fs.existsSync(f) ? +fs.readFileSync(f, "utf8") + 1 : 1;
   fs.writeFileSync(f, String(n)); process.exit(n < 3 ? 1 : 0)' >cli.json
node -e 'const s = JSON.parse(require("fs").readFileSync("cli.json", "utf8")); if (!s.ok || s.attempts !== 3) throw new Error(JSON.stringify(s))'
echo 'cli: ok'

for extra in ${EXTRA_NODES:-}; do
  step "ESM, CommonJS and the command on $("${extra}" --version)"
  "${extra}" esm.mjs
  "${extra}" cjs.cjs
  "${extra}" node_modules/asyncbackoff/dist/cli.js -n 2 -p 0 -- "${extra}" -e 'process.exit(0)'
done

step 'all consumer checks passed'
