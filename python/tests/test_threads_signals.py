"""The GIL is released while waiting, Ctrl-C interrupts a wait, and many Python threads can
use one modem at once."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

import cmqtt
from conftest import Broker, Peer, Sim


def cid() -> str:
    return f"py-{uuid.uuid4().hex[:10]}"


def sigint_after(delay: float) -> threading.Timer:
    """Sends SIGINT to this very process after `delay` s (what Ctrl-C in a terminal does)."""
    t = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    t.daemon = True
    t.start()
    return t


@pytest.fixture
def connected(sim_a7600: Sim, broker: Broker) -> Iterator[tuple[cmqtt.Modem, cmqtt.Client]]:
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.connect(broker.url)
            yield modem, c


def test_ctrl_c_interrupts_recv_forever(connected: tuple[cmqtt.Modem, cmqtt.Client]) -> None:
    _, c = connected
    assert threading.current_thread() is threading.main_thread()
    t0 = time.monotonic()
    sigint_after(0.5)
    with pytest.raises(KeyboardInterrupt):
        c.recv(timeout=None)
    elapsed = time.monotonic() - t0
    assert 0.4 <= elapsed < 3.0, elapsed
    # The client is still usable afterwards.
    c.publish("after/interrupt", b"x", qos=1)


def test_ctrl_c_interrupts_message_iteration(connected: tuple[cmqtt.Modem, cmqtt.Client]) -> None:
    _, c = connected
    sigint_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        for _ in c.messages():
            pass


def test_ctrl_c_interrupts_recv_event(connected: tuple[cmqtt.Modem, cmqtt.Client]) -> None:
    modem, _ = connected
    sigint_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        modem.recv_event(timeout=None)


def test_ctrl_c_interrupts_a_blocking_command() -> None:
    """The AT sync on a port nobody answers blocks for `timeout` (here 30 s; with no session
    to interrupt yet it runs on a worker thread); Ctrl-C gets the caller out at once."""
    master, slave = os.openpty()
    try:
        t0 = time.monotonic()
        sigint_after(0.5)
        with pytest.raises(KeyboardInterrupt):
            cmqtt.Modem(os.ttyname(slave), timeout=30)
        assert time.monotonic() - t0 < 3.0
    finally:
        os.close(master)
        os.close(slave)


def test_other_threads_run_while_waiting(connected: tuple[cmqtt.Modem, cmqtt.Client]) -> None:
    _, c = connected
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = counter
        assert c.recv(timeout=0.5) is None
        assert counter - before > 50, counter - before
    finally:
        stop.set()
        t.join()


def test_many_threads_publish_at_once(
    connected: tuple[cmqtt.Modem, cmqtt.Client], peer: Peer, topic_prefix: str
) -> None:
    _, c = connected
    topic = f"{topic_prefix}/mt"
    peer.subscribe(f"{topic}/#")
    threads, per_thread = 4, 15
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(per_thread):
                c.publish(f"{topic}/{n}", f"{n}:{i}".encode(), qos=(n + i) % 3)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    got = set()
    for _ in range(threads * per_thread):
        t_, p, _, _ = peer.get(timeout=10)
        got.add(p.decode())
    assert got == {f"{n}:{i}" for n in range(threads) for i in range(per_thread)}
    # Per-thread order is kept (each thread's publishes are sequential).


def test_threads_receive_and_publish_concurrently(
    sim_a7600: Sim, broker: Broker, topic_prefix: str
) -> None:
    """One modem, two clients; a thread blocks in recv on one while others publish on both."""
    topic = f"{topic_prefix}/rx"
    received: list[bytes] = []
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as rx, modem.client(1, cid()) as tx:
            rx.connect(broker.url)
            tx.connect(broker.url)
            rx.subscribe(topic, qos=1)

            def reader() -> None:
                for m in rx.messages(timeout=3.0):
                    received.append(m.payload)

            r = threading.Thread(target=reader)
            r.start()
            pubs = [
                threading.Thread(target=lambda k=k: [tx.publish(topic, f"{k}-{i}", qos=1) for i in range(10)])
                for k in range(3)
            ]
            for p in pubs:
                p.start()
            for p in pubs:
                p.join(60)
            r.join(60)
    assert sorted(received) == sorted(f"{k}-{i}".encode() for k in range(3) for i in range(10))


def test_ctrl_c_during_publish_interrupts_it_and_the_client_goes_on(
    sim_factory: object, broker: Broker, peer: Peer, topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 10 KiB publish over a modem paced at 38400 baud takes ~3 s on the wire. Ctrl-C
    raises KeyboardInterrupt at once: the core stops waiting for the modem (Modem.interrupt),
    which may still carry the publish out (an AT command cannot be taken back), and the
    interruption is logged. The client goes on working: the next publish first gets back in
    step with the modem, then is delivered (after the interrupted one, if that went out)."""
    import logging

    sim: Sim = sim_factory("a7600", "--baud", "38400")  # type: ignore[operator]
    topic = f"{topic_prefix}/slow"
    peer.subscribe(topic)
    payload = bytes(range(256)) * 40
    with caplog.at_level(logging.WARNING, logger="cmqtt"):
        with cmqtt.Modem(sim.port) as modem:
            modem.start()
            with modem.client(0, cid(), check_utf8=False) as c:
                c.connect(broker.url)
                t0 = time.monotonic()
                sigint_after(0.5)
                with pytest.raises(KeyboardInterrupt):
                    c.publish(topic, payload, qos=1)
                assert time.monotonic() - t0 < 2.0
                c.publish(topic, b"next", qos=1)
                got = peer.get(timeout=20)[1]
                if got == payload:
                    got = peer.get(timeout=20)[1]
                assert got == b"next"
    assert "publish interrupted by a signal" in caplog.text


def test_close_wakes_a_thread_blocked_in_recv(sim_a7600: Sim, broker: Broker) -> None:
    modem = cmqtt.Modem(sim_a7600.port)
    modem.start()
    c = modem.client(0, cid())
    c.connect(broker.url)
    results: list[object] = []
    t = threading.Thread(target=lambda: results.append(c.recv(timeout=None)))
    t.start()
    time.sleep(0.3)
    modem.close()
    t.join(5)
    assert not t.is_alive(), "recv(timeout=None) kept waiting after close()"
    assert results == [None]


def test_callback_may_close_the_modem(sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str) -> None:
    """close() from the dispatch thread itself must not wait for that thread."""
    done = threading.Event()
    modem = cmqtt.Modem(sim_a7600.port)
    modem.start()
    c = modem.client(0, cid())

    def on_message(m: cmqtt.Message) -> None:
        modem.close()
        done.set()

    c.on_message = on_message
    c.connect(broker.url)
    c.subscribe(f"{topic_prefix}/close", qos=1)
    peer.publish(f"{topic_prefix}/close", b"bye", qos=1)
    assert done.wait(10), "the callback's close() did not return"
    assert modem.closed and c.released
