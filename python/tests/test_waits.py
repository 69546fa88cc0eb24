"""How blocking calls wait (python/src/wait.rs): on the calling thread, with no thread per call
and no periodic wakeups while idle, and still interrupted at once by Ctrl-C on the main thread;
other signal handlers run during a wait without costing an AT command."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import cmqtt
from conftest import Broker, Peer, Sim, stop_process

FAST = (0.05, 0.5, 0.2)  # supervisor backoff: initial, max, jitter
# How soon KeyboardInterrupt must follow SIGINT (the target is ~0.1 s; the margin is for a
# loaded CI machine).
PROMPT = 0.5


def cid() -> str:
    return f"py-{uuid.uuid4().hex[:10]}"


def tids() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def ctx_switches(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/status") as f:
        return sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)


class Kill:
    """Sends `sig` to this process after `delay` s (SIGINT: what Ctrl-C in a terminal does)
    and remembers when."""

    def __init__(self, delay: float, sig: int = signal.SIGINT) -> None:
        self.at: Optional[float] = None
        self._sig = sig
        self._t = threading.Timer(delay, self._fire)
        self._t.daemon = True
        self._t.start()

    def _fire(self) -> None:
        self.at = time.monotonic()
        os.kill(os.getpid(), self._sig)

    def latency(self) -> float:
        assert self.at is not None, "the signal was not sent"
        return time.monotonic() - self.at


def interrupted(call: Callable[[], Any], delay: float = 0.3) -> float:
    """Runs `call` (which must block), sends SIGINT after `delay` s; returns how long after the
    signal KeyboardInterrupt came."""
    assert threading.current_thread() is threading.main_thread()
    k = Kill(delay)
    with pytest.raises(KeyboardInterrupt):
        call()
    return k.latency()


@pytest.fixture
def connected(sim_a7600: Sim, broker: Broker) -> Iterator[tuple[cmqtt.Modem, cmqtt.Client]]:
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.connect(broker.url)
            yield modem, c


# ---- a broker that accepts and then stays silent --------------------------------------------


class MuteBroker:
    """A TCP server speaking just enough MQTT: answers CONNECT with CONNACK when `connack`, and
    otherwise never answers (no PUBACK, no SUBACK): a publish with QoS 1 waits for its PUBACK."""

    def __init__(self, connack: bool) -> None:
        self.connack = connack
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = False
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c: socket.socket) -> None:
        try:
            first = c.recv(1)
            if first and first[0] >> 4 == 1 and self.connack:  # CONNECT
                c.sendall(b"\x20\x02\x00\x00")
            while c.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


@pytest.fixture
def mute() -> Iterator[MuteBroker]:
    b = MuteBroker(connack=True)
    try:
        yield b
    finally:
        b.close()


def offline(tmp_path: Path, **kw: Any) -> cmqtt.Supervisor:
    """A supervisor whose port does not exist: never connected; publishes wait in the outbox."""
    kw.setdefault("backoff", FAST)
    return cmqtt.Supervisor(str(tmp_path / "no-such-port"), "tcp://127.0.0.1:1883", cid(), **kw)


# ---- no thread per call, no wakeups while idle ----------------------------------------------


def test_blocking_calls_start_no_thread(connected: tuple[cmqtt.Modem, cmqtt.Client]) -> None:
    """20 blocked recv() calls and 20 publishes on the main thread: no thread appears, not
    even for the duration of a call (a sampler thread lists /proc/self/task meanwhile)."""
    _, c = connected
    c.recv(timeout=0.05)  # whatever the first call starts (the signal watcher) is there now
    c.publish("waits/warmup", b"x", qos=1)
    seen: set[int] = set()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.update(tids())
            time.sleep(0.002)

    s = threading.Thread(target=sample)
    s.start()
    time.sleep(0.05)
    try:
        before = tids()
        for _ in range(20):
            assert c.recv(timeout=0.05) is None
        for i in range(20):
            c.publish("waits/pub", f"{i}".encode(), qos=1)
        after = tids()
    finally:
        stop.set()
        s.join()
    assert after == before
    assert seen <= before, f"threads came and went during the calls: {sorted(seen - before)}"


def test_blocked_recv_does_not_wake(connected: tuple[cmqtt.Modem, cmqtt.Client]) -> None:
    """The main thread blocked in recv() sleeps: no wakeups to check for signals (the old
    design woke every 50 ms)."""
    _, c = connected
    c.recv(timeout=0.05)
    main = threading.get_native_id()
    counts: list[int] = []

    def probe() -> None:
        time.sleep(0.2)
        counts.append(ctx_switches(main))
        time.sleep(1.0)
        counts.append(ctx_switches(main))

    p = threading.Thread(target=probe)
    p.start()
    assert c.recv(timeout=1.5) is None
    p.join()
    assert counts[1] - counts[0] <= 3, f"{counts[1] - counts[0]} wakeups in 1 s"


def test_threads_blocked_in_recv_start_no_thread(
    connected: tuple[cmqtt.Modem, cmqtt.Client],
) -> None:
    """recv() on other threads runs there: 4 threads, 5 calls each, no extra thread."""
    _, c = connected
    c.recv(timeout=0.01)
    before = tids()
    counts: list[int] = []
    gate = threading.Barrier(5)

    def receiver() -> None:
        gate.wait()
        for _ in range(5):
            c.recv(timeout=0.05)

    ts = [threading.Thread(target=receiver) for _ in range(4)]
    for t in ts:
        t.start()
    gate.wait()
    time.sleep(0.1)
    counts.append(len(tids()))
    for t in ts:
        t.join()
    assert counts[0] == len(before) + 4


# ---- Ctrl-C interrupts every kind of blocking call at once ----------------------------------


def test_ctrl_c_interrupts_recv_promptly(connected: tuple[cmqtt.Modem, cmqtt.Client]) -> None:
    _, c = connected
    for _ in range(3):
        assert interrupted(lambda: c.recv(timeout=None)) < PROMPT
    # The client is still usable afterwards.
    c.publish("waits/after", b"x", qos=1)


def test_ctrl_c_interrupts_message_iteration_promptly(
    connected: tuple[cmqtt.Modem, cmqtt.Client],
) -> None:
    _, c = connected

    def iterate() -> None:
        for _ in c.messages():
            pass

    assert interrupted(iterate) < PROMPT


def test_ctrl_c_interrupts_a_publish_waiting_for_its_puback(
    sim_a7600: Sim, mute: MuteBroker
) -> None:
    modem = cmqtt.Modem(sim_a7600.port)
    try:
        modem.start()
        c = modem.client(0, cid())
        c.connect(mute.url)
        assert interrupted(lambda: c.publish("waits/q1", b"never acked", qos=1), 0.5) < PROMPT
    finally:
        # The emulator answers no AT command while its publish waits for the broker: stop it
        # rather than wait for the release to time out.
        stop_process(sim_a7600.process)
        modem.close()


def test_ctrl_c_interrupts_a_connect_waiting_for_connack(sim_a7600: Sim) -> None:
    silent = MuteBroker(connack=False)
    modem = cmqtt.Modem(sim_a7600.port)
    try:
        modem.start()
        c = modem.client(0, cid())
        assert interrupted(lambda: c.connect(silent.url, timeout=60), 0.5) < PROMPT
    finally:
        stop_process(sim_a7600.process)
        modem.close()
        silent.close()


def test_ctrl_c_interrupts_supervisor_waits(tmp_path: Path) -> None:
    with offline(tmp_path) as sup:
        assert interrupted(lambda: sup.wait_connected(timeout=None)) < PROMPT
        d = sup.publish("waits/sup", b"x", qos=1)
        assert interrupted(lambda: sup.flush(timeout=None)) < PROMPT
        assert interrupted(lambda: d.wait(timeout=None)) < PROMPT
        assert interrupted(lambda: d.wait_delivered(timeout=None)) < PROMPT
        assert interrupted(lambda: sup.recv(timeout=None)) < PROMPT
        assert d.status == "queued"


def test_ctrl_c_interrupts_a_supervisor_publish_waiting_for_room(tmp_path: Path) -> None:
    with offline(tmp_path, outbox_capacity=1, pub_timeout=60) as sup:
        sup.publish("waits/full", b"1", qos=1)
        assert interrupted(lambda: sup.publish("waits/full", b"2", qos=1)) < PROMPT
        assert sup.outbox_len in (1, 2)


def test_ctrl_c_interrupts_opening_a_silent_port() -> None:
    master, slave = os.openpty()
    try:
        assert interrupted(lambda: cmqtt.Modem(os.ttyname(slave), timeout=30), 0.5) < PROMPT
    finally:
        os.close(master)
        os.close(slave)


# ---- other signal handlers ------------------------------------------------------------------


@pytest.fixture
def sigusr1() -> Iterator[list[float]]:
    """A SIGUSR1 handler that records when it ran and raises nothing."""
    ran: list[float] = []
    old = signal.signal(signal.SIGUSR1, lambda *_: ran.append(time.monotonic()))
    try:
        yield ran
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_a_handler_that_does_not_raise_runs_during_a_wait_which_goes_on(
    connected: tuple[cmqtt.Modem, cmqtt.Client], sigusr1: list[float]
) -> None:
    _, c = connected
    t0 = time.monotonic()
    k = Kill(0.3, signal.SIGUSR1)
    assert c.recv(timeout=1.2) is None
    elapsed = time.monotonic() - t0
    assert len(sigusr1) == 1
    assert k.at is not None and sigusr1[0] - k.at < PROMPT, "the handler ran late"
    assert elapsed >= 1.1, f"the wait ended early ({elapsed:.2f} s)"


def test_a_handler_that_does_not_raise_does_not_cost_the_publish(
    sim_factory: Any, broker: Broker, peer: Peer, topic_prefix: str, sigusr1: list[float]
) -> None:
    """A 10 KiB publish at 38400 baud takes ~3 s; SIGUSR1 (handler raising nothing) comes in
    the middle: the publish completes and is delivered, the handler runs (once it returned)."""
    sim: Sim = sim_factory("a7600", "--baud", "38400")
    topic = f"{topic_prefix}/usr1"
    peer.subscribe(topic)
    payload = bytes(range(256)) * 40
    with cmqtt.Modem(sim.port) as modem:
        modem.start()
        with modem.client(0, cid(), check_utf8=False) as c:
            c.connect(broker.url)
            Kill(0.5, signal.SIGUSR1)
            c.publish(topic, payload, qos=1)
            assert len(sigusr1) == 1
            assert peer.get(timeout=20)[1] == payload


def test_the_wakeup_fd_in_place_is_kept_and_hears_the_signals(
    connected: tuple[cmqtt.Modem, cmqtt.Client], sigusr1: list[float]
) -> None:
    """asyncio and others learn of signals through signal.set_wakeup_fd: a blocking call puts
    its own fd in place only while it runs, passes every signal number on to the one it found,
    and puts that one back."""
    _, c = connected
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    old = signal.set_wakeup_fd(w.fileno())
    try:
        Kill(0.2, signal.SIGUSR1)
        assert c.recv(timeout=0.6) is None
        assert signal.set_wakeup_fd(w.fileno()) == w.fileno(), "the wakeup fd was not put back"
        deadline = time.monotonic() + 2
        got = b""
        while not got and time.monotonic() < deadline:
            try:
                got = r.recv(16)
            except BlockingIOError:
                time.sleep(0.01)
        assert got == bytes([signal.SIGUSR1])
        assert len(sigusr1) == 1
    finally:
        signal.set_wakeup_fd(old)
        r.close()
        w.close()


# ---- waking other threads -------------------------------------------------------------------


def test_release_wakes_a_thread_blocked_in_recv(
    connected: tuple[cmqtt.Modem, cmqtt.Client],
) -> None:
    _, c = connected
    results: list[object] = []
    t = threading.Thread(target=lambda: results.append(c.recv(timeout=None)))
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    c.release()
    t.join(5)
    assert not t.is_alive(), "recv(timeout=None) kept waiting after release()"
    assert results == [None]
    assert time.monotonic() - t0 < 2.0


def test_close_wakes_a_thread_blocked_in_supervisor_recv(tmp_path: Path) -> None:
    sup = offline(tmp_path)
    results: list[object] = []
    t = threading.Thread(target=lambda: results.append(sup.recv(timeout=None)))
    t.start()
    time.sleep(0.3)
    sup.close()
    t.join(5)
    assert not t.is_alive(), "Supervisor.recv(timeout=None) kept waiting after close()"
    assert results == [None]
