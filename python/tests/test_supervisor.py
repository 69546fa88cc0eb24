"""cmqtt.Supervisor: a supervised client with an outbox, against the emulator and mosquitto.

Faults injected from Python: the broker is stopped and started again (a mosquitto of the test's
own, with persistence, so that paho-mqtt with a persistent session misses nothing while it is
away). The emulator's own faults (network loss, modem reset, port vanishing) are exercised by
the Rust end-to-end suite and the soak harness; `cmqtt sim` has no option to inject them.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

import cmqtt
from conftest import Broker, Peer, Sim, free_port, mosquitto_binary, stop_process, wait_port

FAST = (0.05, 0.5, 0.2)  # backoff: initial, max, jitter


def cid() -> str:
    return f"py-sup-{uuid.uuid4().hex[:8]}"


def sigint_after(delay: float) -> threading.Timer:
    t = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    t.daemon = True
    t.start()
    return t


class Events:
    """Collects SupervisorEvents from on_event (any thread)."""

    def __init__(self) -> None:
        self.items: list[cmqtt.SupervisorEvent] = []
        self.threads: set[str] = set()
        self._cv = threading.Condition()

    def __call__(self, e: cmqtt.SupervisorEvent) -> None:
        with self._cv:
            self.items.append(e)
            self.threads.add(threading.current_thread().name)
            self._cv.notify_all()

    def wait_for(self, pred: Any, timeout: float = 30.0) -> cmqtt.SupervisorEvent:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for e in self.items:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such event in {timeout} s; got {self.items!r}")
                self._cv.wait(left)

    def kinds(self) -> list[str]:
        with self._cv:
            return [e.kind for e in self.items]

    def states(self) -> list[Optional[str]]:
        with self._cv:
            return [e.state for e in self.items if e.kind == "state"]


def offline(tmp_path: Path, **kw: Any) -> cmqtt.Supervisor:
    """A supervisor whose port does not exist: it keeps trying; publishes wait in the outbox."""
    kw.setdefault("backoff", FAST)
    return cmqtt.Supervisor(str(tmp_path / "no-such-port"), "tcp://127.0.0.1:1883", cid(), **kw)


# ---- a broker that can be stopped and started again -----------------------------------------


class RestartableBroker:
    """mosquitto with persistence on a fixed port: stop() and start() keep its sessions."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cmqtt-py-restart-"))
        self.port = free_port()
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.dir}/",
        ]
        if os.geteuid() == 0:
            lines.insert(0, "user root")  # else mosquitto 2 cannot write its database here
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = open(self.dir / "mosquitto.log", "ab")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)  # SIGTERM: mosquitto saves its database
            self.proc = None

    def close(self) -> None:
        self.stop()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def restartable() -> Iterator[RestartableBroker]:
    b = RestartableBroker()
    try:
        yield b
    finally:
        b.close()


