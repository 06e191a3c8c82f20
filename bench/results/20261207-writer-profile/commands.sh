#!/bin/bash
# ADR 0036, round 7: where Natter's SQLite writer spends its CPU at 10,000 msg/s (perf), and
# what the search index adds to the durable floor (commitfloor --index). From the repository
# root after `cargo build --release -p natter-server -p natter-bench -p natter-floor` and
# `cargo build --release -p natter-store-sql --example commitfloor` (release build of a8f946f).
set -eu
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD; BIN_DIR=$ROOT/target/release; PIN_SERVER=(taskset -c 0); log(){ echo "$@"; }
source bench/lib/servers.sh
OUT=${OUT:-/tmp/writer-profile}; mkdir -p "$OUT"

# 1. perf of the whole server while natter-bench sends 10,000 msg/s into 100 rooms of 10.
start_server natter
taskset -c 1 "$BIN_DIR/natter-bench" rooms --rooms 100 --clients 10 --rate 10000 \
  --duration-secs 20 --target natter --url "$SERVER_URL" --server-pid "$SERVER_PID" \
  --out "$OUT/bench.json" > "$OUT/bench.log" 2>&1 &
B=$!
sleep 8   # the 1,000 sign-ups come first; the 8 s sample falls inside the sending
perf record -F 2000 -g --call-graph dwarf,16384 -p "$SERVER_PID" -o "$OUT/perf.data" -- sleep 8
wait $B; stop_server
perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none
perf report -i "$OUT/perf.data" --children --comm natter-sqlite-w --sort sym --stdio -g none

# 2. commitfloor with Natter's rows and natter-bench's bodies, without and with the word
#    index, paired, with fsync (as Natter) and without.
for sync in full normal; do
  for r in 1 2 3 4; do
    for ix in "" --index; do
      taskset -c 0 target/release/examples/commitfloor --natter-rows --bench-bodies $ix \
        --synchronous $sync --batch 50 --rate 250 --commits 3000 --dir /var/tmp
    done
  done
done

# 2b. the foreign-key checks Natter's schema makes at each insert: pairs in both orders.
for r in 1 2 3 4; do
  for fk in "" --foreign-keys; do
    taskset -c 0 target/release/examples/commitfloor --natter-rows --bench-bodies --index $fk \
      --batch 50 --rate 250 --commits 3000 --dir /var/tmp
  done
done
for r in 1 2 3 4; do
  for fk in --foreign-keys ""; do
    taskset -c 0 target/release/examples/commitfloor --natter-rows --bench-bodies --index $fk \
      --batch 50 --rate 250 --commits 3000 --dir /var/tmp
  done
done

# 3. ADR 0036's durable floor of rounds 5 and 6 with the index's cost added (17.9 + 5.5).
python3 bench/results/20261206-headline/durable-floor.py bench/results/20261206-headline 23.4
