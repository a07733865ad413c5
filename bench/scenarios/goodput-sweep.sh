#!/usr/bin/env bash
# Goodput against offered rate: 4 unified workers (cache_aware), sharegpt-like lengths capped
# at 64 output tokens, 32 requests per rate, seed 0, SLOs TTFT <= SLO_TTFT_MS and TPOT <= SLO_TPOT_MS.
# Output: bench/results/goodput-sweep/{rate-*.json, sweep.json, *-vs-rate.svg, env.txt}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/bench/scenarios/lib.sh"
OUT="$ROOT/bench/results/goodput-sweep"
mkdir -p "$OUT"
write_env "$OUT"

start_cluster "$OUT/cluster.log" --unified 4 --policy cache_aware "$@"
warm_up
bench sweep --base-url "$BASE_URL" --rates "${RATES:-0.5,1,2,4,8}" --out-dir "$OUT" --label unified-4 \
  --workload sharegpt-like --sharegpt-output-len 64 --num-prompts "${NUM_PROMPTS:-32}" --seed 0 --ignore-eos \
  --slo-ttft-ms "${SLO_TTFT_MS:-2000}" --slo-tpot-ms "${SLO_TPOT_MS:-200}" --quiet
stop_cluster
