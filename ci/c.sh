#!/usr/bin/env bash
# ci/c.sh - the C ABI end to end: libcmqtt.so/.a, include/cmqtt.h, cmqtt.pc, the C and C++
# examples and the C misuse tests, against the emulator (`cmqtt sim`) and a real mosquitto.
#
# Assumes `cargo build --release --workspace` ran (uses target/release: libcmqtt.so, libcmqtt.a,
# the `cmqtt` binary, and the header cbindgen generated into cmqtt-ffi's OUT_DIR).
#
#  1. checks that include/cmqtt.h is what ffi/src generates;
#  2. installs the library into a temporary prefix with ffi/install.sh and checks cmqtt.pc;
#  3. builds examples/c/publish.c, examples/c/subscribe.c, examples/c/supervised.c,
#     examples/cpp/publish.cpp and ffi/tests/c/misuse.c with -Wall -Wextra -Werror, each against
#     the shared AND the static library (flags from pkg-config);
#  4. starts mosquitto on 127.0.0.1 at a free port, and a fresh emulator for every run;
#  5. runs every program in both builds; what the examples publish is checked with an
#     independent mosquitto_sub, what subscribe.c receives comes from mosquitto_pub;
#     supervised.c also runs its fault drill through a restart of a second, persistent
#     mosquitto (publishes made while it is down must arrive after it is back);
#  6. runs publish.c, supervised.c and the misuse tests under valgrind --leak-check=full: no
#     errors, no definite leaks.
# Every process it starts is stopped by PID on exit. Exits non-zero on the first failure, after
# printing the logs that explain it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REL=${CARGO_TARGET_DIR:-$ROOT/target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmqtt-c.XXXXXX")
BROKER_PID=""
SIM_PID=""
BG_PIDS=()

say() { printf '\n== %s\n' "$*"; }

stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid"; done
  stop_pid "$SIM_PID"
  stop_pid "$BROKER_PID"
  if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "ci/c.sh: logs kept in $WORK" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show() { # show FILE...: print files (logs) to stderr
  for f in "$@"; do
    [ -f "$f" ] || continue
    echo "----- $f" >&2
    tail -n 80 "$f" >&2
  done
}

die() {
  echo "ci/c.sh FAILED: $*" >&2
  show "$WORK"/sim.err "$WORK"/broker.log
  exit 1
}

# ---- tools --------------------------------------------------------------------------------------

need=()
command -v cc >/dev/null || need+=(gcc)
command -v c++ >/dev/null || need+=(g++)
command -v valgrind >/dev/null || need+=(valgrind)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
CC=${CC:-cc}
CXX=${CXX:-c++}
echo "cc: $($CC --version | head -n 1)"
echo "c++: $($CXX --version | head -n 1)"
echo "valgrind: $(valgrind --version)"
echo "mosquitto: $($MOSQUITTO -h 2>/dev/null | head -n 1 || true)"

for f in "$REL/libcmqtt.so" "$REL/libcmqtt.a" "$REL/cmqtt"; do
  [ -f "$f" ] || die "$f is missing: run 'cargo build --release --workspace' first"
done

# ---- 1. the header is current -------------------------------------------------------------------

say "include/cmqtt.h is current"
generated=$(ls -t "$REL"/build/cmqtt-ffi-*/out/cmqtt.h 2>/dev/null | head -n 1 || true)
[ -n "$generated" ] || die "no generated header under $REL/build/cmqtt-ffi-*/out (build cmqtt-ffi)"
if ! cmp -s "$generated" include/cmqtt.h; then
  diff -u include/cmqtt.h "$generated" | head -n 40 >&2 || true
  die "include/cmqtt.h is stale: run 'CMQTT_REGENERATE_HEADER=1 cargo build -p cmqtt-ffi' and commit it"
fi
echo "ok: $generated == include/cmqtt.h"

# ---- 2. install + pkg-config --------------------------------------------------------------------

