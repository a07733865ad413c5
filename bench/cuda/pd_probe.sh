#!/usr/bin/env bash
# A short probe of the disaggregated layout on one GPU: `tandem up --prefill 1 --decode 1` on a
# random-weight checkpoint (default the 8B shape), two requests through the router, then Ctrl-C;
# every log goes straight into $OUT (a run cut off at the device tool's limit still brings them
# back): how long up took, which transport carried the KV and why, and how long shutdown took.
#   there: [PROMPT_LEN=600] [REQUESTS=2] [UNIFIED=1 (then the unified layout, same requests)] OUT=$OUT bench/cuda/pd_probe.sh [1b|8b]
#          (device tool, carry [".carry"])
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
# One layout up, the requests through the router, Ctrl-C. Distinct prompts (no prefix hits),
# max_tokens 1: curl's total time is the TTFT through the router; in PD each "remote prefill done"
# line splits it (P's queue, compute and KV tail; D's whole remote prefill).
probe() { # layout up-args...
  local layout=$1
  shift
  stamp "up $layout"
  services/cli/bin/tandem up --device cuda --model "$dir" --port 8000 "$@" >"$OUT/up_$layout.log" 2>&1 &
  local up=$!
  for _ in $(seq 240); do
    grep -q "tandem is up" "$OUT/up_$layout.log" && break
    kill -0 $up 2>/dev/null || break
    sleep 0.5
  done
  stamp "$(grep -c 'tandem is up' "$OUT/up_$layout.log") up lines"
  local len=${PROMPT_LEN:-600}
  for i in $(seq "${REQUESTS:-2}"); do
    ids=$(python3 -c "print(','.join(str(1000 + (i * 7919 + $i * 104729) % 120000) for i in range($len)))")
    curl -s -m 30 -o /dev/null -w "$layout request $i ($len tokens): HTTP %{http_code} %{time_total} s\n" \
      localhost:8000/v1/completions -H 'content-type: application/json' \
      -d "{\"model\":\"llama-$shape-neox\",\"prompt\":[$ids],\"max_tokens\":1,\"ignore_eos\":true}" | tee -a "$OUT/probe.txt"
  done
  grep -E 'kv sender connected|over TCP|remote prefill done' "$OUT/up_$layout.log" | tail -$((${REQUESTS:-2} + 1)) | tee -a "$OUT/probe.txt"
  stamp "ctrl-c"
  kill -INT $up
  for _ in $(seq 60); do kill -0 $up 2>/dev/null || break; sleep 0.5; done
  kill -0 $up 2>/dev/null && { stamp "still running after 30 s"; ps -ef | grep -E 'tandem|node' >"$OUT/ps.txt"; kill -9 $up; } || stamp "stopped"
}
probe pd --prefill 1 --decode 1 --worker-arg=--log-level=info --disagg-threshold 0
[ "${UNIFIED:-0}" = 1 ] && probe unified --unified 1
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
