#!/usr/bin/env bash
# cache_aware vs round_robin vs power_of_two on the shared-prefix workload.
# Fixed parameters, stated before running (issue 6): 4 unified CPU workers, 16 groups x 8
# prompts, 512-token system prompt, 64-token question, 16 output tokens, seed 0, all requests
# at once with at most 32 in flight. Aim: cache_aware >= 2x round_robin's throughput.
# The 2-core machine is shared with other jobs, so every policy runs REPEATS times (default 5)
# on a fresh cluster (cold caches), the policy order rotating between repeats; the verdict
# compares median throughputs.
# Output: bench/results/cache-policies/{<policy>-r<k>.json, compare.txt, summary.txt,
#         *-cdf.svg and throughput bars of each policy's median run, env.txt}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/bench/scenarios/lib.sh"
OUT="$ROOT/bench/results/cache-policies"
mkdir -p "$OUT"
MAX_CONCURRENCY="${MAX_CONCURRENCY:-32}"
REPEATS="${REPEATS:-5}"
POLICIES=(cache_aware round_robin power_of_two)

# SUMMARY_ONLY=1: only redo the summary, table and plots from the JSON files already there.
if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
rm -f "$OUT"/*.json
write_env "$OUT"
for ((r = 1; r <= REPEATS; r++)); do
  for ((k = 0; k < 3; k++)); do
    policy="${POLICIES[$(((k + r - 1) % 3))]}"
    start_cluster "$OUT/$policy.cluster.log" --unified 4 --policy "$policy" "$@"
    warm_up
    note_load "$OUT" "$policy r$r"
    bench run --base-url "$BASE_URL" --workload shared-prefix --num-groups 16 --prompts-per-group 8 \
      --system-prompt-len 512 --question-len 64 --output-len 16 --seed 0 --ignore-eos \
      --request-rate inf --max-concurrency "$MAX_CONCURRENCY" --label "$policy" --out "$OUT/$policy-r$r.json" --quiet \
      | grep -E '^(completed|throughput|input tokens)'
    stop_cluster
  done
done
fi

# Per policy: every repeat's throughput and cached share, the median run; the verdict.
node - "$OUT" "$REPEATS" >"$OUT/summary.txt" <<'JS'
const fs = require('node:fs');
const [dir, repeats] = process.argv.slice(2);
const medians = {};
for (const policy of ['cache_aware', 'round_robin', 'power_of_two']) {
  const runs = [];
  for (let r = 1; r <= Number(repeats); r++) {
    const s = JSON.parse(fs.readFileSync(`${dir}/${policy}-r${r}.json`, 'utf8')).summary;
    runs.push({ r, rps: s.requestThroughputPerS, cached: s.cachedTokenShare });
  }
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  medians[policy] = median;
  console.log(`${policy.padEnd(13)} req/s: ${runs.map((x) => x.rps.toFixed(2)).join(', ')}  median ${median.rps.toFixed(2)} (run r${median.r})  cached share: ${runs.map((x) => (x.cached * 100).toFixed(1) + '%').join(', ')}`);
}
const rps = (policy, r) => JSON.parse(fs.readFileSync(`${dir}/${policy}-r${r}.json`, 'utf8')).summary.requestThroughputPerS;
const paired = [];
for (let r = 1; r <= Number(repeats); r++) paired.push(rps('cache_aware', r) / rps('round_robin', r));
console.log(`cache_aware / round_robin within each round: ${paired.map((x) => x.toFixed(2) + 'x').join(', ')}`);
const ratio = medians.cache_aware.rps / medians.round_robin.rps;
console.log(`cache_aware / round_robin median request throughput: ${ratio.toFixed(2)}x (aim >= 2x)`);
console.log(`cache_aware / power_of_two median request throughput: ${(medians.cache_aware.rps / medians.power_of_two.rps).toFixed(2)}x`);
console.log(`median runs: ${Object.entries(medians).map(([p, m]) => `${p}-r${m.r}.json`).join(' ')}`);
JS
cat "$OUT/summary.txt"
read -r -a MEDIAN_RUNS <<<"$(sed -n 's/^median runs: //p' "$OUT/summary.txt")"
bench compare "${MEDIAN_RUNS[@]/#/$OUT/}" | tee "$OUT/compare.txt"
bench plot --out-dir "$OUT" "${MEDIAN_RUNS[@]/#/$OUT/}"
