#!/usr/bin/env bash
# cache_aware vs round_robin vs power_of_two on the shared-prefix workload.
# Fixed parameters, stated before running (issue 6): 4 unified CPU workers, 16 groups x 8
# prompts, 512-token system prompt, 64-token question, 16 output tokens, seed 0.
# Aim: cache_aware >= 2x round_robin's throughput.
# Output: bench/results/cache-policies/{<policy>.json, compare.txt, *-cdf.svg, env.txt}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/bench/scenarios/lib.sh"
OUT="$ROOT/bench/results/cache-policies"
mkdir -p "$OUT"
write_env "$OUT"
MAX_CONCURRENCY="${MAX_CONCURRENCY:-32}"

for policy in cache_aware round_robin power_of_two; do
  start_cluster "$OUT/$policy.cluster.log" --unified 4 --policy "$policy" "$@"
  warm_up
  note_load "$OUT" "$policy"
  bench run --base-url "$BASE_URL" --workload shared-prefix --num-groups 16 --prompts-per-group 8 \
    --system-prompt-len 512 --question-len 64 --output-len 16 --seed 0 --ignore-eos \
    --request-rate inf --max-concurrency "$MAX_CONCURRENCY" --label "$policy" --out "$OUT/$policy.json" --quiet
  stop_cluster
done

bench compare "$OUT/cache_aware.json" "$OUT/round_robin.json" "$OUT/power_of_two.json" | tee "$OUT/compare.txt"
bench plot --out-dir "$OUT" "$OUT/cache_aware.json" "$OUT/round_robin.json" "$OUT/power_of_two.json"
node -e '
  const [ca, rr] = process.argv.slice(1).map((f) => JSON.parse(require("fs").readFileSync(f, "utf8")).summary);
  const ratio = ca.requestThroughputPerS / rr.requestThroughputPerS;
  console.log(`cache_aware / round_robin request throughput: ${ratio.toFixed(2)}x (aim >= 2x)`);
' "$OUT/cache_aware.json" "$OUT/round_robin.json" | tee -a "$OUT/compare.txt"
