#!/usr/bin/env bash
# Compiles kvtransfer's CUDA sources (cpp/cuda/*.cu) with nvcc for sm_90a and sm_80, objects only,
# so a broken kernel or a CUDA API change fails CI on a machine without a GPU. The rest of the
# CUDA variant is plain C++ that the CPU build already compiles. (bench/kvtransfer/gpu_run.sh
# builds and runs the whole CUDA variant on a GPU host.)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NVCC=${NVCC:-$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)}
if [ -z "$NVCC" ]; then
  echo "kvtransfer cuda-compile-check: nvcc not found; skipped"
  exit 0
fi
OBJ=$(mktemp -d)
trap 'rm -rf "$OBJ"' EXIT
started=$(date +%s)
count=0
for f in "$HERE"/cpp/cuda/*.cu; do
  [ -e "$f" ] || continue
  if ! out=$("$NVCC" -std=c++17 -O2 -I"$HERE/cpp/core" -Xcompiler=-Wall,-Wextra -Werror=all-warnings \
      -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=sm_80 \
      -c "$f" -o "$OBJ/$(basename "$f").o" 2>&1); then
    echo "FAIL $(basename "$f")"
    echo "$out"
    exit 1
  fi
  echo "ok   $(basename "$f")"
  count=$((count + 1))
done
echo "kvtransfer cuda-compile-check: $count sources, sm_90a + sm_80, $(( $(date +%s) - started )) s"
