#!/usr/bin/env bash
# What metrics cost: the same PD cluster (1 prefill + 1 decode worker, `up`'s default layout) and
# the same seeded workload, once with metrics recorded and scraped every second by a Prometheus
# (`--observe --scrape-interval-s 1`), once with `--no-metrics` (nothing recorded, no endpoint),
# back to back. Parameters, stated before running: random, 256-token prompts, 64 output tokens
# (fixed lengths), 96 requests at a fixed concurrency of 8 (`--request-rate inf --max-concurrency 8`),
# seed 0, --ignore-eos. Traces are off in both (no OTEL_* variables): off is their default.
# Override with NUM_PROMPTS, CONCURRENCY; ORDER=off-first runs the baseline first; OUT names the
# output directory.
# Output: bench/results/metrics-cost/{on.json, off.json, compare.txt, env.txt}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/bench/scenarios/lib.sh"
OUT="${OUT:-$ROOT/bench/results/metrics-cost}"
mkdir -p "$OUT"
write_env "$OUT"
RUN=(--workload random --num-prompts "${NUM_PROMPTS:-96}" --input-len 256 --output-len 64 --range-ratio 1
  --request-rate inf --max-concurrency "${CONCURRENCY:-8}" --seed 0 --ignore-eos --quiet)

measure_on() {
  start_cluster "$OUT/on.cluster.log" --observe --prometheus-port 0 --scrape-interval-s 1 "$@"
  warm_up
  note_load "$OUT" on
  bench run --base-url "$BASE_URL" "${RUN[@]}" --label metrics-on --out "$OUT/on.json"
  stop_cluster
}

measure_off() {
  start_cluster "$OUT/off.cluster.log" --no-metrics "$@"
  warm_up
  note_load "$OUT" off
  bench run --base-url "$BASE_URL" "${RUN[@]}" --label metrics-off --out "$OUT/off.json"
  stop_cluster
}

if [ "${ORDER:-on-first}" = off-first ]; then
  measure_off "$@"
  measure_on "$@"
else
  measure_on "$@"
  measure_off "$@"
fi

bench compare "$OUT/off.json" "$OUT/on.json" | tee "$OUT/compare.txt"
