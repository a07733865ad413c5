#!/usr/bin/env bash
# One device call of checks on a GPU host: the CUDA backend's lab (attention kernels vs a float64
# reference, golden fixtures in f32/bf16/f16), the executor's TypeScript tests on cuda:0, the
# kvtransfer GPU lab (cuda_ipc and tcp-with-staging between two processes, bandwidth vs cudaMemcpy),
# and the disaggregated cluster on the GPU: the PD tests with their workers on cuda:0 (float32):
# golden outputs through the router equal a unified worker's, KV over cuda_ipc, kill -9 of either
# worker mid-transfer.
#   here:  bench/cuda/carry.sh
#   there: OUT=$OUT bench/cuda/gpu_e2e.sh [lab] [node] [kvt] [pd] [constrained]
#          (default: all; device tool, carry [".carry", "native/executor/build/Release"]: the PD
#          constraint test runs its engines on the CPU addon built here); constrained: the structured-output and
#          tool-call tests with their workers on cuda:0
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# The device tool brings back at most 8 files: logs go to /tmp/tandem-gpu-logs, packed into
# $OUT/logs.tgz after every stage (so a run cut off at its time limit still brings them back).
RESULT_DIR=${OUT:-/tmp/tandem-gpu-out}
OUT=/tmp/tandem-gpu-logs
mkdir -p "$OUT" "$RESULT_DIR"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(lab node kvt pd constrained)
want() { [[ " ${stages[*]} " == *" $1 "* ]]; }
log() { echo "== $* ($(date -u +%H:%M:%S))"; }
status=0
pack() { tar -czf "$RESULT_DIR/logs.tgz" -C "$OUT" . 2>/dev/null; }
OUT=$OUT source bench/cuda/setup.sh
pack
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/device.txt"
echo "commit ${TANDEM_COMMIT:-unknown}" | tee -a "$OUT/device.txt"

if want lab; then
  log "lab: attention + golden"
  OUT=$OUT timeout 100 bench/cuda/gpu_run.sh build attention golden >"$OUT/lab.txt" 2>&1 || status=1
  grep -E "passed|failed|PASS|FAIL|^\{" "$OUT/lab.txt" | tail -30
  pack
fi
if want node; then
  log "executor TypeScript tests on cuda:0"
  OUT=$OUT timeout 80 bench/cuda/gpu_run.sh node 2>&1 | tail -5 || status=1
  pack
fi
if want kvt; then
  log "kvtransfer GPU lab"
  OUT=$OUT/kvt BUILD=/tmp/kvt-lab timeout 150 bench/kvtransfer/gpu_run.sh --quick >"$OUT/kvt.txt" 2>&1 || status=1
  tail -40 "$OUT/kvt.txt"
  pack
fi
if want pd; then
  log "PD on cuda:0: pd-cluster (golden through the router), pd-workers (kill -9)"
  TANDEM_TEST_DEVICE=cuda:0 timeout 180 node --disable-warning=ExperimentalWarning --test --test-concurrency=1 \
    --test-reporter=spec test/e2e/pd-cluster.test.ts test/e2e/pd-workers.test.ts >"$OUT/pd_tests.txt" 2>&1 || status=1
  grep -E "^(✔|✖)|^ℹ (tests|pass|fail)" "$OUT/pd_tests.txt" | tail -30
fi
if want constrained; then
  log "structured outputs and tool calls with their workers on cuda:0 (the token mask on the GPU)"
  TANDEM_TEST_DEVICE=cuda:0 timeout 150 node --disable-warning=ExperimentalWarning --test --test-concurrency=1 \
    --test-reporter=spec test/e2e/structured-outputs.test.ts test/e2e/tool-calls.test.ts \
    test/e2e/pd-constraint.test.ts >"$OUT/constrained_tests.txt" 2>&1 || status=1
  grep -E "^(✔|✖)|^ℹ (tests|pass|fail)" "$OUT/constrained_tests.txt" | tail -30
fi
log "done status=$status"
pack
exit $status
