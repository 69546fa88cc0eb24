"""End to end against the emulator and mosquitto, with paho-mqtt as the peer."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

import cmqtt
from conftest import MAX_PAYLOAD, Broker, Peer, Sim


def cid() -> str:
    return f"py-{uuid.uuid4().hex[:10]}"


def test_spec_example_flow(sim: Sim, broker: Broker, peer: Peer, topic_prefix: str) -> None:
    """The issue's example, on every model."""
    cmd, data = f"{topic_prefix}/cmd", f"{topic_prefix}/data"
    peer.subscribe(f"{data}/#")
    with cmqtt.Modem(sim.port, baudrate=115200) as modem:
        assert modem.model == sim.model
        assert modem.firmware
        assert modem.start() is True
        with modem.client(0, "device-1", tls=False) as client:
            assert client.index == 0 and not client.connected
            client.connect(broker.url, keepalive=60, clean_session=True, username=None, password=None)
            assert client.connected
            assert client.query_connected()
            client.subscribe(f"{cmd}/#", qos=1)
            client.publish(f"{data}/x", b"\x00\x01", qos=1, retain=False, timeout=60)
            assert peer.get() == (f"{data}/x", b"\x00\x01", 1, False)

            peer.publish(f"{cmd}/one", b"first", qos=1)
            msg = client.recv(timeout=5.0)
            assert msg is not None
            assert (msg.topic, msg.payload, msg.client) == (f"{cmd}/one", b"first", 0)

            for i in range(3):
                peer.publish(f"{cmd}/{i}", f"m{i}".encode(), qos=1)
            got = [(m.topic, m.payload) for m in client.messages(timeout=2.0)]
            assert got == [(f"{cmd}/{i}", f"m{i}".encode()) for i in range(3)]

            client.unsubscribe(f"{cmd}/#")
            peer.publish(f"{cmd}/late", b"x", qos=1)
            assert client.recv(timeout=0.5) is None
            client.disconnect()
            assert not client.connected
        assert client.released
    assert modem.closed


def test_recv_timeout_zero_and_none_result(sim_a7600: Sim, broker: Broker) -> None:
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.connect(broker.url)
            t0 = time.monotonic()
            assert c.recv(timeout=0) is None
            assert c.recv(timeout=0.3) is None
            assert 0.25 <= time.monotonic() - t0 < 2.0
            assert list(c.messages(timeout=0.2)) == []


