#!/bin/bash
# Per-thread CPU of Natter and the floor at a fixed rooms rate (ADR 0036): bash threads.sh
# from the repository root after a release build; RATE=10000 by default.
set -u
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD; BIN_DIR=$ROOT/target/release; PIN_SERVER=(taskset -c 0); log(){ echo "$@"; }
source bench/lib/servers.sh
RATE=${RATE:-10000}
for kind in natter floor natter floor; do
  start_server $kind
  taskset -c 1 $BIN_DIR/natter-bench rooms --rooms 100 --clients 10 --rate $RATE --duration-secs 20 --target $kind --url $SERVER_URL --server-pid $SERVER_PID --out /tmp/thr-$kind.json > /tmp/thr-$kind.log 2>&1 &
  B=$!
  # wait until sending starts (setup signs up 1000 users), then sample 10 s
  sleep 8  # natter-bench signs 1,000 users up first; the 10 s sample falls inside its 20 s of sending
  declare -A t0
  for t in /proc/$SERVER_PID/task/*; do id=${t##*/}; read -r -a f < $t/stat 2>/dev/null || continue; name=$(cat $t/comm); t0[$id]="$name $(( ${f[13]} + ${f[14]} ))"; done
  sleep 10
  echo "== $kind at $RATE msg/s, ticks (10 ms) over 10 s:"
  for t in /proc/$SERVER_PID/task/*; do id=${t##*/}; read -r -a f < $t/stat 2>/dev/null || continue; now=$(( ${f[13]} + ${f[14]} )); set -- ${t0[$id]:-x 0}; echo "  $1 $(( now - $2 ))"; done | sort | awk '{a[$1]+=$2} END {for (k in a) if (a[k]>0) print "  "k, a[k]}'
  unset t0
  wait $B
  tail -1 /tmp/thr-$kind.log
  stop_server
done
