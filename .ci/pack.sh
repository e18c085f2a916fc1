#!/usr/bin/env bash
# Packs the package as a user gets it: `npm pack` in a clean clone of the current commit, where
# nothing is built beforehand, so `prepack` must build dist/. Prints the tarball's path.
#
#   tgz=$(bash .ci/pack.sh [out-dir])     # out-dir defaults to a new temporary directory
#
# Uncommitted changes are not in the tarball (a warning says so).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/asyncbackoff-pack.XXXXXX")}
mkdir -p "${out}"
work=$(mktemp -d "${TMPDIR:-/tmp}/asyncbackoff-clone.XXXXXX")
trap 'rm -rf "${work}"' EXIT

head=$(git -C "${root}" rev-parse HEAD)
if [[ -n $(git -C "${root}" status --porcelain --untracked-files=no) ]]; then
  echo "pack: uncommitted changes are not in the tarball (packing ${head:0:12})" >&2
fi
git clone --quiet --no-checkout "${root}" "${work}/clone"
git -C "${work}/clone" checkout --quiet --detach "${head}"
cd "${work}/clone"
if [[ -e dist ]]; then
  echo 'pack: a clean clone has a dist/ (is it committed?)' >&2
  exit 1
fi
# All output to stderr: stdout carries only the tarball's path.
npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2
npm pack --pack-destination "${out}" --loglevel=warn >&2
shopt -s nullglob
tarballs=("${out}"/asyncbackoff-*.tgz)
if ((${#tarballs[@]} != 1)); then
  echo "pack: expected one tarball in ${out}, found ${#tarballs[@]}" >&2
  exit 1
fi
printf '%s\n' "${tarballs[0]}"