say "ffi/install.sh --prefix $WORK/prefix"
PREFIX=$WORK/prefix
ffi/install.sh --prefix "$PREFIX" --target-dir "$(dirname "$REL")"
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
version=$(pkg-config --modversion cmqtt) || die "pkg-config does not find cmqtt.pc"
echo "pkg-config: cmqtt $version; cflags: $(pkg-config --cflags cmqtt); libs: $(pkg-config --libs cmqtt)"
echo "static libs: $(pkg-config --static --libs cmqtt)"
[ "$version" = "$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)" ] \
  || die "cmqtt.pc version $version is not the workspace version"

# ---- 3. build -----------------------------------------------------------------------------------

say "building the examples and tests (-Wall -Wextra -Werror), shared and static"
CFLAGS_COMMON=(-std=c11 -Wall -Wextra -Werror -pedantic -g -O1)
CXXFLAGS_COMMON=(-std=c++17 -Wall -Wextra -Werror -pedantic -g -O1)
read -r -a PC_CFLAGS <<<"$(pkg-config --cflags cmqtt)"
read -r -a PC_LIBS <<<"$(pkg-config --libs cmqtt)"
# Static: the same flags with libcmqtt.a named explicitly (-lcmqtt would pick the .so).
read -r -a PC_STATIC <<<"$(pkg-config --static --libs cmqtt | sed 's/-lcmqtt\b/-l:libcmqtt.a/')"
BIN=$WORK/bin
mkdir -p "$BIN/shared" "$BIN/static"
build() { # build KIND NAME SOURCE
  local kind=$1 name=$2 src=$3 out="$BIN/$1/$2" compiler flags libs
  if [[ $src == *.cpp ]]; then compiler=$CXX; flags=("${CXXFLAGS_COMMON[@]}"); else compiler=$CC; flags=("${CFLAGS_COMMON[@]}"); fi
  if [ "$kind" = shared ]; then
    libs=("${PC_LIBS[@]}" "-Wl,-rpath,$PREFIX/lib" -lpthread)
  else
    libs=("${PC_STATIC[@]}")
  fi
  echo "$compiler ${flags[*]} ${PC_CFLAGS[*]} $src -o $out ${libs[*]}"
  "$compiler" "${flags[@]}" "${PC_CFLAGS[@]}" "$src" -o "$out" "${libs[@]}" || die "building $src ($kind)"
  if [ "$kind" = shared ]; then
    readelf -d "$out" | grep -q 'NEEDED.*libcmqtt\.so' || die "$out does not link libcmqtt.so"
  else
    if readelf -d "$out" | grep -q 'NEEDED.*libcmqtt'; then die "$out links libcmqtt dynamically"; fi
  fi
}
for kind in shared static; do
  build "$kind" publish examples/c/publish.c
  build "$kind" subscribe examples/c/subscribe.c
  build "$kind" supervised examples/c/supervised.c
  build "$kind" publish_cpp examples/cpp/publish.cpp
  build "$kind" misuse ffi/tests/c/misuse.c
done

# ---- 4. broker and emulator ---------------------------------------------------------------------

say "mosquitto on 127.0.0.1 at a free port"
start_broker() {
  local port
  for _ in $(seq 1 20); do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    cat >"$WORK/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stdout
log_type all
EOF
    "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/broker.log" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 1 50); do
      if ! kill -0 "$BROKER_PID" 2>/dev/null; then break; fi
      if mosquitto_pub -h 127.0.0.1 -p "$port" -t cmqtt/ci/probe -m up 2>/dev/null; then
        BROKER_PORT=$port
        return 0
      fi
      sleep 0.1
    done
    stop_pid "$BROKER_PID"; BROKER_PID=""
  done
  return 1
}
start_broker || die "mosquitto did not start"
SERVER=tcp://127.0.0.1:$BROKER_PORT
echo "broker: $SERVER (pid $BROKER_PID)"

start_sim() { # a fresh emulator per run: sets SIM_PORT
  stop_pid "$SIM_PID"; SIM_PID=""
  : >"$WORK/sim.out"
  "$REL/cmqtt" sim --model a7600 >"$WORK/sim.out" 2>"$WORK/sim.err" &
  SIM_PID=$!
  for _ in $(seq 1 200); do
    SIM_PORT=$(sed -n 's/^ready: //p' "$WORK/sim.out" | head -n 1)
    [ -n "$SIM_PORT" ] && return 0
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "the emulator did not print 'ready: <pty>'"
}

