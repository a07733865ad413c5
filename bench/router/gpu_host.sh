#!/usr/bin/env bash
# The streaming bench (stream.ts) on a bigger host (the GPU host's 16 cores; no GPU is used: the
# workers are line-rate stand-ins): one router process, then N, with the clients spread over
# their own processes, so the router is not starved of cores as on the 2-core VM.
#   there: OUT=$OUT bench/router/gpu_host.sh [N=4]   (device tool, carry [".carry"], from bench/cuda/carry.sh; never run yet)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/tandem-router-gpu-host}
mkdir -p "$OUT"
SETUP_BUILD=0 OUT=$OUT source bench/cuda/setup.sh
n=${1:-4}
nproc | sed 's/^/cores: /' | tee "$OUT/host.txt"
for processes in 1 "$n"; do
  node --disable-warning=ExperimentalWarning bench/router/stream.ts --clients 1000 --duration 15 \
    --router-processes "$processes" --client-processes 4 --label "gpu-host-p$processes" \
    --out "$OUT/stream-gpu-host-p$processes.json" >"$OUT/stream-p$processes.txt" 2>&1
  python3 - "$OUT/stream-gpu-host-p$processes.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["viaRouter"]
print(d["label"], json.dumps({k: r[k] for k in r if not isinstance(r[k], (dict, list))}), "added ITL", d["addedItl"], "cpu", d["cpuPercent"], "us/token", d["routerCpuUsPerToken"])
PY
done
