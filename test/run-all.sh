#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, type-check, lint, then every test file under
# node's own test runner (its closing summary is what CI reads).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
./bootstrap.sh
export PATH="$ROOT/.tools/bin:$PATH"

echo "== type-check"
pnpm -s typecheck
echo "== lint"
pnpm -s lint
if [ -x native/executor/test/cuda-compile-check.sh ] && command -v nvcc >/dev/null 2>&1; then
  echo "== CUDA sources compile"
  native/executor/test/cuda-compile-check.sh
fi
if [ -x native/kvtransfer/test/cuda-compile-check.sh ] && command -v nvcc >/dev/null 2>&1; then
  echo "== kvtransfer CUDA sources compile"
  native/kvtransfer/test/cuda-compile-check.sh
fi

echo "== tests"
mapfile -t files < <(find proto services native test bench -path '*/node_modules' -prune -o -path '*/build' -prune \
  -o -name '*.test.ts' -print | sort)
# One file at a time: several tests measure time (deadlines, the bench against its server) and
# share two cores with the worker processes they start.
exec node --disable-warning=ExperimentalWarning --test --test-concurrency=1 --test-timeout=600000 \
  --test-reporter=spec "${files[@]}"
