#!/usr/bin/env bash
# The GPU serving benchmark, in one device call: builds the CUDA addons, makes random-weight bf16
# checkpoints of the Llama-3.2-1B and Llama-3.1-8B shapes (make_checkpoint.py --init neox, with
# make_tokenizer.py's 128,256-id byte-level tokenizer), brings the whole stack up with
# `tandem up --device cuda` (NATS, Redis, router, workers) and drives it with `tandem bench`
# through the router; measures the ceilings (HBM copy bandwidth, bf16 GEMM rate) in the same run.
#
#   here:  bench/cuda/carry.sh                 # .carry/: node, runtime node_modules, nats/redis
#   there: OUT=$OUT bench/cuda/serve.sh [1b] [8b] [pd=1b|8b] [quick]
#          (device tool, carry [".carry"]; default: 1b 8b, each unified; pd=8b also brings that
#          model up disaggregated (1 prefill + 1 decode worker on the one GPU, KV over cuda_ipc) and
#          times 2k-token prompts one at a time in both layouts: the TTFT disaggregation adds)
#
# Writes under $OUT: device.txt, ceilings.json, <model>_<workload>.json (tandem bench results),
# <model>_<workload>_device.json (GPU busy / idle during the workload, from the workers' Info),
# up_<model>.log, summary.md (the table bench/cuda/README.md shows).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# The device tool brings back at most 8 files: everything is packed into $OUT/serve.tgz at the end.
RESULT_DIR=${OUT:-/tmp/tandem-serve-out}
OUT=/tmp/tandem-serve-logs
mkdir -p "$OUT" "$RESULT_DIR"
# Packed after every workload, so a run cut off at the device tool's limit still brings back
# what it measured.
pack() { tar -czf "$RESULT_DIR/serve.tgz" -C "$OUT" . 2>/dev/null; }
models=()
pdModels=()
quick=0
for arg in "$@"; do
  case $arg in
    1b | 8b) models+=("$arg") ;;
    pd=*) pdModels+=("${arg#pd=}") ;;
    quick) quick=1 ;;
    *) echo "serve.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ ${#models[@]} -eq 0 ] && models=(1b 8b)
log() { echo "== $* ($(date -u +%H:%M:%S))"; }
status=0

log setup
OUT=$OUT source bench/cuda/setup.sh
BIN=/tmp/tandem-bin
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/device.txt"
echo "commit ${TANDEM_COMMIT:-unknown}" | tee -a "$OUT/device.txt"

log ceilings
python3 - <<'PY' | tee "$OUT/ceilings.json"
import json, torch
def timed(fn, n):
    for _ in range(3): fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(n): fn()
    end.record(); torch.cuda.synchronize()
    return start.elapsed_time(end) / n
src = torch.randn(1 << 30, device="cuda", dtype=torch.bfloat16); dst = torch.empty_like(src)
copy_ms = timed(lambda: dst.copy_(src), 20)
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
gemm_ms = timed(lambda: a @ b, 20)
print(json.dumps({"gpu": torch.cuda.get_device_name(), "hbm_gb_s": 2 * src.numel() * 2 / copy_ms / 1e6,
                  "bf16_gemm_tflop_s": 2 * 8192**3 / gemm_ms / 1e9}))
PY

tandem() { services/cli/bin/tandem "$@"; }

# One model: the stack up, each workload through the router, the stack down.
serve() { # label dir layout
  local label=$1 dir=$2 layout=$3 port=8000
  local upArgs=(--device cuda --model "$dir" --port "$port" --log-level warn)
  if [ "$layout" = pd ]; then upArgs+=(--prefill 1 --decode 1); else upArgs+=(--unified 1); fi
  upArgs+=(--worker-arg=--max-running=512 --worker-arg=--max-batch-tokens=8192 --router-arg=--max-concurrent=1024)
  log "up $label ($layout)"
  # Workers log at info in the PD layout: which transport carried the KV, and why.
  [ "$layout" = pd ] && upArgs+=(--worker-arg=--log-level=info)
  local upLog="$OUT/up_${label}_$layout.log"
  # Started directly (not through the tandem function): a function runs in a subshell, which a
  # non-interactive bash starts with SIGINT ignored, so the Ctrl-C below never reached tandem up.
  services/cli/bin/tandem up "${upArgs[@]}" >"$upLog" 2>&1 &
  local up=$!
  for _ in $(seq 600); do
    grep -q "tandem is up" "$upLog" && break
    kill -0 $up 2>/dev/null || break
    sleep 1
  done
  grep "tandem is up" "$upLog" || { echo "up failed"; tail -30 "$upLog"; status=1; return; }
  local common=(--base-url "http://127.0.0.1:$port" --ignore-eos --vocab-size 128000 --seed 0 --warmup-requests 2)
  local n1=16 n64=256 nshare=1000
  [ $quick = 1 ] && n1=4 n64=64 nshare=200
  if [ "$layout" = pd ] || [[ " ${pdModels[*]} " == *" ${label#llama-} "* ]]; then
    workload "$label" "ttft2k_$layout" "${common[@]}" --workload random --input-len 2048 --output-len 8 --range-ratio 1 \
      --num-prompts 16 --max-concurrency 1 --request-rate inf
  fi
  if [ "$layout" = unified ]; then
    workload "$label" batch1 "${common[@]}" --workload random --input-len 512 --output-len 128 --range-ratio 1 \
      --num-prompts $n1 --max-concurrency 1 --request-rate inf
    workload "$label" conc64 "${common[@]}" --workload random --input-len 1024 --output-len 256 --range-ratio 1 \
      --num-prompts $n64 --max-concurrency 64 --request-rate inf
    workload "$label" sharegpt "${common[@]}" --workload sharegpt-like --num-prompts $nshare --request-rate inf \
      --plot-dir "$OUT/plots_$label"
  else
    grep -E '"remote prefill done"|over TCP from a GPU pool|kv sender connected' "$upLog" | tail -3
  fi
  kill -INT $up
  wait $up
}

workload() { # label name bench-args...
  local label=$1 name=$2
  shift 2
  local before after
  before=$("$BIN/node" --disable-warning=ExperimentalWarning bench/cuda/device-time.ts http://127.0.0.1:8000)
  log "bench $label $name"
  tandem bench run "$@" --label "$label-$name" --out "$OUT/${label}_$name.json" >"$OUT/${label}_$name.txt" 2>&1 ||
    { status=1; tail -5 "$OUT/${label}_$name.txt"; }
  after=$("$BIN/node" --disable-warning=ExperimentalWarning bench/cuda/device-time.ts http://127.0.0.1:8000)
  echo "{\"before\": $before, \"after\": $after}" >"$OUT/${label}_${name}_device.json"
  grep -E "output token throughput|TPOT|Output" "$OUT/${label}_$name.txt" | head -4
  pack
}

for model in "${models[@]}"; do
  dir=/tmp/llama-$model-neox
  if [ ! -f "$dir/config.json" ]; then
    log "make $model checkpoint"
    python3 bench/cuda/make_checkpoint.py --shape "$model" --init neox --out "$dir" 2>&1 | tail -1
    python3 bench/cuda/make_tokenizer.py --out "$dir"
  fi
  serve "llama-$model" "$dir" unified
  [[ " ${pdModels[*]} " == *" $model "* ]] && serve "llama-$model" "$dir" pd
done

log summary
"$BIN/node" --disable-warning=ExperimentalWarning bench/cuda/serve-summary.ts "$OUT" | tee "$OUT/summary.md"
cp "$OUT/summary.md" "$RESULT_DIR/" 2>/dev/null
pack
log "done status=$status"
exit $status
