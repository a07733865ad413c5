#!/usr/bin/env bash
# Everything the CUDA backend is checked and timed with on a GPU host (no Node, no network):
#   bench/cuda/gpu_run.sh [build] [attention] [golden] [hf8b-neox] [hf8b] [bench1b] [bench8b]   (default: all)
#   also: small128, ropeprobe, profile; nodebuild + node (the Node addon with CUDA and the
#   executor's TypeScript tests on cuda:0; needs .carry/ from bench/cuda/carry.sh)
# Logs go to $OUT (or /tmp/tandem-gpu-out); the build to $BUILD (default /tmp/tandem-cuda-lab).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/tandem-gpu-out}
BUILD=${BUILD:-/tmp/tandem-cuda-lab}
LAB=$BUILD/tandem-cuda-lab
mkdir -p "$OUT"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build attention golden hf8b-neox hf8b bench1b bench8b)
status=0
want() { [[ " ${stages[*]} " == *" $1 "* ]]; }
log() { echo "== $* ($(date -u +%H:%M:%S))"; }

# cuBLAS from the CUDA install, or else from the Python wheels (then CMake is pointed at them).
extra=()
if ! ls /usr/local/cuda/lib64/libcublasLt.so* >/dev/null 2>&1; then
  wheel=$(python3 -c 'import nvidia.cu13, os; print(os.path.dirname(nvidia.cu13.__file__))' 2>/dev/null ||
          python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__))')
  lib=$(find "$wheel" -name 'libcublasLt.so*' | head -1)
  extra+=(-DCUDA_cublasLt_LIBRARY="$lib" -DCMAKE_CXX_FLAGS="-I$wheel/include" -DCMAKE_CUDA_FLAGS="-I$wheel/include")
  export LD_LIBRARY_PATH=$(dirname "$lib"):${LD_LIBRARY_PATH:-}
fi

if want build; then
  log build
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/device.txt"
  nvcc --version | tail -2 | tee -a "$OUT/device.txt"
  cmake -S native/executor/cpp/cuda/tools -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90a}" "${extra[@]}" >"$BUILD.cmake.txt" 2>&1 &&
    cmake --build "$BUILD" -j "$(nproc)" 2>&1 | tee "$OUT/build.txt" | grep -E "error|warning|Built target" || status=1
  [ -x "$LAB" ] || { echo "build failed"; tail -40 "$BUILD.cmake.txt" "$OUT/build.txt"; exit 1; }
fi

if want attention; then
  log "attention kernels vs a float64 reference"
  "$LAB" attention 2>&1 | tee "$OUT/attention.txt" || status=1
fi

if want golden; then
  log golden
  for fx in test/fixtures/tiny-*/ deploy/models/tandem-demo-code/; do
    for dt in f32 bf16 f16; do "$LAB" golden "$fx" "$dt" 16 || status=1; done
  done 2>&1 | tee "$OUT/golden.txt" | grep '^{'
  for ps in 1 64; do "$LAB" golden test/fixtures/tiny-qwen3/ f32 $ps | grep '^{' || status=1; done | tee -a "$OUT/golden.txt"
  for fx in test/fixtures/tiny-qwen3/ test/fixtures/tiny-llama-bf16/; do
    "$LAB" sampling "$fx" f32 || status=1
  done 2>&1 | tee "$OUT/sampling.txt"
fi

if want ropeprobe; then
  log "rope probe: does transformers round inv_freq when loading a bf16 checkpoint?"
  python3 - <<'PY' 2>&1 | grep -v Warning
import torch
from transformers import AutoModelForCausalLM
for dtype in [None, torch.float32, torch.bfloat16]:
    kwargs = {} if dtype is None else {"dtype": dtype}
    m = AutoModelForCausalLM.from_pretrained("test/fixtures/tiny-llama-bf16", **kwargs)
    inv = m.model.rotary_emb.inv_freq.float()
    up = m.float().model.rotary_emb.inv_freq.float()
    r = lambda t: bool(torch.equal(t, t.to(torch.bfloat16).float()))
    print(f"from_pretrained(dtype={dtype}): buffer {m.model.rotary_emb.inv_freq.dtype}, rounded={r(inv)}, after .float() rounded={r(up)}")
    m2 = AutoModelForCausalLM.from_pretrained("test/fixtures/tiny-llama-bf16", **kwargs).to(torch.bfloat16)
    print(f"  then .to(bfloat16): rounded={r(m2.model.rotary_emb.inv_freq.float())}")
PY
fi

if want hf8b; then
  log make 8b
  [ -f /tmp/llama-8b/config.json ] || python3 bench/cuda/make_checkpoint.py --shape 8b --out /tmp/llama-8b 2>&1 | tail -3
  log hf compare 8b
  PYTHONUNBUFFERED=1 python3 bench/cuda/hf_compare.py --model /tmp/llama-8b --variants ${ROPE_VARIANTS:-auto} --lab "$LAB" 2>&1 | tee "$OUT/hf_compare_8b.txt" || status=1
fi

