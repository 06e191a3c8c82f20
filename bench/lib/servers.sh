# bench/lib/servers.sh: how the load tests start and stop each server under test, sourced by
# bench/run and bench/second-opinion so both measure the same servers the same way. Natter runs
# with its default configuration (SQLite durability on) and only its rate and account limits
# raised; the two Node.js peers and the floor run as they are.
#
# The caller sets ROOT, BIN_DIR (natter, natter-floor), PIN_SERVER (an array, e.g. taskset -c 0)
# and a log function; NATTER defaults to $BIN_DIR/natter. Functions: start_server KIND (sets
# SERVER_PID and SERVER_URL), start_cluster N DATABASE REDIS (the same, as comma lists of every
# node's pid and address), server_alive, stop_server.

SERVER_PID=""
SERVER_DATA=""
SERVER_LOG=""
SERVER_PIDS=()      # every process started (one, or a cluster's nodes)
CLUSTER_DB=""       # the cluster's PostgreSQL database, dropped by stop_server
CLUSTER_PG=""       # postgres://user@host:port of it
CLUSTER_REDIS_CLI=() # redis-cli -h H -p P -n DB: the Redis database the cluster used

# Natter's limits raised so that the load is not refused: every simulated user signs up from
# 127.0.0.1 and sends far faster than a person.
NATTER_LIMITS=(--rate-per-sec 1000000 --rate-burst 1000000
  --register-per-hour-per-address 1000000 --login-per-minute-per-address 1000000
  --login-per-minute-per-user 1000000 --guest-per-hour-per-address 1000000
  --max-rooms-per-user 1000000 --room-create-per-minute 1000000
  --hash-waiting-per-address 100000 --hash-wait-ms 600000)

# start_server KIND: starts it pinned, sets SERVER_PID and SERVER_URL.
start_server() {
  local kind="$1"
  SERVER_LOG="$(mktemp /tmp/natter-bench-server.XXXXXX)"
  case "$kind" in
    natter|natter-sio)
      SERVER_DATA="$(mktemp -d /tmp/natter-bench-data.XXXXXX)"
      "${PIN_SERVER[@]}" "${NATTER:-$BIN_DIR/natter}" --listen 127.0.0.1:0 --data-dir "$SERVER_DATA" \
        "${NATTER_LIMITS[@]}" --log warn >"$SERVER_LOG" 2>&1 &
      ;;
    sio-peer) "${PIN_SERVER[@]}" node "$ROOT/bench/peers/socketio/server.js" 0 >"$SERVER_LOG" 2>&1 & ;;
    ws-peer) "${PIN_SERVER[@]}" node "$ROOT/bench/peers/ws/server.js" 0 >"$SERVER_LOG" 2>&1 & ;;
    floor) "${PIN_SERVER[@]}" "$BIN_DIR/natter-floor" 0 >"$SERVER_LOG" 2>&1 & ;;
    *) echo "${0##*/}: unknown server $kind" >&2; exit 2 ;;
  esac
  SERVER_PID=$!
  SERVER_PIDS=("$SERVER_PID")
  local port="" i
  for i in $(seq 1 300); do
    port="$(grep -m1 -o 'listening on .*' "$SERVER_LOG" 2>/dev/null | grep -oE '[0-9]+$' || true)"
    [ -n "$port" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "$kind exited before listening:"; cat "$SERVER_LOG" >&2; return 1
    fi
    sleep 0.1
  done
  [ -n "$port" ] || { log "$kind did not report a port"; cat "$SERVER_LOG" >&2; return 1; }
  SERVER_URL="http://127.0.0.1:$port"
}

