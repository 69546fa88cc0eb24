"""Fixtures: a mosquitto broker on 127.0.0.1 (free port), the modem emulator
(`cmqtt sim --model ...` on a pseudo-terminal) and paho-mqtt as the independent peer.

Environment:
    CMQTT_BIN      the `cmqtt` binary (default: <repo>/target/release/cmqtt, built if missing)
    MOSQUITTO      the mosquitto binary (default: from PATH or /usr/sbin/mosquitto)
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = ["a7600", "sim7600", "sim7672x"]
MAX_PAYLOAD = {"a7600": 10240, "sim7600": 10240, "sim7672x": 4096}
USER, PASSWORD = "alice", "wonderland"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def stop_process(p: subprocess.Popen[Any]) -> None:
    """Stops a child we started, by its PID: SIGTERM, then SIGKILL."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


# ---- mosquitto ----------------------------------------------------------------------------


@dataclass
class Broker:
    port: int  # anonymous listener
    auth_port: int  # listener that requires USER/PASSWORD

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"tcp://127.0.0.1:{self.auth_port}"


def mosquitto_binary() -> str:
    found = os.environ.get("MOSQUITTO") or shutil.which("mosquitto")
    if not found and os.path.exists("/usr/sbin/mosquitto"):
        found = "/usr/sbin/mosquitto"
    if not found:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
    return found


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    exe = mosquitto_binary()
    d = Path(tempfile.mkdtemp(prefix="cmqtt-py-mosq-"))
    pwfile = d / "passwd"
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([passwd, "-b", "-c", str(pwfile), USER, PASSWORD], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(pwfile, 0o600)
    port, auth_port = free_port(), free_port()
    lines = [
        "per_listener_settings true",
        "persistence false",
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"listener {auth_port} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {pwfile}",
    ]
    if os.geteuid() == 0:
        # mosquitto 2 drops privileges to user "mosquitto" otherwise, and then cannot read
        # the password file in our private temporary directory.
        lines.insert(0, "user root")
    conf = d / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    log = open(d / "mosquitto.log", "wb")
    p = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        wait_port(auth_port)
        yield Broker(port, auth_port)
    finally:
        stop_process(p)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


# ---- the emulator -------------------------------------------------------------------------


def cmqtt_binary() -> Path:
    env = os.environ.get("CMQTT_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    exe = target / "release" / "cmqtt"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "cmqtt-cli"], cwd=REPO, check=True)
    return exe


@dataclass
class Sim:
    model: str
    port: str
    process: subprocess.Popen[bytes]


def start_sim(model: str, *extra: str) -> Sim:
    p = subprocess.Popen(
        [str(cmqtt_binary()), "sim", "--model", model, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert p.stdout is not None
    got: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: got.put(p.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        line = got.get(timeout=20).decode().strip()
    except queue.Empty:
        stop_process(p)
        raise RuntimeError("cmqtt sim printed no ready line in 20 s")
    if not line.startswith("ready: "):
        stop_process(p)
        raise RuntimeError(f"cmqtt sim: unexpected first line {line!r}")
    return Sim(model, line[len("ready: "):], p)


@pytest.fixture(params=MODELS)
def sim(request: pytest.FixtureRequest) -> Iterator[Sim]:
    """An emulated modem of every model, fresh for each test."""
    s = start_sim(request.param)
    try:
        yield s
    finally:
        stop_process(s.process)


@pytest.fixture
def sim_a7600() -> Iterator[Sim]:
    s = start_sim("a7600")
    try:
        yield s
    finally:
        stop_process(s.process)


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    started: list[Sim] = []

    def make(model: str, *extra: str) -> Sim:
        s = start_sim(model, *extra)
        started.append(s)
        return s

    yield make
    for s in started:
        stop_process(s.process)


# ---- paho-mqtt, the independent peer ------------------------------------------------------


class Peer:
    """A paho-mqtt client that records what it receives."""

    def __init__(self, broker: Broker, client_id: Optional[str] = None) -> None:
        import paho.mqtt.client as mqtt

        self.received: queue.Queue[tuple[str, bytes, int, bool]] = queue.Queue()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"peer-{uuid.uuid4().hex[:8]}",
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError("paho peer did not connect")

    def _on_message(self, _c: Any, _u: Any, m: Any) -> None:
        self.received.put((m.topic, bytes(m.payload), m.qos, bool(m.retain)))

    def subscribe(self, topic: str, qos: int = 2) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic, qos)
        if not self._subscribed.wait(10):
            raise RuntimeError("paho peer: no SUBACK")

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def get(self, timeout: float = 10.0) -> tuple[str, bytes, int, bool]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def peer(broker: Broker) -> Iterator[Peer]:
    p = Peer(broker)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so tests never see each other's messages."""
    return f"t/{uuid.uuid4().hex[:10]}"


def pytest_report_header(config: pytest.Config) -> str:
    import cmqtt

    return f"cmqtt {cmqtt.__version__} from {Path(cmqtt.__file__).parent} (python {sys.version.split()[0]})"
