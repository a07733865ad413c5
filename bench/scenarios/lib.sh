# Shared helpers for the scenario scripts: bring a local cluster up with `tandem up`, wait
# until it answers, run the bench, and stop exactly the cluster this script started.
# Sourced, not run. Expects ROOT (repository root) to be set by the caller.
set -euo pipefail
export PATH="$ROOT/.tools/bin:$PATH"
TANDEM="$ROOT/services/cli/bin/tandem"
PORT="${PORT:-8000}"
BASE_URL="http://127.0.0.1:$PORT"
CLUSTER_PID=""

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# start_cluster LOGFILE ARGS...: `tandem up --port $PORT ARGS...` in the background.
start_cluster() {
  local logfile="$1"
  shift
  log "tandem up --port $PORT $*"
  "$TANDEM" up --port "$PORT" "$@" >"$logfile" 2>&1 &
  CLUSTER_PID=$!
  local deadline=$((SECONDS + ${CLUSTER_START_TIMEOUT_S:-300}))
  until curl -fsS "$BASE_URL/v1/models" >/dev/null 2>&1; do
    if ! kill -0 "$CLUSTER_PID" 2>/dev/null; then
      log "tandem up exited; its log:"
      tail -n 40 "$logfile" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "cluster did not answer within ${CLUSTER_START_TIMEOUT_S:-300}s"
      stop_cluster
      return 1
    fi
    sleep 1
  done
  # The router may answer before every worker has joined: wait until a request succeeds
  # and give the rest of the workers a moment to announce themselves.
  MODEL=$(curl -fsS "$BASE_URL/v1/models" | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).data[0].id))')
  until curl -fsS "$BASE_URL/v1/completions" -H 'content-type: application/json' \
    -d "{\"model\":\"$MODEL\",\"prompt\":\"hello\",\"max_tokens\":1}" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && { log 'no completion succeeded'; stop_cluster; return 1; }
    sleep 1
  done
  sleep "${CLUSTER_SETTLE_S:-5}"
  log "cluster up at $BASE_URL (pid $CLUSTER_PID)"
}

stop_cluster() {
  if [ -n "$CLUSTER_PID" ] && kill -0 "$CLUSTER_PID" 2>/dev/null; then
    log "stopping cluster (pid $CLUSTER_PID)"
    kill -TERM "$CLUSTER_PID" 2>/dev/null || true
    local waited=0
    while kill -0 "$CLUSTER_PID" 2>/dev/null && [ "$waited" -lt 30 ]; do
      sleep 1
      waited=$((waited + 1))
    done
    kill -KILL "$CLUSTER_PID" 2>/dev/null || true
  fi
  CLUSTER_PID=""
}
trap stop_cluster EXIT

bench() { "$TANDEM" bench "$@"; }

# warm_up: a few short requests so the first measured ones do not pay for lazy start-up.
warm_up() {
  bench run --base-url "$BASE_URL" --workload random --num-prompts 8 --input-len 16 --output-len 4 \
    --seed 999 --max-concurrency 4 --quiet --label warm-up >/dev/null
}

# write_env DIR: the machine and revision the results came from.
write_env() {
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "revision: $(git -C "$ROOT" rev-parse --short HEAD)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
    echo "node: $(node --version)"
  } >"$1/env.txt"
}
