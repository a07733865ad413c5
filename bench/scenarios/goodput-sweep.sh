#!/usr/bin/env bash
# Goodput against offered rate: 4 unified workers (cache_aware), sharegpt-like lengths capped
# at 64 output tokens, 128 requests per rate (8, 16, 32, 64, 128, 256 req/s), seed 0, SLOs TTFT <= 250 ms
# and TPOT <= 25 ms: tight, for the small demo model on CPU, whose unloaded TPOT is ~3 ms
# (override with RATES, NUM_PROMPTS, SLO_TTFT_MS, SLO_TPOT_MS).
# Output: bench/results/goodput-sweep/{rate-*.json, sweep.json, *-vs-rate.svg, env.txt}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/bench/scenarios/lib.sh"
OUT="$ROOT/bench/results/goodput-sweep"
mkdir -p "$OUT"
write_env "$OUT"

start_cluster "$OUT/cluster.log" --unified 4 --policy cache_aware "$@"
warm_up
note_load "$OUT" sweep
bench sweep --base-url "$BASE_URL" --rates "${RATES:-8,16,32,64,128,256}" --out-dir "$OUT" --label unified-4 \
  --workload sharegpt-like --sharegpt-output-len 64 --num-prompts "${NUM_PROMPTS:-128}" --seed 0 --ignore-eos \
  --slo-ttft-ms "${SLO_TTFT_MS:-250}" --slo-tpot-ms "${SLO_TPOT_MS:-25}" --quiet
stop_cluster
