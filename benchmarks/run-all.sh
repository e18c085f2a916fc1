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

# Runs node with these arguments on Node 20 (the `node` on PATH), then on Node 24.
both() {
  echo "=== $(node --version): node $*"
  node "$@"
  echo
  echo "=== Node 24: npx -y node@24 $*"
  npx -y node@24 "$@"
}

both --import tsx benchmarks/calls.bench.ts "${args[@]}"
if [ "$batch" = 1 ]; then
  echo
  both --import tsx benchmarks/batch.bench.ts "${args[@]}"
fi
if [ "$soak" = 1 ]; then
  echo
  both --expose-gc --import tsx benchmarks/soak.ts
fi
