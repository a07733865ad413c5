#!/usr/bin/env bash
# Disaggregated (2 prefill + 2 decode workers) vs unified (4 workers): equal worker count, the
# same seeded workload at the same offered rates. Parameters, stated before running: random,
# 512-token prompts, 32 output tokens (fixed lengths), 48 requests per rate, Poisson at 2, 4, 6 and
# 8 req/s, seed 0 (rate i: seed i), --ignore-eos, SLOs TTFT <= 500 ms and TPOT <= 25 ms; router policy
# cache_aware; `up`'s default --disagg-threshold 0 (every prompt goes through a prefill worker).
# Override with RATES, NUM_PROMPTS, SLO_TTFT_MS, SLO_TPOT_MS.
# Output: bench/results/pd-vs-unified/{unified,pd}/ (sweep.json, rate-*.json), compare.txt (at
#         the middle rate), throughput/goodput-vs-rate plots of both, latency CDFs at the middle rate
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/bench/scenarios/lib.sh"
OUT="$ROOT/bench/results/pd-vs-unified"
mkdir -p "$OUT"
write_env "$OUT"
RATES="${RATES:-2,4,6,8}"
MIDDLE_RATE=$(echo "$RATES" | tr ',' '\n' | sed -n "$(( ($(echo "$RATES" | tr ',' '\n' | wc -l) + 1) / 2 ))p")
SWEEP=(--workload random --num-prompts "${NUM_PROMPTS:-48}" --input-len 512 --output-len 32 --range-ratio 1
  --seed 0 --ignore-eos --rates "$RATES" --slo-ttft-ms "${SLO_TTFT_MS:-500}" --slo-tpot-ms "${SLO_TPOT_MS:-25}" --quiet)

start_cluster "$OUT/unified.cluster.log" --unified 4 --policy cache_aware "$@"
warm_up
note_load "$OUT" unified
bench sweep --base-url "$BASE_URL" "${SWEEP[@]}" --label unified-4 --out-dir "$OUT/unified"
stop_cluster

start_cluster "$OUT/pd.cluster.log" --prefill 2 --decode 2 --policy cache_aware "$@"
warm_up
note_load "$OUT" pd
bench sweep --base-url "$BASE_URL" "${SWEEP[@]}" --label pd-2p2d --out-dir "$OUT/pd"
stop_cluster

bench compare "$OUT/unified/rate-$MIDDLE_RATE.json" "$OUT/pd/rate-$MIDDLE_RATE.json" | tee "$OUT/compare.txt"
bench plot --out-dir "$OUT" "$OUT/unified/sweep.json" "$OUT/pd/sweep.json"
bench plot --out-dir "$OUT" --prefix "rate-$MIDDLE_RATE-" "$OUT/unified/rate-$MIDDLE_RATE.json" "$OUT/pd/rate-$MIDDLE_RATE.json"
