#!/usr/bin/env bash
# Consumer test: packs the package (dist/ must be built) and uses the tarball from a fresh project
# the way users will: ESM JavaScript, CommonJS, TypeScript with TC39 decorators, and TypeScript
# with legacy decorators compiled to CommonJS (NestJS style). Any failed check exits non-zero.
#
#   npm run build && bash test/consumer/run.sh      # KEEP_CONSUMER=1 keeps the temp project
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

if [[ ! -f ${root}/dist/index.js || ! -f ${root}/dist/index.cjs ]]; then
  echo "dist/ is not built: run 'npm run build' first" >&2
  exit 1
fi

step 'npm pack'
tgz=$(cd "${root}" && npm pack --json --pack-destination "${work}" 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].filename))')
echo "${tgz}"
# Only the built files, the README, the license and package.json are published.
unexpected=$(tar -tzf "${work}/${tgz}" | grep -Ev '^package/(dist/|README\.md$|LICENSE$|package\.json$)' || true)
if [[ -n ${unexpected} ]]; then
  printf 'unexpected files in the tarball:\n%s\n' "${unexpected}" >&2
  exit 1
fi

step 'install the tarball into a fresh project'
app=${work}/app
mkdir -p "${app}"
cp -R "${here}/esm.mjs" "${here}/cjs.cjs" "${here}/postgres.mjs" "${here}/redis.mjs" "${here}/tc39" "${here}/legacy" "${app}/"
printf '{ "name": "asyncbackoff-consumer", "private": true, "type": "module" }\n' >"${app}/package.json"
(cd "${app}" && npm install --no-audit --no-fund --prefer-offline --loglevel=error \
  "${work}/${tgz}" typescript@5.9.3 @types/node@20)

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

step 'all consumer checks passed'
