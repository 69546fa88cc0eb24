#!/usr/bin/env bash
# bench/callgrind.sh [BENCH_BINARY] - deterministic cost of the library's hot paths:
# instructions (valgrind --tool=callgrind) and allocations per publish and per received message,
# on the scripted modem (`cmqtt-bench child-workload`). Unlike times, these do not depend on
# what else the machine is doing, so they compare two builds exactly.
#
# Prints: instructions per QoS 0 publish of 16 B and per received message (the digester's mixed
# stream, 1000 B on average), counted on the library's threads only (the caller and the reader;
# the scripted modem's thread is left out), and the allocation counts.
# The hottest functions of each workload are in target/bench/callgrind/*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/cmqtt-bench}
OUT=${CARGO_TARGET_DIR:-target}/bench/callgrind
mkdir -p "$OUT"
N=${N:-1000}

# run NAME MODE: total instructions of the library's threads (MODE pub, rx or dry: the same
# process doing everything but the library's work)
run() {
  local name=$1 mode=$2
  rm -f "$OUT/$name".out*
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/$name.out" \
    "$BIN" child-workload "$N" "$N" "$mode" >"$OUT/$name.log" 2>"$OUT/$name.valgrind"
  local total=0 f ir
  for f in "$OUT/$name".out-*; do
    # The scripted modem's thread is the instrument, not the library.
    if grep -q 'fake.*serve' "$f"; then continue; fi
    ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$f" | head -n 1)
    total=$((total + ${ir:-0}))
  done
  callgrind_annotate --inclusive=yes "$OUT/$name".out-* 2>/dev/null | head -n 60 >"$OUT/$name.txt" || true
  echo "$total"
}

base=$(run base dry)
pub=$(run publish pub)
rx=$(run receive rx)
echo "instructions per publish (library threads): $(( (pub - base) / N ))"
echo "instructions per received message (library threads): $(( (rx - base) / N ))"
grep -h 'allocs_per' "$OUT/publish.log" "$OUT/receive.log" | sed 's/^/allocations: /'