class PersistentPeer:
    """paho-mqtt with a persistent session (clean_session=False): reconnects by itself and gets
    what was published to its subscriptions while it was away."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"peer-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_connect = lambda c, *a: c.subscribe(topic, 2)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("persistent peer: no SUBACK")

    def collect(self, n: int, timeout: float = 30.0) -> list[bytes]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            out.append(self.received.get(timeout=max(0.1, deadline - time.monotonic()))[1])
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ---- the tests -------------------------------------------------------------------------------


def test_publish_with_tickets_events_and_messages(
    sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str
) -> None:
    out, inbox = f"{topic_prefix}/out", f"{topic_prefix}/in"
    peer.subscribe(f"{out}/#")
    events = Events()
    with cmqtt.Supervisor(
        sim_a7600.port, broker.url, cid(), subscriptions=[f"{inbox}/#"], backoff=FAST,
        connect_timeout=10, on_event=events, check_utf8=False,
    ) as sup:
        assert sup.on_event is events and sup.on_message is None
        assert sup.wait_connected(timeout=20)
        assert sup.state == "connected"
        assert "connected" in repr(sup)
        tickets = [sup.publish(f"{out}/x", f"m{i}".encode(), qos=1) for i in range(10)]
        assert [t.id for t in tickets] == list(range(tickets[0].id, tickets[0].id + 10))
        for t in tickets:
            t.wait_delivered(timeout=30)
            assert (t.status, t.done, t.reason) == ("delivered", True, None)
            assert t.wait(timeout=0) == "delivered"
        got = [peer.get() for _ in range(10)]
        assert got == [(f"{out}/x", f"m{i}".encode(), 1, False) for i in range(10)]
        assert sup.flush(timeout=5) and sup.outbox_len == 0 and sup.pending() == []
        # Binary payload, QoS 2, retain, str payload.
        sup.publish(f"{out}/b", b"\x00\r\nOK\xff", qos=2).wait_delivered(30)
        assert peer.get() == (f"{out}/b", b"\x00\r\nOK\xff", 2, False)
        sup.publish(f"{out}/s", "é", qos=0).wait_delivered(30)
        assert peer.get()[1] == "é".encode()
        # Messages: queued for recv(), then through on_message, then queued again.
        peer.publish(f"{inbox}/a", b"hello", qos=1)
        m = sup.recv(timeout=10)
        assert m is not None and (m.topic, m.payload) == (f"{inbox}/a", b"hello")
        got_cb: queue.Queue[cmqtt.Message] = queue.Queue()
        sup.on_message = got_cb.put
        peer.publish(f"{inbox}/b", b"to the callback", qos=1)
        assert got_cb.get(timeout=10).payload == b"to the callback"
        sup.on_message = None
        sup.subscribe(f"{topic_prefix}/extra", qos=1)
        time.sleep(0.5)  # the subscription is made by the supervisor thread
        peer.publish(f"{topic_prefix}/extra", b"extra", qos=1)
        assert [x.payload for x in sup.messages(timeout=10)][:1] == [b"extra"]
        assert sup.recv(timeout=0) is None
    assert sup.closed and sup.state == "stopped"
    assert "closed" in repr(sup)
    # Every transition was an event, in order; the last one is the stop (on this thread).
    states = events.states()
    assert states[:4] == ["opening", "starting", "connecting", "connected"], states
    assert states[-1] == "stopped"
    assert repr(events.items[-1]) == "SupervisorEvent(kind='state', state='stopped')"
    with pytest.raises(cmqtt.ClosedError):
        sup.publish("x", b"y")
    with pytest.raises(cmqtt.ClosedError):
        sup.recv(timeout=0)
    sup.close()  # idempotent


def test_publishes_made_while_the_broker_is_down_arrive_after_it_returns(
    sim_a7600: Sim, restartable: RestartableBroker, topic_prefix: str
) -> None:
    out, inbox = f"{topic_prefix}/out", f"{topic_prefix}/in"
    peer = PersistentPeer(restartable.port, out)
    events = Events()
    lost = threading.Event()

    def on_event(e: cmqtt.SupervisorEvent) -> None:
        events(e)
        if e.kind == "lost":
            lost.set()

    try:
        with cmqtt.Supervisor(
            sim_a7600.port, restartable.url, cid(), subscriptions=[(inbox, 1)],
            backoff=FAST, connect_timeout=5,
        ) as sup:
            sup.on_event = on_event
            assert sup.wait_connected(timeout=20)
            sup.publish(out, b"m0").wait_delivered(timeout=30)
            assert peer.collect(1) == [b"m0"]

            restartable.stop()
            assert lost.wait(20), f"the loss was not reported: {events.items!r}"
            e = events.wait_for(lambda e: e.kind == "lost")
            assert e.loss == "connection" and e.cause is not None
            assert repr(e) == f"SupervisorEvent(kind='lost', loss='connection', cause={e.cause})"
            tickets = [sup.publish(out, f"m{i}".encode(), qos=1 + i % 2) for i in range(1, 11)]
            time.sleep(0.5)
            assert [t.status for t in tickets] == ["queued"] * 10
            assert sup.outbox_len == 10
            assert sup.state in ("waiting", "connecting")
            events.wait_for(lambda e: e.kind == "attempt_failed" and e.text and e.attempt == 1)
            events.wait_for(lambda e: e.kind == "state" and e.state == "waiting" and e.delay)

            restartable.start()
            for t in tickets:
                t.wait_delivered(timeout=60)
            restored = events.wait_for(lambda e: e.kind == "restored")
            assert restored.attempt is not None and restored.attempt >= 1
            got = set(peer.collect(10, timeout=30))
            assert got == {f"m{i}".encode() for i in range(1, 11)}, "lost or changed messages"
            # The subscription was restored too.
            import paho.mqtt.publish as publish

            publish.single(inbox, b"welcome back", qos=1, hostname="127.0.0.1",
                           port=restartable.port)
            m = sup.recv(timeout=10)
            assert m is not None and m.payload == b"welcome back"
    finally:
        peer.close()
    kinds = events.kinds()
    assert kinds.index("lost") < kinds.index("attempt_failed") < kinds.index("restored")


def test_a_publish_the_modem_refuses_fails_with_a_reason(
    sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str
) -> None:
    """The modem checks UTF-8 by default: a binary payload is refused, retried
    max_send_failures times, then its ticket fails and an event says why; the outbox goes on."""
    peer.subscribe(f"{topic_prefix}/#")
    events = Events()
    with cmqtt.Supervisor(
        sim_a7600.port, broker.url, cid(), backoff=FAST, max_send_failures=2, on_event=events
    ) as sup:
        assert sup.wait_connected(20)
        bad = sup.publish(f"{topic_prefix}/bad", b"\xff\xfe", qos=1)
        good = sup.publish(f"{topic_prefix}/good", b"fine", qos=1)
        with pytest.raises(cmqtt.DeliveryError) as ei:
            bad.wait_delivered(timeout=30)
        assert ei.value.status == "failed" and ei.value.id == bad.id
        assert ei.value.reason and "UTF-8" in ei.value.reason
        assert bad.status == "failed" and bad.reason == ei.value.reason
        good.wait_delivered(timeout=30)
        e = events.wait_for(lambda e: e.kind == "failed")
        assert e.id == bad.id and e.text == bad.reason
    assert peer.get()[:2] == (f"{topic_prefix}/good", b"fine")


def test_outbox_persists_across_close_and_reopen(
    tmp_path: Path, sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str
) -> None:
    path = tmp_path / "outbox.bin"
    peer.subscribe(f"{topic_prefix}/#")
    with offline(tmp_path, outbox_path=path) as sup:
        first = [sup.publish(f"{topic_prefix}/p", f"saved{i}".encode()) for i in range(5)]
        assert sup.outbox_len == 5
    assert [t.status for t in first] == ["queued"] * 5, "tickets outlive their supervisor"
    assert path.stat().st_size > 8
    with cmqtt.Supervisor(
        sim_a7600.port, broker.url, cid(), outbox_path=str(path), backoff=FAST
    ) as sup:
        pending = sup.pending()
        assert [d.id for d in pending] == [t.id for t in first]
        assert sup.flush(timeout=30), "the saved outbox was not sent"
        assert [d.status for d in pending] == ["delivered"] * 5
        later = sup.publish(f"{topic_prefix}/p", b"later")
        assert later.id > first[-1].id, "ids continue after the file's"
        later.wait_delivered(30)
    got = [peer.get()[1] for _ in range(6)]
    assert got == [f"saved{i}".encode() for i in range(5)] + [b"later"]


def test_outbox_full_policies(tmp_path: Path) -> None:
    # drop_oldest: the oldest ticket is dropped, an event says so.
    events = Events()
    with offline(tmp_path, outbox_capacity=2, when_full="drop_oldest") as sup:
        sup.on_event = events
        a, b, c = (sup.publish("p/x", f"{i}".encode()) for i in range(3))
        assert (a.status, b.status, c.status) == ("dropped", "queued", "queued")
        assert sup.outbox_len == 2
        with pytest.raises(cmqtt.DeliveryError) as ei:
            a.wait_delivered(timeout=1)
        assert (ei.value.id, ei.value.status, ei.value.reason) == (a.id, "dropped", None)
        assert isinstance(ei.value, cmqtt.Error)
        e = events.wait_for(lambda e: e.kind == "dropped")
        assert e.id == a.id
        # The drop was reported on the thread that published.
        assert threading.current_thread().name in events.threads
        with pytest.raises(cmqtt.TimeoutError):
            b.wait_delivered(timeout=0.1)
        assert b.wait(timeout=0.1) == "queued"
    # error: a full outbox refuses.
    with offline(tmp_path, outbox_capacity=1, when_full="error") as sup:
        sup.publish("p/x", b"1")
        with pytest.raises(cmqtt.OutboxFullError, match="full"):
            sup.publish("p/x", b"2")
        with pytest.raises(ValueError):
            sup.publish("p/x", b"2", qos=3)  # argument errors stay ValueError
    # block: waits for room; Ctrl-C interrupts the wait; close() wakes it.
    with offline(tmp_path, outbox_capacity=1) as sup:
        sup.publish("p/x", b"1")
        t0 = time.monotonic()
        sigint_after(0.5)
        with pytest.raises(KeyboardInterrupt):
            sup.publish("p/x", b"2")
        assert time.monotonic() - t0 < 5
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 10, "close() waited for the blocked publish"


def test_block_policy_with_a_connection_delivers_everything_in_order(
    sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str
) -> None:
    peer.subscribe(f"{topic_prefix}/#")
    with cmqtt.Supervisor(
        sim_a7600.port, broker.url, cid(), outbox_capacity=1, backoff=FAST
    ) as sup:
        assert sup.wait_connected(20)
        tickets = [sup.publish(f"{topic_prefix}/b", f"{i}".encode()) for i in range(8)]
        for t in tickets:
            t.wait_delivered(30)
    assert [peer.get()[1] for _ in range(8)] == [f"{i}".encode() for i in range(8)]


def test_callback_rules(tmp_path: Path) -> None:
    """What on_event may not do (close, wait) raises there; a publish from a callback never
    waits for room: a full outbox is OutboxFullError at once."""
    results: dict[str, str] = {}
    done = threading.Event()
    sup = offline(tmp_path, outbox_capacity=1)
    sup.publish("p/x", b"fill")

    def on_event(e: cmqtt.SupervisorEvent) -> None:
        if e.kind != "state" or e.state != "waiting" or done.is_set():
            return
        for name, call in [
            ("close", sup.close),
            ("wait_connected", lambda: sup.wait_connected(1)),
            ("flush", lambda: sup.flush(1)),
            ("recv", lambda: sup.recv(1)),
        ]:
            try:
                call()
                results[name] = "ok"
            except RuntimeError as err:
                results[name] = f"RuntimeError: {err}"
        results["wait_connected(0)"] = str(sup.wait_connected(0))
        t0 = time.monotonic()
        try:
            sup.publish("p/x", b"from the supervisor thread")
            results["publish"] = "ok"
        except cmqtt.OutboxFullError:
            results["publish"] = f"OutboxFullError after {time.monotonic() - t0:.1f} s"
        results["thread"] = threading.current_thread().name
        done.set()

    sup.on_event = on_event
    assert done.wait(20)
    sup.close()
    assert sup.closed
    assert results["close"].startswith("RuntimeError") and "own callbacks" in results["close"]
    for name in ("wait_connected", "flush", "recv"):
        assert results[name].startswith("RuntimeError"), results
    assert results["wait_connected(0)"] == "False"
    assert results["publish"].startswith("OutboxFullError after 0."), results
    assert results["thread"] != threading.main_thread().name


def test_callback_exceptions_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def bad(e: cmqtt.SupervisorEvent) -> None:
        raise ValueError("boom from on_event")

    with caplog.at_level("ERROR", logger="cmqtt"):
        with offline(tmp_path) as sup:
            sup.on_event = bad
            deadline = time.monotonic() + 10
            while "boom from on_event" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
    assert "on_event" in caplog.text and "boom from on_event" in caplog.text


def test_without_callbacks_events_are_queued(tmp_path: Path) -> None:
    with offline(tmp_path) as sup:
        e = sup.recv_event(timeout=10)
        assert e is not None and e.kind in ("state", "attempt_failed")
        seen = [e]
        while not any(x.kind == "attempt_failed" for x in seen):
            x = sup.recv_event(timeout=10)
            assert x is not None
            seen.append(x)
        failed = next(x for x in seen if x.kind == "attempt_failed")
        assert failed.text and "no-such-port" in failed.text and failed.attempt == 1
        assert sup.state in ("opening", "waiting")


def test_waits_release_the_gil_and_stop_on_ctrl_c(tmp_path: Path) -> None:
    with offline(tmp_path) as sup:
        ticks = 0
        stop = threading.Event()

        def spin() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                time.sleep(0.001)

        t = threading.Thread(target=spin)
        t.start()
        assert sup.wait_connected(timeout=0.5) is False
        stop.set()
        t.join()
        assert ticks > 50, "the GIL was held while waiting"
        sigint_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            sup.wait_connected()
        d = sup.publish("p/x", b"1")
        sigint_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            d.wait()
        sigint_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            sup.flush()
        sigint_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            sup.recv()


def test_bad_arguments(tmp_path: Path) -> None:
    port, server = str(tmp_path / "p"), "tcp://127.0.0.1:1883"
    bad: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"when_full": "sometimes"}, ValueError, "when_full"),
        ({"backoff": (2.0, 1.0, 0.1)}, ValueError, "backoff"),
        ({"backoff": (0.1, 1.0, 3.0)}, ValueError, "jitter"),
        ({"backoff": (-1.0, 1.0, 0.1)}, ValueError, "backoff"),
        ({"outbox_capacity": 0}, ValueError, "outbox_capacity"),
        ({"pub_timeout": 5}, ValueError, "pub_timeout"),
        ({"keepalive": 0}, ValueError, "keepalive"),
        ({"index": 2}, ValueError, "client_index"),
        ({"password": "no user"}, ValueError, "pass_word"),
        ({"will": ("w", b"")}, ValueError, "will message"),
        ({"will": "not a tuple"}, TypeError, "will"),
        ({"subscriptions": [("t", 3)]}, ValueError, "qos"),
        ({"model": "ec25"}, ValueError, "a7600"),
        ({"ssl_config": {"ctx": 12}}, ValueError, "ssl_ctx"),
        ({"ssl_config": {"colour": 1}}, ValueError, "unknown key"),
        ({"certs": {"dir/ca.pem": b"x"}}, ValueError, "filename"),
        ({"usb_serial": "X"}, ValueError, "usb:VID:PID"),
    ]
    for kw, exc, text in bad:
        with pytest.raises(exc, match=text):
            cmqtt.Supervisor(port, server, cid(), **kw)
    with pytest.raises(ValueError, match="client"):
        cmqtt.Supervisor(port, server, 'has"quote')
    # One broker grammar (tcp://, mqtt://, mqtts://, ssl://, bare host); other schemes are refused.
    with pytest.raises(ValueError, match=r"\[tcp\|mqtt\|mqtts\|ssl\]://"):
        cmqtt.Supervisor(port, "http://127.0.0.1:1883", cid())
    with pytest.raises(ValueError, match="TLS"):
        cmqtt.Supervisor(port, "mqtts://127.0.0.1", cid())
    with pytest.raises(ValueError, match="usb:VID:PID"):
        cmqtt.Supervisor("usb:zz:1", server, cid())
    with pytest.raises(ValueError, match="socket://"):
        cmqtt.Supervisor("socket://nowhere", server, cid())
    with pytest.raises(TypeError):
        cmqtt.Supervisor(42, server, cid())  # type: ignore[arg-type]
    not_outbox = tmp_path / "not-an-outbox"
    not_outbox.write_bytes(b"something else")
    with pytest.raises(ValueError, match="not a cmqtt outbox file"):
        cmqtt.Supervisor(port, server, cid(), outbox_path=not_outbox)
    with pytest.raises(OSError):
        cmqtt.Supervisor(port, server, cid(), outbox_path=tmp_path / "no-dir" / "outbox.bin")
    # Accepted forms of port: a path, socket://, usb:VID:PID (none reachable here).
    for p in (tmp_path / "p", "socket://127.0.0.1:9", "usb:1e0e:9011"):
        with cmqtt.Supervisor(p, server, cid(), backoff=FAST) as sup:
            assert sup.state in ("opening", "waiting", "starting")
    with offline(tmp_path) as sup:
        with pytest.raises(ValueError, match="qos"):
            sup.publish("t", b"x", qos=3)
        with pytest.raises(ValueError, match="topic"):
            sup.publish("", b"x")
        with pytest.raises(TypeError, match="payload"):
            sup.publish("t", 5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="qos"):
            sup.subscribe("t", qos=5)
        with pytest.raises(TypeError, match="on_event"):
            sup.on_event = 5  # type: ignore[assignment]
        with pytest.raises(ValueError, match="timeout"):
            sup.flush(timeout=-1)
    with pytest.raises(cmqtt.ClosedError):
        sup.subscribe("t")
    with pytest.raises(cmqtt.ClosedError):
        _ = sup.outbox_len
