#!/usr/bin/env bash
# The Python module `cmqtt` (python/): build the abi3 wheel with maturin, install it into a
# fresh venv, run the pytest suite against the emulator and mosquitto (treating "no tests ran"
# as a failure), run examples/python/*.py end to end, and mypy --strict the examples.
#
# Called by .ci/run after the workspace is built; runs on its own too: bash ci/python.sh
# Needs: python3 (3.9+) with venv, mosquitto, the Rust toolchain.
# Env: PYTHON (interpreter, default python3), CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$TARGET/py-venv
WHEELS=$TARGET/py-wheels
WORK=$(mktemp -d /tmp/cmqtt-py-ci.XXXXXX)
PIDS=()

step() { printf '\n--- python: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
die() { echo "PYTHON CI FAILED: $*" >&2; exit 1; }
cleanup() {
  local pid
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

step "venv"
PY=${PYTHON:-python3}
"$PY" --version
rm -rf "$VENV"
if ! "$PY" -m venv "$VENV" 2>"$WORK/venv.err"; then
  cat "$WORK/venv.err" >&2
  echo "python3 -m venv failed: installing python3-venv" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  PY=/usr/bin/python3
  "$PY" -m venv "$VENV" || die "cannot create a venv"
fi
VPY=$VENV/bin/python
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q "maturin>=1.9.4,<2" || die "pip install maturin"

step "build the emulator (cmqtt sim)"
cargo build --release -p cmqtt-cli || die "cargo build -p cmqtt-cli"
export CMQTT_BIN=$TARGET/release/cmqtt
[ -x "$CMQTT_BIN" ] || die "no $CMQTT_BIN"

step "maturin build --release (wheel)"
rm -rf "$WHEELS"
"$VENV/bin/maturin" build --release -m python/Cargo.toml -i "$VPY" -o "$WHEELS" || die "maturin build"
ls -l "$WHEELS"
shopt -s nullglob
wheels=("$WHEELS"/cmqtt-*-abi3-*.whl)
shopt -u nullglob
[ ${#wheels[@]} -eq 1 ] || die "expected one abi3 wheel in $WHEELS, found ${#wheels[@]}"

step "install the wheel + test tools"
"$VPY" -m pip install -q "${wheels[0]}" pytest "paho-mqtt>=2" mypy || die "pip install"
# The tests must see the installed wheel, not python/cmqtt from the source tree.
(cd "$WORK" && "$VPY" -c 'import cmqtt, sys; f = cmqtt.__file__; print("cmqtt", cmqtt.__version__, "from", f); sys.exit(0 if "site-packages" in f else 1)') \
  || die "cmqtt is not imported from the installed wheel"

step "pytest python/tests"
set +e
"$VENV/bin/pytest" python/tests -q -p no:cacheprovider
rc=$?
set -e
[ $rc -eq 5 ] && die "pytest ran no tests"
[ $rc -eq 0 ] || die "pytest (exit $rc)"

step "mypy --strict examples/python"
"$VENV/bin/mypy" --strict --no-incremental --cache-dir "$WORK/mypy" examples/python/*.py || die "mypy --strict"

step "examples/python against the emulator and mosquitto"
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQ" ] || die "mosquitto is not installed"
PORT=$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
  [ "$(id -u)" -eq 0 ] && echo "user root"
  echo "listener $PORT 127.0.0.1"
  echo "allow_anonymous true"
  echo "persistence false"
} >"$WORK/mosquitto.conf"
"$MOSQ" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)

start_sim() { # start_sim MODEL OUTFILE VAR: sets VAR to the device once the emulator is ready
  "$CMQTT_BIN" sim --model "$1" >"$2" 2>/dev/null &
  PIDS+=($!)
  local i
  for i in $(seq 1 200); do
    if grep -q '^ready: ' "$2" 2>/dev/null; then
      printf -v "$3" '%s' "$(sed -n 's/^ready: //p' "$2" | head -1)"
      return 0
    fi
    sleep 0.05
  done
  return 1
}
start_sim sim7672x "$WORK/sim-sub.out" SUB_PORT || die "cmqtt sim (subscriber) did not start"
start_sim a7600 "$WORK/sim-pub.out" PUB_PORT || die "cmqtt sim (publisher) did not start"
for i in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done
export CMQTT_SERVER=tcp://127.0.0.1:$PORT
TOPIC=ci/python/$$
"$VPY" examples/python/subscribe.py --port "$SUB_PORT" --count 1 --idle 60 \
  --ready-file "$WORK/subscribed" "$TOPIC/#" >"$WORK/sub.out" 2>"$WORK/sub.err" &
SUB=$!
PIDS+=($SUB)
for i in $(seq 1 600); do
  [ -e "$WORK/subscribed" ] && break
  kill -0 "$SUB" 2>/dev/null || { cat "$WORK/sub.err" >&2; die "subscribe.py exited early"; }
  sleep 0.05
done
[ -e "$WORK/subscribed" ] || die "subscribe.py did not subscribe"
CMQTT_PORT=$PUB_PORT "$VPY" examples/python/publish.py "$TOPIC/hello" "hello from publish.py" \
  || die "publish.py"
wait "$SUB" || { cat "$WORK/sub.err" >&2; die "subscribe.py failed"; }
cat "$WORK/sub.out"
grep -qx "$TOPIC/hello hello from publish.py" "$WORK/sub.out" || die "subscribe.py did not print the message"

step "ok"
