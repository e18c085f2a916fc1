#!/usr/bin/env bash
# Runs the call benchmark on Node 20 (the `node` on PATH) and on Node 24 (fetched by npx).
# Usage: bash benchmarks/run-all.sh [--quick]
# Add --soak to also run the soak test on both (slow: ~1 min each).
set -euo pipefail
cd "$(dirname "$0")/.."

soak=0
args=()
for a in "$@"; do
  if [ "$a" = "--soak" ]; then soak=1; else args+=("$a"); fi
done

echo "=== $(node --version): node --import tsx benchmarks/calls.bench.ts ${args[*]:-}"
node --import tsx benchmarks/calls.bench.ts "${args[@]}"
echo
echo "=== Node 24: npx -y node@24 --import tsx benchmarks/calls.bench.ts ${args[*]:-}"
npx -y node@24 --import tsx benchmarks/calls.bench.ts "${args[@]}"

if [ "$soak" = 1 ]; then
  echo
  echo "=== $(node --version): node --expose-gc --import tsx benchmarks/soak.ts"
  node --expose-gc --import tsx benchmarks/soak.ts
  echo
  echo "=== Node 24: npx -y node@24 --expose-gc --import tsx benchmarks/soak.ts"
  npx -y node@24 --expose-gc --import tsx benchmarks/soak.ts
fi