@pytest.mark.parametrize("model", ["a7600", "sim7672x"])
def test_binary_payload_of_model_maximum(
    model: str, sim_factory: object, broker: Broker, peer: Peer, topic_prefix: str
) -> None:
    sim = sim_factory(model)  # type: ignore[operator]
    size = MAX_PAYLOAD[model]
    payload = (bytes(range(256)) + b"\r\nOK\r\n+CMQTTRXEND: 0\r\n\x00ERROR\r\n") * (size // 270 + 1)
    payload = payload[:size]
    topic = f"{topic_prefix}/bin"
    peer.subscribe(topic)
    with cmqtt.Modem(sim.port) as modem:
        assert modem.max_payload == size
        modem.start()
        # Raw bytes: the modem's UTF-8 check must be off.
        with modem.client(0, cid(), check_utf8=False) as c:
            c.connect(broker.url)
            c.subscribe(f"{topic_prefix}/echo", qos=1)
            c.publish(topic, payload, qos=1)
            t, p, _, _ = peer.get()
            assert (t, p) == (topic, payload)
            # The way back: the same bytes delivered by the broker, read by length.
            peer.publish(f"{topic_prefix}/echo", payload, qos=1)
            m = c.recv(timeout=10)
            assert m is not None and m.payload == payload
            with pytest.raises(ValueError, match=str(size)):
                c.publish(topic, payload + b"!", qos=1)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_levels(qos: int, sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str) -> None:
    topic = f"{topic_prefix}/q{qos}"
    peer.subscribe(topic, qos=2)
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.connect(broker.url)
            c.subscribe(topic, qos=qos)
            c.publish(topic, f"qos{qos}", qos=qos)  # str payload: UTF-8
            t, p, q, _ = peer.get()
            assert (t, p, q) == (topic, f"qos{qos}".encode(), qos)
            m = c.recv(timeout=5)
            assert m is not None and m.payload == f"qos{qos}".encode()


def test_retain_and_str_payload(sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str) -> None:
    topic = f"{topic_prefix}/retained"
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.connect(broker.url)
            c.publish(topic, "grüße ✓", qos=1, retain=True)
    peer.subscribe(topic)
    t, p, _, retain = peer.get()
    assert (t, p.decode("utf-8"), retain) == (topic, "grüße ✓", True)
    peer.publish(topic, b"", qos=1, retain=True)  # clear it


def test_two_clients(sim: Sim, broker: Broker, topic_prefix: str) -> None:
    topic = f"{topic_prefix}/two"
    with cmqtt.Modem(sim.port) as modem:
        modem.start()
        with modem.client(0, cid()) as a, modem.client(1, cid()) as b:
            a.connect(broker.url)
            b.connect(broker.url)
            b.subscribe([(topic, 1), (f"{topic_prefix}/other", 0)])
            a.publish(topic, b"from a", qos=1)
            m = b.recv(timeout=5)
            assert m is not None and (m.client, m.payload) == (1, b"from a")
            assert a.recv(timeout=0.2) is None
            b.unsubscribe([topic, f"{topic_prefix}/other"])


def test_callbacks(sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str,
                   caplog: pytest.LogCaptureFixture) -> None:
    topic = f"{topic_prefix}/cb"
    got: list[cmqtt.Message] = []
    threads: set[str] = set()
    done = threading.Event()

    def on_message(msg: cmqtt.Message) -> None:
        threads.add(threading.current_thread().name)
        got.append(msg)
        if msg.payload == b"boom":
            raise RuntimeError("callback failure on purpose")
        if len(got) == 3:
            done.set()

    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.on_message = on_message
            assert c.on_message is on_message
            c.connect(broker.url)
            c.subscribe(topic, qos=1)
            with caplog.at_level(logging.ERROR, logger="cmqtt"):
                for p in (b"one", b"boom", b"three"):
                    peer.publish(topic, p, qos=1)
                assert done.wait(10), [m.payload for m in got]
            assert [m.payload for m in got] == [b"one", b"boom", b"three"]
            assert threading.main_thread().name not in threads
            errors = [r for r in caplog.records if r.name == "cmqtt" and r.levelno == logging.ERROR]
            assert errors and "on_message" in errors[0].getMessage()
            assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError
            assert "callback failure on purpose" in caplog.text
            # Back to queueing.
            c.on_message = None
            assert c.on_message is None
            peer.publish(topic, b"queued", qos=1)
            m = c.recv(timeout=5)
            assert m is not None and m.payload == b"queued"
            with pytest.raises(TypeError, match="callable"):
                c.on_message = 42  # type: ignore[assignment]


def test_callback_may_publish(sim_a7600: Sim, broker: Broker, peer: Peer, topic_prefix: str) -> None:
    """A callback runs with no library lock held: it can publish (an echo service)."""
    peer.subscribe(f"{topic_prefix}/out")
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.on_message = lambda m: c.publish(f"{topic_prefix}/out", m.payload[::-1], qos=1)
            c.connect(broker.url)
            c.subscribe(f"{topic_prefix}/in", qos=1)
            peer.publish(f"{topic_prefix}/in", b"abc", qos=1)
            assert peer.get()[:2] == (f"{topic_prefix}/out", b"cba")


def test_connection_lost_callback(sim_a7600: Sim, broker: Broker) -> None:
    """A second client with the same id takes the session over: the broker drops the modem's
    connection and the modem says +CMQTTCONNLOST."""
    client_id = cid()
    lost: list[tuple[int, int]] = []
    event = threading.Event()

    def on_lost(index: int, cause: int) -> None:
        lost.append((index, cause))
        event.set()

    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(1, client_id) as c:
            c.on_connection_lost = on_lost
            assert c.on_connection_lost is on_lost
            c.connect(broker.url)
            thief = Peer(broker, client_id=client_id)
            try:
                assert event.wait(10), "no connection-lost callback"
            finally:
                thief.close()
            assert lost[0][0] == 1 and lost[0][1] in (1, 2, 3)
            assert not c.connected
            with pytest.raises(cmqtt.NotConnectedError):
                c.publish("x", b"y")
            c.connect(broker.url)  # and it can connect again
            assert c.connected


def test_will_is_set(sim_a7600: Sim, broker: Broker) -> None:
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.set_will("status/dev", b"offline", qos=1)
            with pytest.raises(ValueError, match="qos"):
                c.set_will("status/dev", b"offline", qos=3)
            with pytest.raises(ValueError, match="1024"):
                c.set_will("status/dev", bytes(1025), qos=0)
            c.connect(broker.url)


def test_client_configuration(sim: Sim, broker: Broker) -> None:
    with cmqtt.Modem(sim.port) as modem:
        modem.start()
        with modem.client(0, cid(), check_utf8=False, op_timeout=30) as c:
            cfg = c.config()
            assert cfg["index"] == 0 and cfg["check_utf8"] is False and cfg["op_timeout"] == 30
            c.set_check_utf8(True)
            c.set_op_timeout(25)
            assert c.config()["op_timeout"] == 25
            with pytest.raises(ValueError, match="20..=120"):
                c.set_op_timeout(5)
            if sim.model == "sim7672x":  # CMQTTCFG="version" (SIM7600 takes it in ACCQ)
                c.set_version(4)
            c.connect(broker.url)
            if sim.model == "sim7672x":
                c.subscribe("sub/a", qos=0)
                assert b"sub/a" in c.subscriptions()
        if sim.model != "a7600":  # the emulated A7600 has no way to set the version
            with modem.client(1, cid(), version=4) as c1:
                c1.connect(broker.url)


def test_modem_information(sim: Sim) -> None:
    with cmqtt.Modem(sim.port, model=sim.model) as modem:  # type: ignore[arg-type]
        assert modem.model == sim.model
        assert modem.model_name
        assert modem.imei().isdigit()
        rssi, ber = modem.signal_quality()
        assert 0 <= rssi <= 99 and 0 <= ber <= 99
        assert modem.registration() in (1, 5)
        assert modem.supports_mqtt()
        assert modem.port == sim.port
        assert repr(modem).startswith("<cmqtt.Modem port=")
        assert modem.command("AT+CSQ", prefix="+CSQ:")[0].startswith("+CSQ:")
        rx, tx = modem.byte_counts()
        assert rx > 0 and tx > 0
        assert modem.closed_reason is None
    assert "closed" in repr(modem)
    assert modem.model == sim.model  # identity stays readable
    with pytest.raises(cmqtt.ClosedError):
        modem.imei()
    modem.close()  # idempotent


def test_start_stop(sim_a7600: Sim) -> None:
    with cmqtt.Modem(sim_a7600.port) as modem:
        assert modem.start() is True
        assert modem.service_running()
        assert modem.start() is False  # already running
        modem.stop()
        assert not modem.service_running()


def test_close_releases_clients_and_stops(sim_a7600: Sim, broker: Broker) -> None:
    modem = cmqtt.Modem(sim_a7600.port)
    modem.start()
    c = modem.client(0, cid())
    c.connect(broker.url)
    modem.close()
    assert c.released and not c.connected
    with pytest.raises(cmqtt.ClosedError):
        c.publish("t", b"")
    # The modem was left as found: index 0 is free and the service stopped.
    with cmqtt.Modem(sim_a7600.port) as again:
        assert again.start() is True
        with again.client(0, cid()) as c2:
            c2.connect(broker.url)


def test_garbage_collected_handles_release(sim_a7600: Sim, broker: Broker) -> None:
    import gc

    modem = cmqtt.Modem(sim_a7600.port)
    modem.start()
    c = modem.client(0, cid())
    c.on_message = lambda m: None
    c.connect(broker.url)
    del c
    gc.collect()
    again = modem.client(0, cid())  # the dropped client was released
    again.release()
    del modem, again
    gc.collect()
    with cmqtt.Modem(sim_a7600.port) as m2:
        m2.start()


def test_ssl_contexts_and_certificates(sim_a7600: Sim, tmp_path: object) -> None:
    from pathlib import Path

    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    path = Path(str(tmp_path)) / "client.pem"
    path.write_bytes(pem)
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.cert_upload("ca.pem", pem)
        modem.cert_upload("client.pem", path)
        modem.cert_upload("key.pem", str(path))
        names = modem.cert_list()
        assert {"ca.pem", "client.pem", "key.pem"} <= set(names)
        modem.cert_delete("key.pem")
        assert "key.pem" not in modem.cert_list()
        modem.ssl_configure(0, ssl_version=4, auth_mode=1, ca_cert="ca.pem", enable_sni=True,
                            ignore_local_time=True, negotiate_time=60)
        with pytest.raises(ValueError, match="ctx"):
            modem.ssl_configure(10, auth_mode=0)
        with pytest.raises(ValueError, match="auth_mode|authmode"):
            modem.ssl_configure(0, auth_mode=9)
        with pytest.raises(FileNotFoundError):
            modem.cert_upload("x.pem", Path(str(tmp_path)) / "missing.pem")
        with pytest.raises(TypeError):
            modem.cert_upload("x.pem", 42)  # type: ignore[arg-type]
        modem.start()
        with modem.client(0, cid(), tls=True, ssl_context=0) as c:
            c.set_ssl_context(0)
            with pytest.raises(ValueError, match="0..=9"):
                c.set_ssl_context(12)


def test_trace_goes_to_logging_with_password_redacted(
    sim_a7600: Sim, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    from conftest import PASSWORD, USER

    caplog.set_level(logging.DEBUG, logger="cmqtt")
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            c.connect(broker.auth_url, username=USER, password=PASSWORD)
    lines = [r.getMessage() for r in caplog.records if r.name == "cmqtt" and r.levelno == logging.DEBUG]
    assert any(line.startswith(">> AT+CMQTTSTART") for line in lines), lines[:10]
    assert any(line.startswith("<< OK") for line in lines)
    assert any("AT+CMQTTCONNECT" in line for line in lines)
    assert not any(PASSWORD in line for line in lines)


def test_no_trace_records_when_debug_is_off(sim_a7600: Sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cmqtt")
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.imei()
    assert not [r for r in caplog.records if r.name == "cmqtt" and r.levelno == logging.DEBUG]


def test_modem_events(sim_a7600: Sim, broker: Broker) -> None:
    """+CMQTTCONNLOST also reaches the modem-level event stream: queued for recv_event(),
    or handed to on_event (on the dispatch thread) when that is set."""
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        client_id = cid()
        with modem.client(0, client_id) as c:
            c.connect(broker.url)
            thief = Peer(broker, client_id=client_id)
            try:
                ev = modem.recv_event(timeout=10)
                while ev is not None and ev.kind != "connection_lost":
                    ev = modem.recv_event(timeout=10)
            finally:
                thief.close()
            assert ev is not None and ev.kind == "connection_lost"
            assert ev.client == 0 and ev.cause in (1, 2, 3)
            assert "connection_lost" in repr(ev)

            got: list[cmqtt.Event] = []
            seen = threading.Event()

            def on_event(e: cmqtt.Event) -> None:
                got.append(e)
                if e.kind == "connection_lost":
                    seen.set()

            modem.on_event = on_event
            modem.on_no_network = lambda: None
            assert modem.on_event is on_event and modem.on_no_network is not None
            c.connect(broker.url)
            thief = Peer(broker, client_id=client_id)
            try:
                assert seen.wait(10), got
            finally:
                thief.close()
            modem.on_event = None
            modem.on_no_network = None
            with pytest.raises(TypeError):
                modem.on_no_network = "nope"  # type: ignore[assignment]
