#!/usr/bin/env bash
# The bench against its own test server (no cluster needed): a quick way to see the numbers
# it reports next to the delays the server was told to apply (TTFT 50 ms, ITL 10 ms).
# Output: bench/results/test-server/{result.json, server.jsonl, sweep/, *-cdf.svg}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
set -euo pipefail
export PATH="$ROOT/.tools/bin:$PATH"
OUT="$ROOT/bench/results/test-server"
mkdir -p "$OUT"
rm -f "$OUT/server.jsonl"
node --disable-warning=ExperimentalWarning "$ROOT/bench/src/test-server.ts" --port 18765 --seed 1 \
  --ttft-ms 50 --itl-ms 10 --jitter-ms 3 --slow-ttft-fraction 0.2 --slow-ttft-ms 250 --log "$OUT/server.jsonl" &
SERVER_PID=$!
trap 'kill -TERM $SERVER_PID 2>/dev/null || true' EXIT
sleep 1
T="$ROOT/services/cli/bin/tandem"
"$T" bench run --base-url http://127.0.0.1:18765 --workload sharegpt-like --sharegpt-output-len 32 --num-prompts 100 \
  --request-rate 20 --seed 0 --slo-ttft-ms 150 --slo-tpot-ms 20 --label test-server --out "$OUT/result.json" --plot-dir "$OUT"
"$T" bench sweep --base-url http://127.0.0.1:18765 --workload random --input-len 64 --output-len 16 --num-prompts 60 \
  --rates 5,10,20,40 --seed 0 --slo-ttft-ms 150 --label test-server --out-dir "$OUT/sweep"