# An independent subscriber: starts mosquitto_sub on FILTER and proves it is subscribed (a probe
# published under PROBE_TOPIC arrives) before the program under test runs.
SUB_PID=""
start_peer() { # start_peer OUT FILTER PROBE_TOPIC
  local out=$1 filter=$2 probe=$3
  stop_pid "$SUB_PID"
  : >"$out"
  mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -v -t "$filter" -W 300 >"$out" 2>&1 &
  SUB_PID=$!
  BG_PIDS+=("$SUB_PID")
  for _ in $(seq 1 100); do
    mosquitto_pub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -t "$probe" -m probe 2>/dev/null || true
    grep -qxF "$probe probe" "$out" && return 0
    sleep 0.1
  done
  show "$out"
  die "mosquitto_sub on $filter is not receiving"
}
expect_peer() { # expect_peer LINE...: the subscriber prints every LINE within 30 s; then it stops
  local out=$WORK/peer.out line
  for line in "$@"; do
    for _ in $(seq 1 300); do grep -qxF -- "$line" "$out" && break; sleep 0.1; done
    grep -qxF -- "$line" "$out" || { show "$out"; die "mosquitto_sub did not see '$line'"; }
  done
  stop_pid "$SUB_PID"; SUB_PID=""
}

# ---- 5. the runs --------------------------------------------------------------------------------

run_publish() { # run_publish KIND [RUNNER...]
  local kind=$1; shift
  local topic="cmqtt/ci/c/publish-$kind" out="$WORK/publish-$kind.out"
  start_sim
  start_peer "$WORK/peer.out" "cmqtt/ci/c/#" "cmqtt/ci/c/probe"
  "$@" "$BIN/$kind/publish" -p "$SIM_PORT" -s "$SERVER" -t "$topic" -m "hello from C" -n 3 \
    >"$out" 2>&1 || { show "$out"; die "publish ($kind) failed"; }
  expect_peer "$topic hello from C #1" "$topic hello from C #2" "$topic hello from C #3"
  echo "ok: publish ($kind${1:+, under $1}): mosquitto_sub saw the 3 messages"
}

run_publish_cpp() { # run_publish_cpp KIND
  local kind=$1 topic="cmqtt/ci/c/cpp-$1" out="$WORK/publish_cpp-$1.out"
  start_sim
  start_peer "$WORK/peer.out" "cmqtt/ci/c/#" "cmqtt/ci/c/probe"
  "$BIN/$kind/publish_cpp" "$SIM_PORT" "$SERVER" "$topic" 3 >"$out" 2>&1 \
    || { show "$out"; die "publish_cpp ($kind) failed"; }
  expect_peer "$topic hello from C++ #1" "$topic hello from C++ #2" "$topic hello from C++ #3"
  echo "ok: publish_cpp ($kind): mosquitto_sub saw the 3 messages"
}

run_subscribe() { # run_subscribe KIND: two filters; -e echoes every message from the callback
  local kind=$1 base="cmqtt/ci/c/sub-$1" out="$WORK/subscribe-$1.out"
  start_sim
  start_peer "$WORK/peer.out" "echo/$base/#" "echo/$base/probe"
  "$BIN/$kind/subscribe" -p "$SIM_PORT" -s "$SERVER" -t "$base/a" -t "$base/b" -n 2 -w 60 -e \
    >"$out" 2>&1 &
  local pid=$!
  BG_PIDS+=("$pid")
  for _ in $(seq 1 300); do
    grep -q '^subscribed' "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^subscribed' "$out" || { show "$out"; die "subscribe ($kind) did not subscribe"; }
  mosquitto_pub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -t "$base/a" -m "to a from mosquitto_pub"
  mosquitto_pub -h 127.0.0.1 -p "$BROKER_PORT" -q 1 -t "$base/b" -m "to b from mosquitto_pub"
  wait "$pid" || { show "$out"; die "subscribe ($kind) failed"; }
  grep -qF "message on $base/a (client 0, 23 bytes): to a from mosquitto_pub" "$out" \
    || { show "$out"; die "subscribe ($kind) did not print the message to a"; }
  grep -qF "message on $base/b (client 0, 23 bytes): to b from mosquitto_pub" "$out" \
    || { show "$out"; die "subscribe ($kind) did not print the message to b"; }
  expect_peer "echo/$base/a to a from mosquitto_pub" "echo/$base/b to b from mosquitto_pub"
  echo "ok: subscribe ($kind): both messages by callback, both echoes seen by mosquitto_sub"
}

