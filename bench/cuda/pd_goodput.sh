#!/usr/bin/env bash
# Issue 13's goodput comparison on a two-GPU host: the 8B shape served disaggregated
# (`tandem up --prefill 1 --decode 1`: the decode worker on cuda:0, the prefill worker on cuda:1,
# KV over cuda_ipc between the GPUs) and co-located (`--unified 2`: one unified worker per GPU)
# under the same sharegpt-like load at rising request rates, with TTFT and TPOT SLOs; goodput =
# requests per second that met both. Prints the best goodput of each layout and their ratio
# (target: PD >= 1.5x). Needs two GPUs: on one it says so and stops.
#   there: OUT=$OUT bench/cuda/pd_goodput.sh [8b|1b]    (device tool, a two-GPU kind, carry [".carry"])
#   knobs: RATES (default 4,8,16,32,64), NUM_PROMPTS (300), SLO_TTFT_MS (1000), SLO_TPOT_MS (50)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
RESULT_DIR=${OUT:-/tmp/tandem-pd-goodput}
OUT=/tmp/tandem-pd-goodput-logs
mkdir -p "$OUT" "$RESULT_DIR"
pack() { tar -czf "$RESULT_DIR/pd_goodput.tgz" -C "$OUT" . 2>/dev/null; }
shape=${1:-8b}
log() { echo "== $* ($(date -u +%H:%M:%S))"; }
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "$gpus" -lt 2 ]; then
  echo "pd_goodput.sh: needs two GPUs, this host has $gpus" | tee "$OUT/skipped.txt"
  pack
  exit 2
fi
log setup
OUT=$OUT source bench/cuda/setup.sh
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv | tee "$OUT/device.txt"
nvidia-smi topo -m >>"$OUT/device.txt" 2>&1
echo "commit ${TANDEM_COMMIT:-unknown}" | tee -a "$OUT/device.txt"
dir=/tmp/llama-$shape-neox
[ -f "$dir/config.json" ] || {
  python3 bench/cuda/make_checkpoint.py --shape "$shape" --init neox --out "$dir" 2>&1 | tail -1
  python3 bench/cuda/make_tokenizer.py --out "$dir"
}

layout() { # label up-args...
  local label=$1
  shift
  log "up $label"
  services/cli/bin/tandem up --device cuda --model "$dir" --port 8000 --log-level warn \
    --worker-arg=--max-running=512 --worker-arg=--max-batch-tokens=8192 --router-arg=--max-concurrent=1024 \
    "$@" >"$OUT/up_$label.log" 2>&1 &
  local up=$!
  for _ in $(seq 600); do
    grep -q "tandem is up" "$OUT/up_$label.log" && break
    kill -0 $up 2>/dev/null || break
    sleep 1
  done
  grep "tandem is up" "$OUT/up_$label.log" || { tail -30 "$OUT/up_$label.log"; return 1; }
  services/cli/bin/tandem bench sweep --base-url http://127.0.0.1:8000 --rates "${RATES:-4,8,16,32,64}" \
    --out-dir "$OUT/$label" --label "$label" --workload sharegpt-like --num-prompts "${NUM_PROMPTS:-300}" \
    --seed 0 --ignore-eos --vocab-size 128000 --slo-ttft-ms "${SLO_TTFT_MS:-1000}" \
    --slo-tpot-ms "${SLO_TPOT_MS:-50}" --quiet >"$OUT/$label.txt" 2>&1
  grep -E 'over TCP|kv sender connected' "$OUT/up_$label.log" | tail -2
  kill -INT $up
  wait $up
  pack
}
layout pd --prefill 1 --decode 1 --worker-arg=--log-level=info
layout unified --unified 2
python3 - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, sys, os
best = {}
for label in ("pd", "unified"):
    path = os.path.join(sys.argv[1], label, "sweep.json")
    if not os.path.exists(path):
        print(f"{label}: no sweep.json"); continue
    points = json.load(open(path))["points"]
    for p in points:
        g = p["summary"]["goodput"]
        print(f"{label:8s} rate {p['requestRatePerS']:>6}: goodput {g['requestsPerS']:.2f} req/s ({100 * g['fractionGood']:.0f} % good)")
    best[label] = max(p["summary"]["goodput"]["requestsPerS"] for p in points)
if len(best) == 2 and best["unified"] > 0:
    print(f"best goodput: PD {best['pd']:.2f} req/s, co-located {best['unified']:.2f} req/s: {best['pd'] / best['unified']:.2f}x (target 1.5x)")
PY
pack
