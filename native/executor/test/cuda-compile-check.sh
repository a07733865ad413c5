#!/usr/bin/env bash
# Compiles every CUDA backend source (native/executor/cpp/cuda, its tools/) with nvcc for sm_90a
# and sm_80, objects only, two at a time, so a broken kernel fails CI on a machine without a GPU.
# cuBLASLt's header is not part of every nvcc install: without it gemm.cu is skipped, said so.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NVCC=${NVCC:-$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)}
if [ -z "$NVCC" ]; then
  echo "cuda-compile-check: nvcc not found; skipped"
  exit 0
fi
CUDA_INCLUDE=$(dirname "$(readlink -f "$NVCC")")/../include
OBJ=$(mktemp -d)
trap 'rm -rf "$OBJ"' EXIT
FLAGS=(-std=c++20 -O2 -DTANDEM_WITH_CUDA=1 -I"$HERE/include" -I"$HERE/cpp" --expt-relaxed-constexpr
       -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter -Werror=all-warnings)
ARCHS=(-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=sm_80)

sources=()
for f in "$HERE"/cpp/cuda/*.cu "$HERE"/cpp/cuda/*.cc "$HERE"/cpp/cuda/tools/*.cc; do
  [ -e "$f" ] || continue
  if grep -q '<cublasLt.h>' "$f" && [ ! -f "$CUDA_INCLUDE/cublasLt.h" ]; then
    echo "cuda-compile-check: $(basename "$f") skipped (no cublasLt.h next to $NVCC)"
    continue
  fi
  sources+=("$f")
done

export NVCC OBJ
export FLAGS_STR="${FLAGS[*]}" ARCHS_STR="${ARCHS[*]}"
started=$(date +%s)
failed=0
printf '%s\n' "${sources[@]}" | xargs -P 2 -I{} bash -c '
  f={}; archs=""; [[ $f == *.cu ]] && archs="$ARCHS_STR"
  if ! out=$("$NVCC" $FLAGS_STR $archs -c "$f" -o "$OBJ/$(basename "$f").o" 2>&1); then
    echo "FAIL $(basename "$f")"; echo "$out"; exit 255
  fi
  echo "ok   $(basename "$f")"' || failed=1
echo "cuda-compile-check: ${#sources[@]} sources, sm_90a + sm_80, $(( $(date +%s) - started )) s"
exit $failed
