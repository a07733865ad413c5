#!/usr/bin/env bash
# A short probe of the disaggregated layout on one GPU: `tandem up --prefill 1 --decode 1` on a
# random-weight checkpoint (default the 8B shape), two requests through the router, then Ctrl-C;
# every log goes straight into $OUT (a run cut off at the device tool's limit still brings them
# back): how long up took, which transport carried the KV and why, and how long shutdown took.
#   there: OUT=$OUT bench/cuda/pd_probe.sh [1b|8b]    (device tool, carry [".carry"])
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/tandem-pd-probe}
mkdir -p "$OUT"
shape=${1:-8b}
stamp() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$OUT/probe.txt"; }
stamp setup
OUT=$OUT source bench/cuda/setup.sh >"$OUT/setup.txt" 2>&1
dir=/tmp/llama-$shape-neox
stamp "checkpoint $shape"
python3 bench/cuda/make_checkpoint.py --shape "$shape" --init neox --out "$dir" >"$OUT/checkpoint.txt" 2>&1
python3 bench/cuda/make_tokenizer.py --out "$dir" >>"$OUT/checkpoint.txt" 2>&1
stamp "up"
services/cli/bin/tandem up --device cuda --model "$dir" --port 8000 --prefill 1 --decode 1 \
  --worker-arg=--log-level=info --disagg-threshold 0 >"$OUT/up.log" 2>&1 &
up=$!
for _ in $(seq 240); do
  grep -q "tandem is up" "$OUT/up.log" && break
  kill -0 $up 2>/dev/null || break
  sleep 0.5
done
stamp "$(grep -c 'tandem is up' "$OUT/up.log") up lines"
ids=$(python3 -c "print(','.join(str(1000 + i) for i in range(600)))")
for i in 1 2; do
  curl -s -m 30 localhost:8000/v1/completions -H 'content-type: application/json' \
    -d "{\"model\":\"llama-$shape-neox\",\"prompt\":[$ids],\"max_tokens\":8,\"ignore_eos\":true}" >>"$OUT/responses.txt"
  echo >>"$OUT/responses.txt"
  stamp "request $i"
done
grep -E 'kv sender connected|over TCP|remote prefill done' "$OUT/up.log" | tail -4 | tee -a "$OUT/probe.txt"
stamp "ctrl-c"
kill -INT $up
for _ in $(seq 60); do kill -0 $up 2>/dev/null || break; sleep 0.5; done
kill -0 $up 2>/dev/null && { stamp "still running after 30 s"; ps -ef | grep -E 'tandem|node' >"$OUT/ps.txt"; } || stamp "stopped"
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