run_supervised() { # run_supervised KIND [RUNNER...]: QoS 1 publishes with delivery tickets
  local kind=$1; shift
  local topic="cmqtt/ci/c/supervised-$kind" out="$WORK/supervised-$kind${1:+-valgrind}.out"
  start_sim
  start_peer "$WORK/peer.out" "cmqtt/ci/c/#" "cmqtt/ci/c/probe"
  "$@" "$BIN/$kind/supervised" -p "$SIM_PORT" -s "$SERVER" -t "$topic" -m "supervised" -n 5 \
    -w 60 >"$out" 2>&1 || { show "$out"; die "supervised ($kind) failed"; }
  grep -qx "delivered 5 message(s); outbox 0" "$out" || { show "$out"; die "supervised ($kind): not every ticket delivered"; }
  grep -qx "event: state starting" "$out" && grep -qx "event: state connected" "$out" \
    || { show "$out"; die "supervised ($kind): state events missing"; }
  grep -qx "event: state stopped" "$out" || { show "$out"; die "supervised ($kind): no stopped event"; }
  expect_peer "$topic supervised #1" "$topic supervised #2" "$topic supervised #3" \
    "$topic supervised #4" "$topic supervised #5"
  echo "ok: supervised ($kind${1:+, under $1}): 5 tickets delivered, mosquitto_sub saw the 5 messages"
}

# The fault drill: a second mosquitto that keeps its state (persistence), so that an independent
# subscriber with a persistent session misses nothing while it is down; supervised.c publishes
# half, the broker stops, the other half is published while disconnected (queued in the outbox),
# the broker comes back on the same port, every ticket must be delivered and seen.
DRILL_PID=""
start_drill_broker() { # start_drill_broker PORT
  {
    [ "$(id -u)" -eq 0 ] && echo "user root"  # else mosquitto 2 cannot write its database here
    echo "listener $1 127.0.0.1"
    echo "allow_anonymous true"
    echo "persistence true"
    echo "persistence_location $WORK/drill-db/"
    echo "log_dest stdout"
    echo "log_type all"
  } >"$WORK/drill.conf"
  mkdir -p "$WORK/drill-db"
  "$MOSQUITTO" -c "$WORK/drill.conf" >>"$WORK/drill-broker.log" 2>&1 &
  DRILL_PID=$!
  BG_PIDS+=("$DRILL_PID")
  for _ in $(seq 1 50); do
    mosquitto_pub -h 127.0.0.1 -p "$1" -t cmqtt/ci/probe -m up 2>/dev/null && return 0
    sleep 0.1
  done
  show "$WORK/drill-broker.log"
  die "the drill's mosquitto did not start on port $1"
}
run_supervised_drill() { # run_supervised_drill KIND
  local kind=$1 port topic="cmqtt/ci/c/drill-$1" out="$WORK/drill-$1.out" sub="$WORK/drill-sub-$1.out"
  port=$(( BROKER_PORT + 1 ))
  [ "$port" -lt 65535 ] || port=$(( BROKER_PORT - 1 ))
  start_drill_broker "$port"
  start_sim
  : >"$sub"
  mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -c -i "cmqtt-ci-drill-$kind-$$" -v -t "$topic" \
    -W 300 >"$sub" 2>&1 &
  local sub_pid=$!
  BG_PIDS+=("$sub_pid")
  for _ in $(seq 1 100); do
    mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t "$topic" -m probe 2>/dev/null || true
    grep -qxF "$topic probe" "$sub" && break
    sleep 0.1
  done
  grep -qxF "$topic probe" "$sub" || { show "$sub"; die "drill: mosquitto_sub is not receiving"; }
  "$BIN/$kind/supervised" -p "$SIM_PORT" -s "tcp://127.0.0.1:$port" -t "$topic" -m drill -n 10 \
    -f -B 1000 -w 60 >"$out" 2>&1 &
  local pid=$!
  BG_PIDS+=("$pid")
  wait_line() { # wait_line TEXT: supervised.c printed a line starting with TEXT
    for _ in $(seq 1 600); do
      grep -q "^$1" "$out" && return 0
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    show "$out"; die "drill ($kind): no line '$1'"
  }
  wait_line "delivered 5; ready for a fault"
  stop_pid "$DRILL_PID"                             # the broker goes away...
  wait_line "queued 5 while disconnected"           # ...5 publishes wait in the outbox...
  start_drill_broker "$port"                        # ...and it comes back on the same port
  wait "$pid" || { show "$out" "$WORK/drill-broker.log"; die "drill ($kind): supervised failed"; }
  grep -q "^event: lost" "$out" && grep -q "^event: restored" "$out" \
    || { show "$out"; die "drill ($kind): the loss or the restore was not reported"; }
  local i
  for i in $(seq 1 10); do
    for _ in $(seq 1 300); do grep -qxF "$topic drill #$i" "$sub" && break; sleep 0.1; done
    grep -qxF "$topic drill #$i" "$sub" || { show "$sub" "$out"; die "drill ($kind): mosquitto_sub did not see #$i"; }
  done
  stop_pid "$sub_pid"
  stop_pid "$DRILL_PID"
  echo "ok: supervised drill ($kind): broker restarted mid-run, 10/10 delivered and seen ($(grep -c '^event: attempt' "$out") failed attempt(s) while it was down)"
}

