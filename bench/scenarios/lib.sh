# Shared helpers for the scenario scripts: bring a local cluster up with `tandem up`, wait
# until it answers, run the bench, and stop exactly the cluster this script started.
# Sourced, not run. Expects ROOT (repository root) to be set by the caller.
set -euo pipefail
export PATH="$ROOT/.tools/bin:$PATH"
TANDEM="$ROOT/services/cli/bin/tandem"
# in_use PORT: something listens on 127.0.0.1:PORT.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port START: the first port from START up that nothing listens on.
free_port() {
  local port="$1"
  while in_use "$port"; do port=$((port + 1)); done
  echo "$port"
}
# The router's port and private NATS / Redis ports, all checked free: a cluster of another job
# on this machine must neither answer our requests nor see our workers.
PORT="${PORT:-$(free_port 28431)}"
in_use "$PORT" && { echo "port $PORT is already in use" >&2; exit 1; }
NATS_PORT="${NATS_PORT:-$(free_port 24731)}"
REDIS_PORT="${REDIS_PORT:-$(free_port 26731)}"
BASE_URL="http://127.0.0.1:$PORT"
CLUSTER_PIDS=()
MANUAL_NUM_WORKERS=0

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# start_cluster LOGFILE ARGS...: `tandem up --port $PORT ARGS...` in the background, or with
# LAUNCHER=manual the same cluster started piece by piece (nats-server, redis-server on private
# ports, `tandem worker` x N, `tandem router`), for when `up` is not available.
start_cluster() {
  local logfile="$1"
  shift
  if [ "${LAUNCHER:-up}" = manual ]; then
    start_manual "$logfile" "$@"
  else
    # Private NATS / Redis ports: workers of any other cluster on this machine must not join.
    local infra=(--nats "nats://127.0.0.1:$NATS_PORT" --redis "redis://127.0.0.1:$REDIS_PORT")
    log "tandem up --port $PORT ${infra[*]} $*"
    "$TANDEM" up --port "$PORT" "${infra[@]}" "$@" >"$logfile" 2>&1 &
    CLUSTER_PIDS=($!)
  fi
  wait_ready "$logfile"
}

start_manual() {
  local logfile="$1"
  shift
  local model="$ROOT/deploy/models/tandem-demo-code" policy=cache_aware unified=1 prefill=0 decode=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --model) model="$2"; shift 2 ;;
      --policy) policy="$2"; shift 2 ;;
      --unified) unified="$2"; shift 2 ;;
      --prefill) prefill="$2"; unified=0; shift 2 ;;
      --decode) decode="$2"; unified=0; shift 2 ;;
      *) log "manual launcher: unknown option $1"; return 1 ;;
    esac
  done
  local nats_port="$NATS_PORT" redis_port="$REDIS_PORT" port
  port=$(free_port "${WORKER_BASE_PORT:-25731}")
  local nats="nats://127.0.0.1:$nats_port" redis="redis://127.0.0.1:$redis_port"
  CLUSTER_PIDS=()
  nats-server -p "$nats_port" >"${logfile%.log}-nats.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  redis-server --port "$redis_port" --save '' --appendonly no >"${logfile%.log}-redis.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  sleep 1
  local pid
  for pid in "${CLUSTER_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { log "nats-server or redis-server did not start (see ${logfile%.log}-*.log)"; stop_cluster; return 1; }
  done
  local role count i
  for role in unified prefill decode; do
    case "$role" in unified) count=$unified ;; prefill) count=$prefill ;; decode) count=$decode ;; esac
    for ((i = 0; i < count; i++)); do
      "$TANDEM" worker --role "$role" --model "$model" --port "$port" --nats "$nats" --redis "$redis" \
        ${WORKER_ARGS:-} >"${logfile%.log}-$role-$i.log" 2>&1 &
      CLUSTER_PIDS+=($!)
      port=$(free_port $((port + 1)))
    done
  done
  log "manual cluster: $unified unified, $prefill prefill, $decode decode workers; router --policy $policy"
  "$TANDEM" router --model "$model" --port "$PORT" --policy "$policy" --nats "$nats" --redis "$redis" >"$logfile" 2>&1 &
  CLUSTER_PIDS+=($!)
  MANUAL_NUM_WORKERS=$((unified + prefill + decode))
}

