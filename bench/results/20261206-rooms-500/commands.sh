#!/bin/bash
# How the runs in this directory were made (6 Dec 2026, release build of 4b8ac54, the machine
# otherwise quiet). Each repetition: Natter without fsync and the floor, Natter with fsync,
# then commitfloor's one-row commit and Natter's rows, both synchronous modes (reps 1-3), or
# without fsync only (reps 4-6). bench/run pins the server to CPU 0, natter-bench to CPU 1.
set -u
OUT=${OUT:-/tmp/r33}
for rep in 1 2 3 4 5 6; do
  NATTER_SQLITE_SYNCHRONOUS=normal bench/run --no-build --no-doc --servers natter,floor \
    --scenarios rooms --reps 1 --out "$OUT/normal-$rep"
  modes="normal"
  if [ "$rep" -le 3 ]; then
    bench/run --no-build --no-doc --servers natter --scenarios rooms --reps 1 --out "$OUT/full-$rep"
    modes="normal full"
  fi
  for mode in $modes; do
    for rows in "" "--natter-rows"; do
      echo "rep $rep $mode rows=$rows: $(taskset -c 0 target/release/examples/commitfloor \
        --synchronous $mode $rows 2>&1 | tail -1)" >> "$OUT/commitfloor.txt"
    done
  done
done