run_misuse() { # run_misuse KIND [RUNNER...]
  local kind=$1; shift
  local out="$WORK/misuse-$kind${1:+-valgrind}.out"
  start_sim
  "$@" "$BIN/$kind/misuse" "$SIM_PORT" "$SERVER" >"$out" 2>&1 \
    || { grep -E '^FAIL|^ +(->|last error)' "$out" >&2 || true; show "$out"; die "misuse ($kind) failed"; }
  echo "ok: misuse ($kind${1:+, under $1}): $(tail -n 1 "$out")"
}

for kind in shared static; do
  say "runs against the $kind library"
  run_publish "$kind"
  run_subscribe "$kind"
  run_publish_cpp "$kind"
  run_supervised "$kind"
  run_supervised_drill "$kind"
  run_misuse "$kind"
done

# ---- 6. valgrind --------------------------------------------------------------------------------

say "valgrind: publish, supervised and the misuse tests"
# Errors and definite leaks fail; "possibly lost" does not: the Rust standard library keeps the
# handle of a thread it did not spawn (the C main thread, once std::thread::current() ran on it)
# in TLS behind an offset pointer, which valgrind reports as one "possibly lost" block of 48
# bytes. Still-reachable blocks are process-lifetime statics (result texts, thread-locals).
VALGRIND=(valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
  --error-exitcode=1 --log-file="$WORK/valgrind-%p.log")
vg_check() { # the last valgrind log: no errors, no definite leak
  local log
  log=$(ls -t "$WORK"/valgrind-*.log | head -n 1)
  grep -q 'ERROR SUMMARY: 0 errors' "$log" || { show "$log"; die "valgrind reported errors"; }
  if grep -q 'definitely lost: [1-9]' "$log"; then show "$log"; die "valgrind: definite leak"; fi
  echo "   $(grep -E 'ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== //')"
  echo "   $(grep -E 'definitely lost|All heap blocks were freed' "$log" | head -n 1 | sed 's/^==[0-9]*== //')"
}
run_publish shared "${VALGRIND[@]}"
vg_check
run_supervised shared "${VALGRIND[@]}"
vg_check
run_misuse shared "${VALGRIND[@]}"
vg_check

say "C ABI: all checks passed"