# start_cluster N DATABASE REDIS: N Natter nodes (each pinned like start_server, its own port
# and data directory) on one fresh PostgreSQL database and one Redis database:
#   DATABASE  postgres://user@host:port   a database natter_bench_cluster_<random> is created
#             there (dropped by stop_server)
#   REDIS     redis://host:port/DB        that database index is flushed before and after; the
#             nodes use a channel prefix of their own (pub/sub ignores the index)
# The first node migrates the schema before the others start; each node is ready when its
# /healthz answers (served only once its store is open and migrated and its broker connected:
# `listening` is printed before that). Sets SERVER_PID and SERVER_URL as comma lists, node 1
# first (natter-bench takes both as lists); server_logs prints every node's output.
start_cluster() {
  local nodes="$1" database="${2%/}" redis="$3"
  local rest="${redis#redis://}" hostport db host port
  hostport="${rest%%/*}"; db="${rest#"$hostport"}"; db="${db#/}"; db="${db:-0}"
  host="${hostport%%:*}"; port="${hostport#"$host"}"; port="${port#:}"; port="${port:-6379}"
  case "$db" in *[!0-9]*) log "bad Redis URL $redis (redis://host:port/DB)"; return 1 ;; esac
  CLUSTER_REDIS_CLI=(redis-cli -h "$host" -p "$port" -n "$db")
  "${CLUSTER_REDIS_CLI[@]}" flushdb >/dev/null || { log "cannot reach Redis at $redis"; return 1; }
  CLUSTER_PG="$database"
  CLUSTER_DB="natter_bench_cluster_$RANDOM$RANDOM"
  psql "$CLUSTER_PG/postgres" -qc "CREATE DATABASE $CLUSTER_DB" >/dev/null \
    || { log "cannot create a database at $CLUSTER_PG"; CLUSTER_DB=""; return 1; }
  local prefix="natter_bench_${CLUSTER_DB#natter_bench_cluster_}:"
  SERVER_DATA="$(mktemp -d /tmp/natter-bench-data.XXXXXX)"
  SERVER_LOG=""
  SERVER_PIDS=()
  local urls=() pids=() n log_n port_n i
  for n in $(seq 1 "$nodes"); do
    log_n="$SERVER_DATA/node$n.log"
    mkdir -p "$SERVER_DATA/node$n"
    "${PIN_SERVER[@]}" "${NATTER:-$BIN_DIR/natter}" --listen 127.0.0.1:0 --data-dir "$SERVER_DATA/node$n" \
      --database "$CLUSTER_PG/$CLUSTER_DB" --broker "$redis" --redis-prefix "$prefix" \
      "${NATTER_LIMITS[@]}" --log warn >"$log_n" 2>&1 &
    SERVER_PIDS+=("$!"); pids+=("$!")
    port_n=""
    for i in $(seq 1 600); do
      port_n="$(grep -m1 -o 'listening on .*' "$log_n" 2>/dev/null | grep -oE '[0-9]+$' || true)"
      if [ -n "$port_n" ] && curl -sf -m 2 -o /dev/null "http://127.0.0.1:$port_n/healthz"; then
        break
      fi
      if ! kill -0 "$!" 2>/dev/null; then
        log "node $n exited before it was ready:"; cat "$log_n" >&2; return 1
      fi
      port_n=""; sleep 0.1
    done
    [ -n "$port_n" ] || { log "node $n was not ready in 60 s"; cat "$log_n" >&2; return 1; }
    urls+=("http://127.0.0.1:$port_n")
  done
  SERVER_URL="$(IFS=,; echo "${urls[*]}")"
  SERVER_PID="$(IFS=,; echo "${pids[*]}")"
}

# server_logs: what the server (every node of a cluster) printed.
server_logs() {
  if [ -n "$SERVER_LOG" ]; then cat "$SERVER_LOG"; fi
  if [ -n "$SERVER_DATA" ]; then
    local f
    for f in "$SERVER_DATA"/node*.log; do [ -f "$f" ] && { echo "== ${f##*/}"; cat "$f"; }; done
  fi
  return 0
}

# server_alive: every process start_server or start_cluster started is still running.
server_alive() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
}

stop_server() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$CLUSTER_DB" ]; then
    psql "$CLUSTER_PG/postgres" -qc "DROP DATABASE IF EXISTS $CLUSTER_DB WITH (FORCE)" >/dev/null 2>&1 \
      || log "warning: could not drop database $CLUSTER_DB"
  fi
  if [ "${#CLUSTER_REDIS_CLI[@]}" -gt 0 ]; then
    "${CLUSTER_REDIS_CLI[@]}" flushdb >/dev/null 2>&1 || true
  fi
  [ -n "$SERVER_DATA" ] && rm -rf "$SERVER_DATA"
  [ -n "$SERVER_LOG" ] && rm -f "$SERVER_LOG"
  SERVER_PID=""; SERVER_DATA=""; SERVER_LOG=""; SERVER_PIDS=(); CLUSTER_DB=""; CLUSTER_REDIS_CLI=()
}
