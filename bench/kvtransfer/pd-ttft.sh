#!/usr/bin/env bash
# TTFT added by disaggregation on CPU: the same seeded workload at the same request rate against
# `tandem up --unified 1` and `tandem up` (1 prefill + 1 decode worker), one after the other.
#   bench/kvtransfer/pd-ttft.sh [model-dir] [rate] [num-prompts]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH="$ROOT/.tools/bin:$PATH"
MODEL=${1:-$ROOT/deploy/models/tandem-demo-code}
RATE=${2:-2}
NUM=${3:-40}
OUT="$ROOT/bench/kvtransfer/results"
mkdir -p "$OUT"
run_layout() { # label port natsPort redisPort up-args...
  local label=$1 port=$2 natsPort=$3 redisPort=$4
  shift 4
  "$ROOT/services/cli/bin/tandem" up --model "$MODEL" --port "$port" --nats "nats://127.0.0.1:$natsPort" \
    --redis "redis://127.0.0.1:$redisPort" --log-level warn "$@" >"$OUT/tmp-$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do grep -q 'tandem is up' "$OUT/tmp-$label.log" && break; sleep 0.5; done
  "$ROOT/services/cli/bin/tandem" bench run --base-url "http://127.0.0.1:$port" --workload random \
    --input-len 512 --output-len 32 --range-ratio 0.5 --num-prompts "$NUM" --request-rate "$RATE" \
    --seed 7 --ignore-eos --warmup-requests 2 --label "$label" --out "$OUT/pd-ttft-$label.json"
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$OUT/tmp-$label.log"
}
run_layout unified 18400 18422 18479 --unified 1
run_layout pd 18401 18423 18480 --prefill 1 --decode 1
"$ROOT/services/cli/bin/tandem" bench compare "$OUT/pd-ttft-unified.json" "$OUT/pd-ttft-pd.json"
