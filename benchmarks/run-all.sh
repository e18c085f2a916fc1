#!/usr/bin/env bash
# Runs the call benchmark on Node 20 (the `node` on PATH) and on Node 24 (fetched by npx).
# Usage: bash benchmarks/run-all.sh [--quick] [--batch] [--soak]
# --batch also runs the batch benchmark on both (~1 min each); --soak the soak test (~1 min each).
set -euo pipefail
cd "$(dirname "$0")/.."

soak=0
batch=0
args=()
for a in "$@"; do
  case "$a" in
    --soak) soak=1 ;;
    --batch) batch=1 ;;
    *) args+=("$a") ;;
  esac
done

echo "=== $(node --version): node --import tsx benchmarks/calls.bench.ts ${args[*]:-}"
node --import tsx benchmarks/calls.bench.ts "${args[@]}"
echo
echo "=== Node 24: npx -y node@24 --import tsx benchmarks/calls.bench.ts ${args[*]:-}"
npx -y node@24 --import tsx benchmarks/calls.bench.ts "${args[@]}"

if [ "$batch" = 1 ]; then
  echo
  echo "=== $(node --version): node --import tsx benchmarks/batch.bench.ts ${args[*]:-}"
  node --import tsx benchmarks/batch.bench.ts "${args[@]}"
  echo
  echo "=== Node 24: npx -y node@24 --import tsx benchmarks/batch.bench.ts ${args[*]:-}"
  npx -y node@24 --import tsx benchmarks/batch.bench.ts "${args[@]}"
fi

if [ "$soak" = 1 ]; then
  echo
  echo "=== $(node --version): node --expose-gc --import tsx benchmarks/soak.ts"
  node --expose-gc --import tsx benchmarks/soak.ts
  echo
  echo "=== Node 24: npx -y node@24 --expose-gc --import tsx benchmarks/soak.ts"
  npx -y node@24 --expose-gc --import tsx benchmarks/soak.ts
fi
