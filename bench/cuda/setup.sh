#!/usr/bin/env bash
# Makes a bare GPU host (no Node, NATS, Redis or network) able to run tandem's TypeScript side:
# Node, the runtime node_modules and nats-server / redis-server from .carry/ (bench/cuda/carry.sh),
# then the native addons built there: the executor with CUDA (gpu_run.sh nodebuild) and kvtransfer
# (the CPU build and the CUDA build). Source it: it exports PATH and LD_LIBRARY_PATH.
#   OUT=$OUT source bench/cuda/setup.sh
#   (SETUP_BUILD=0: only unpack, for work that needs no addon built there, e.g. bench/router/gpu_host.sh)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-/tmp/tandem-gpu-out}
mkdir -p "$OUT" /tmp/tandem-bin /tmp/tandem-servers "$ROOT/.tools/bin"
(
  cd "$ROOT" || exit 1
  [ -x /tmp/tandem-bin/node ] || { xz -dc .carry/node.xz >/tmp/tandem-bin/node && chmod +x /tmp/tandem-bin/node; }
  ln -sf /tmp/tandem-bin/node .tools/bin/node
  [ -d node_modules/.pnpm ] || tar -xJf .carry/runtime.tar.xz
  [ -x /tmp/tandem-servers/bin/nats-server ] || tar -xJf .carry/servers.tar.xz -C /tmp/tandem-servers
)
export PATH="/tmp/tandem-bin:/tmp/tandem-servers/bin:$PATH"
export LD_LIBRARY_PATH="/tmp/tandem-servers/lib:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
[ "${SETUP_BUILD:-1}" = 0 ] || (
  cd "$ROOT" || exit 1
  echo "== setup: build the executor (CUDA) and kvtransfer (CPU, CUDA) addons ($(date -u +%H:%M:%S))"
  OUT=$OUT bench/cuda/gpu_run.sh nodebuild >"$OUT/build_executor.txt" 2>&1 || tail -20 "$OUT/build_executor.txt"
  kvt() { # build-dir output-dir extra-flags...
    local build=$1 out=$2
    shift 2
    cmake -S native/kvtransfer -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_JS_INC="$ROOT/.carry/node-api-headers/include" \
      -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$ROOT/native/kvtransfer/$out/Release" "$@" >>"$OUT/build_kvtransfer.txt" 2>&1 &&
      cmake --build "$build" -j "$(nproc)" >>"$OUT/build_kvtransfer.txt" 2>&1
  }
  kvt /tmp/kvt-cpu build -DKVT_WITH_CUDA=OFF &
  kvt /tmp/kvt-cuda build-cuda -DKVT_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90a}" &
  wait
  ls native/executor/build-cuda/Release/*.node native/kvtransfer/build/Release/*.node \
    native/kvtransfer/build-cuda/Release/*.node 2>&1 | sed 's/^/built: /'
)