wait_ready() {
  local logfile="$1"
  local deadline=$((SECONDS + ${CLUSTER_START_TIMEOUT_S:-300}))
  local lead="${CLUSTER_PIDS[0]}"
  [ "${LAUNCHER:-up}" = manual ] && lead="${CLUSTER_PIDS[-1]}"
  until curl -fsS "$BASE_URL/v1/models" >/dev/null 2>&1; do
    if ! kill -0 "$lead" 2>/dev/null; then
      log "the cluster's process exited; its log:"
      tail -n 40 "$logfile" >&2
      stop_cluster
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "cluster did not answer within ${CLUSTER_START_TIMEOUT_S:-300}s"
      stop_cluster
      return 1
    fi
    sleep 1
  done
  if [ "${LAUNCHER:-up}" = manual ]; then
    until [ "$(grep -c 'worker joined' "$logfile" || true)" -ge "$MANUAL_NUM_WORKERS" ]; do
      [ "$SECONDS" -ge "$deadline" ] && { log 'not every worker joined'; stop_cluster; return 1; }
      sleep 1
    done
  fi
  # The router may answer before every worker has joined: wait until a request succeeds
  # and give the rest of the workers a moment to announce themselves.
  MODEL=$(curl -fsS "$BASE_URL/v1/models" | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).data[0].id))')
  until curl -fsS "$BASE_URL/v1/completions" -H 'content-type: application/json' \
    -d "{\"model\":\"$MODEL\",\"prompt\":\"hello\",\"max_tokens\":1}" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && { log 'no completion succeeded'; stop_cluster; return 1; }
    sleep 1
  done
  sleep "${CLUSTER_SETTLE_S:-5}"
  log "cluster up at $BASE_URL (pids ${CLUSTER_PIDS[*]})"
}

# stop_cluster: TERM to every process this script started (the router first, `up` stops its
# own children), then KILL whatever is left after 30 s.
stop_cluster() {
  local pid i waited=0
  for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
    pid="${CLUSTER_PIDS[$i]}"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${CLUSTER_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do
      sleep 1
      waited=$((waited + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  [ "${#CLUSTER_PIDS[@]}" -gt 0 ] && log 'cluster stopped'
  CLUSTER_PIDS=()
}
trap stop_cluster EXIT

bench() { "$TANDEM" bench "$@"; }

# note_load DIR LABEL: the machine's load just before a measured run (other jobs share it).
note_load() {
  echo "load before $2: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$1/env.txt"
}

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
    echo "launcher: ${LAUNCHER:-up}"
  } >"$1/env.txt"
}

# note_kv_pages DIR: each worker's KV pool size in pages (from its /metrics, listed by GET /debug),
# for the oracle's cache capacity.
note_kv_pages() {
  local addresses address
  addresses=$(curl -fsS "$BASE_URL/debug" | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{for(const p of JSON.parse(s).processes)if(p.role!=="router"&&p.metricsAddress)console.log(p.metricsAddress)})')
  for address in $addresses; do
    echo "kv pages of $address: $(curl -fsS "http://$address/metrics" | sed -n 's/^tandem_worker_kv_pages_total{[^}]*} //p' | head -1)" >>"$1/env.txt"
  done
}

# policy_rounds WORKLOAD-ARGS...: every policy of POLICIES on a fresh 4-worker cluster (cold
# caches; CLUSTER_ARGS added to `tandem up`), REPEATS rounds with the order rotating between
# rounds (the 2-core machine is shared: medians and same-round ratios, not one run, decide), the
# same seeded workload each time, all at once with at most MAX_CONCURRENCY in flight:
# $OUT/<policy>-r<round>.json, env.txt with the load before each run and the workers' KV sizes.
policy_rounds() {
  local r k policy
  rm -f "$OUT"/*.json
  write_env "$OUT"
  for ((r = 1; r <= REPEATS; r++)); do
    for ((k = 0; k < ${#POLICIES[@]}; k++)); do
      policy="${POLICIES[$(((k + r - 1) % ${#POLICIES[@]}))]}"
      start_cluster "$OUT/$policy.cluster.log" --unified 4 --policy "$policy" "${CLUSTER_ARGS[@]}"
      warm_up
      [ "$r$k" = 10 ] && note_kv_pages "$OUT"
      note_load "$OUT" "$policy r$r"
      bench run --base-url "$BASE_URL" "$@" --seed 0 --ignore-eos --request-rate inf \
        --max-concurrency "$MAX_CONCURRENCY" --label "$policy" --out "$OUT/$policy-r$r.json" --quiet |
        grep -E '^(completed|throughput|input tokens)'
      stop_cluster
    done
  done
}
