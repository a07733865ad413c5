#!/usr/bin/env bash
# kvtransfer on a GPU host, in one call (no Node, no network needed):
#   bench/kvtransfer/gpu_run.sh [--quick]
# builds the CUDA variant's core, unit tests and lab (native/kvtransfer, -DKVT_WITH_CUDA=ON) and
# runs kvt_gpu_lab: (a) correctness between two processes for every transport this host can run
# (one GPU: cuda_ipc and tcp with staging; two GPUs: also nccl, and cuda_ipc / tcp across GPUs),
# pages compared byte for byte, a sender killed and a receiver killed mid-transfer; (b) bandwidth
# at 1..256 MiB per transfer against cudaMemcpy (and cudaMemcpyPeer with two GPUs) in the same
# run, and the copy strategies (one kernel, cudaMemcpyBatchAsync, one cudaMemcpyAsync per page).
# Writes the table to stdout and $OUT/kvtransfer_gpu.json, logs to $OUT (default /tmp/kvt-gpu-out).
# About 1-2 minutes of GPU time on one GPU after the build (~1 minute on 16 cores).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/kvt-gpu-out}
BUILD=${BUILD:-/tmp/kvt-gpu-build}
mkdir -p "$OUT"
log() { echo "== $* ($(date -u +%H:%M:%S))"; }

log device
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv | tee "$OUT/device.txt"
nvcc --version | tail -2 | tee -a "$OUT/device.txt"
gpus=$(nvidia-smi -L | wc -l)
[ "$gpus" -ge 2 ] && nvidia-smi topo -m | tee -a "$OUT/device.txt"
ls /sys/class/infiniband 2>/dev/null | sed 's/^/rdma device: /' | tee -a "$OUT/device.txt"
[ -d /sys/module/nvidia_peermem ] && echo "nvidia-peermem loaded" | tee -a "$OUT/device.txt"

# NCCL: the CUDA install's, else the Python wheels' (torch brings nvidia-nccl).
if [ -z "${TANDEM_NCCL_LIBRARY:-}" ]; then
  lib=$(ldconfig -p 2>/dev/null | grep -o '/[^ ]*libnccl\.so\.2$' | head -1)
  if [ -z "$lib" ]; then
    site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null)
    [ -n "$site" ] && lib=$(find "$site/nvidia" -name 'libnccl.so.2' 2>/dev/null | head -1)
  fi
  [ -n "$lib" ] && export TANDEM_NCCL_LIBRARY=$lib
fi
echo "NCCL: ${TANDEM_NCCL_LIBRARY:-not found}" | tee -a "$OUT/device.txt"
export NCCL_NVLS_ENABLE=0  # NVLink multicast stays off on shared hosts

log build
if ! { cmake -S native/kvtransfer -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKVT_WITH_CUDA=ON \
         -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90a}" >"$OUT/cmake.txt" 2>&1 &&
       cmake --build "$BUILD" -j "$(nproc)" --target kvt_unit kvt_gpu_lab >"$OUT/build.txt" 2>&1; }; then
  echo "build failed"
  tail -40 "$OUT/cmake.txt" "$OUT/build.txt"
  exit 1
fi
grep -E "kvtransfer: CUDA" "$OUT/cmake.txt"

log "unit tests (no GPU needed)"
"$BUILD/kvt_unit" >"$OUT/unit.txt" 2>&1
status=$?
grep -E "^(not ok|probe|all passed|FAILED)" "$OUT/unit.txt"

log "GPU lab"
"$BUILD/kvt_gpu_lab" run --out "$OUT" "$@" 2>&1 | tee "$OUT/lab.txt"
lab=${PIPESTATUS[0]}
[ "$lab" -eq 0 ] || status=1
log "done status=$status"
exit $status
