# bench/lib/servers.sh: how the load tests start and stop each server under test, sourced by
# bench/run and bench/second-opinion so both measure the same servers the same way. Natter runs
# with its default configuration (SQLite durability on) and only its rate and account limits
# raised; the two Node.js peers and the floor run as they are.
#
# The caller sets ROOT, BIN_DIR (natter, natter-floor), PIN_SERVER (an array, e.g. taskset -c 0)
# and a log function; NATTER defaults to $BIN_DIR/natter. Functions: start_server KIND (sets
# SERVER_PID and SERVER_URL), stop_server.

SERVER_PID=""
SERVER_DATA=""
SERVER_LOG=""

# start_server KIND: starts it pinned, sets SERVER_PID and SERVER_URL.
start_server() {
  local kind="$1"
  SERVER_LOG="$(mktemp /tmp/natter-bench-server.XXXXXX)"
  case "$kind" in
    natter|natter-sio)
      SERVER_DATA="$(mktemp -d /tmp/natter-bench-data.XXXXXX)"
      "${PIN_SERVER[@]}" "${NATTER:-$BIN_DIR/natter}" --listen 127.0.0.1:0 --data-dir "$SERVER_DATA" \
        --rate-per-sec 1000000 --rate-burst 1000000 \
        --register-per-hour-per-address 1000000 --login-per-minute-per-address 1000000 \
        --login-per-minute-per-user 1000000 --guest-per-hour-per-address 1000000 \
        --max-rooms-per-user 1000000 --room-create-per-minute 1000000 \
        --hash-waiting-per-address 100000 --hash-wait-ms 600000 \
        --log warn >"$SERVER_LOG" 2>&1 &
      ;;
    sio-peer) "${PIN_SERVER[@]}" node "$ROOT/bench/peers/socketio/server.js" 0 >"$SERVER_LOG" 2>&1 & ;;
    ws-peer) "${PIN_SERVER[@]}" node "$ROOT/bench/peers/ws/server.js" 0 >"$SERVER_LOG" 2>&1 & ;;
    floor) "${PIN_SERVER[@]}" "$BIN_DIR/natter-floor" 0 >"$SERVER_LOG" 2>&1 & ;;
    *) echo "${0##*/}: unknown server $kind" >&2; exit 2 ;;
  esac
  SERVER_PID=$!
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

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  [ -n "$SERVER_DATA" ] && rm -rf "$SERVER_DATA"
  [ -n "$SERVER_LOG" ] && rm -f "$SERVER_LOG"
  SERVER_PID=""; SERVER_DATA=""; SERVER_LOG=""
}