if want hf8b-neox; then
  # The gate's checkpoint: GPT-NeoX init, on which transformers' own bf16 agrees with its float32.
  log make 8b, neox init
  [ -f /tmp/llama-8b-neox/config.json ] ||
    python3 bench/cuda/make_checkpoint.py --shape 8b --init neox --out /tmp/llama-8b-neox 2>&1 | tail -1
  log hf compare 8b, neox init
  PYTHONUNBUFFERED=1 python3 bench/cuda/hf_compare.py --model /tmp/llama-8b-neox --refs "${HF_REFS:-bf16}" \
    --lab "$LAB" --work /tmp/hfc-neox 2>&1 | tee "$OUT/hf_compare_8b_neox.txt" || status=1
fi

if want small128; then
  log small128 f32 and bf16
  [ -f /tmp/llama-small128/config.json ] || python3 bench/cuda/make_checkpoint.py --shape small128 --dtype float32 --out /tmp/llama-small128 2>&1 | tail -1
  [ -f /tmp/llama-small128-bf16/config.json ] || python3 bench/cuda/make_checkpoint.py --shape small128 --out /tmp/llama-small128-bf16 2>&1 | tail -1
  PYTHONUNBUFFERED=1 python3 bench/cuda/hf_compare.py --model /tmp/llama-small128 --dtype f32 --lab "$LAB" --work /tmp/hfc-s32 2>&1 | tee "$OUT/hf_compare_small128.txt" || status=1
  PYTHONUNBUFFERED=1 python3 bench/cuda/hf_compare.py --model /tmp/llama-small128-bf16 --dtype bf16 --variants ${ROPE_VARIANTS:-auto} --lab "$LAB" --work /tmp/hfc-s16 2>&1 | tee -a "$OUT/hf_compare_small128.txt" || status=1
fi

ADDON_BUILD=${ADDON_BUILD:-/tmp/tandem-addon-cuda}
if want nodebuild; then
  log "node addon with CUDA"
  xz -dc .carry/node.xz >/tmp/node && chmod +x /tmp/node && /tmp/node --version
  mkdir -p native/executor/node_modules && cp -r .carry/node-addon-api .carry/node-api-headers native/executor/node_modules/
  # What cmake-js would pass: Node's headers from node-api-headers (no download).
  cmake -S native/executor -B "$ADDON_BUILD" -DCMAKE_BUILD_TYPE=Release -DTANDEM_WITH_CUDA=ON \
    -DCMAKE_JS_INC="$ROOT/native/executor/node_modules/node-api-headers/include" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$ROOT/native/executor/build-cuda/Release" \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90a}" "${extra[@]}" >"$OUT/addon_build.txt" 2>&1 &&
    cmake --build "$ADDON_BUILD" -j "$(nproc)" >>"$OUT/addon_build.txt" 2>&1 || { status=1; tail -30 "$OUT/addon_build.txt"; }
  ls -la native/executor/build-cuda/Release/
fi

if want node; then
  log "node: the executor's TypeScript tests (golden, batching, sampling, layer hook) on cuda:0, float32"
  TANDEM_TEST_DEVICE=cuda:0 /tmp/node --test --test-concurrency=1 native/executor/test/golden.test.ts \
    native/executor/test/batching.test.ts native/executor/test/sampling.test.ts \
    native/executor/test/layer-hook.test.ts >"$OUT/node_tests.txt" 2>&1 || status=1
  grep -E "^(not ok|# (tests|pass|fail))|^ℹ (tests|pass|fail)" "$OUT/node_tests.txt"
fi

if want bench1b; then
  log bench 1b
  [ -f /tmp/llama-1b/config.json ] || python3 bench/cuda/make_checkpoint.py --shape 1b --out /tmp/llama-1b 2>&1 | tail -3
  "$LAB" bench /tmp/llama-1b llama-1b bf16 2>&1 | tee "$OUT/bench_1b.txt" || status=1
fi

if want bench8b; then
  # Timing does not depend on the weights: BENCH8B_MODEL=/tmp/llama-8b-neox reuses the gate's checkpoint.
  M8=${BENCH8B_MODEL:-/tmp/llama-8b}
  log bench 8b "$M8"
  [ -f "$M8/config.json" ] || python3 bench/cuda/make_checkpoint.py --shape 8b --out "$M8" 2>&1 | tail -3
  "$LAB" bench "$M8" llama-8b bf16 2>&1 | tee "$OUT/bench_8b.txt" || status=1
fi
if want profile; then
  log profile 1b
  [ -f /tmp/llama-1b/config.json ] || python3 bench/cuda/make_checkpoint.py --shape 1b --out /tmp/llama-1b 2>&1 | tail -3
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1 || true)
  for spec in "decode 1" "decode 64" "prefill 8192"; do
    echo "-- profile $spec" | tee -a "$OUT/profile_1b.txt"
    if [ -n "$NCU" ]; then
      "$NCU" --profile-from-start off --metrics gpu__time_duration.sum --print-summary per-kernel \
        "$LAB" profile /tmp/llama-1b $spec bf16 >>"$OUT/profile_1b.txt" 2>&1 || status=1
    fi
    "$LAB" profile /tmp/llama-1b $spec bf16 | tee -a "$OUT/profile_1b.txt"
  done
fi
log done status=$status
exit $status
