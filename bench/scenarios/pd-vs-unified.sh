#!/usr/bin/env bash
# Disaggregated (2 prefill + 2 decode) vs unified (4 workers): equal worker count, same seeded
# workload: random, 512-token prompts, 32 output tokens, 48 requests, Poisson at RATE req/s.
# Output: bench/results/pd-vs-unified/{unified.json, pd.json, compare.txt, *-cdf.svg, env.txt}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/bench/scenarios/lib.sh"
OUT="$ROOT/bench/results/pd-vs-unified"
mkdir -p "$OUT"
write_env "$OUT"
RATE="${RATE:-2}"
WORKLOAD=(--workload random --num-prompts 48 --input-len 512 --output-len 32 --range-ratio 1 --seed 0 --ignore-eos
  --request-rate "$RATE" --slo-ttft-ms "${SLO_TTFT_MS:-2000}" --slo-tpot-ms "${SLO_TPOT_MS:-200}")

start_cluster "$OUT/unified.cluster.log" --unified 4 "$@"
warm_up
note_load "$OUT" unified
bench run --base-url "$BASE_URL" "${WORKLOAD[@]}" --label unified-4 --out "$OUT/unified.json" --quiet
stop_cluster

start_cluster "$OUT/pd.cluster.log" --prefill 2 --decode 2 "$@"
warm_up
note_load "$OUT" pd
bench run --base-url "$BASE_URL" "${WORKLOAD[@]}" --label pd-2p2d --out "$OUT/pd.json" --quiet
stop_cluster

bench compare "$OUT/unified.json" "$OUT/pd.json" | tee "$OUT/compare.txt"
bench plot --out-dir "$OUT" "$OUT/unified.json" "$OUT/pd.json"
