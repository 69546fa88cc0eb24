"""Exceptions and their codes: what the modem refused, and arguments outside the spec."""

from __future__ import annotations

import uuid

import pytest

import cmqtt
from conftest import PASSWORD, USER, Broker, Sim, free_port


def cid() -> str:
    return f"py-{uuid.uuid4().hex[:10]}"


def test_wrong_password_is_modem_error_with_code(sim: Sim, broker: Broker) -> None:
    with cmqtt.Modem(sim.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            with pytest.raises(cmqtt.ModemError) as ei:
                c.connect(broker.auth_url, username=USER, password="not-" + PASSWORD)
            e = ei.value
            # 30: bad user name or password; 31: not authorized (what mosquitto answers
            # depends on its version).
            assert e.code in (30, 31), (e.code, str(e))
            assert e.command == "AT+CMQTTCONNECT"
            assert isinstance(e, cmqtt.Error)
            assert str(e.code) in str(e)
            assert not c.connected
            # The right password works on the same client.
            c.connect(broker.auth_url, username=USER, password=PASSWORD)
            assert c.connected


def test_no_broker_is_modem_error(sim_a7600: Sim) -> None:
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()) as c:
            with pytest.raises(cmqtt.ModemError) as ei:
                c.connect(f"tcp://127.0.0.1:{free_port()}", timeout=30)
            assert ei.value.code is not None


def test_argument_ranges(sim_a7600: Sim, broker: Broker) -> None:
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with pytest.raises(ValueError, match="0 or 1"):
            modem.client(2, cid())
        with pytest.raises(ValueError, match="clientID.*1..=128"):
            modem.client(0, "")
        with pytest.raises(ValueError, match="clientID.*1..=128"):
            modem.client(0, "x" * 129)
        with modem.client(0, cid()) as c:
            with pytest.raises(ValueError, match=r"qos.*0\.\.=2.*got 3"):
                c.publish("t", b"x", qos=3)
            with pytest.raises(ValueError, match=r"qos.*0\.\.=2.*got 300"):
                c.publish("t", b"x", qos=300)
            with pytest.raises(ValueError, match="qos"):
                c.subscribe("t", qos=-1)
            with pytest.raises(ValueError, match="60..=180|pub_timeout"):
                c.publish("t", b"x", timeout=5)
            with pytest.raises(ValueError, match="1024|topic"):
                c.publish("t" * 1025, b"x")
            with pytest.raises(ValueError, match="topic"):
                c.publish("", b"x")
            with pytest.raises(ValueError, match="keepalive"):
                c.connect(broker.url, keepalive=0)
            with pytest.raises(ValueError, match="timeout"):
                c.publish("t", b"x", timeout=float("nan"))
            with pytest.raises(TypeError, match="payload must be"):
                c.publish("t", 12)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="topic must be"):
                c.publish(None, b"x")  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                c.subscribe(12)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="tuple"):
                c.subscribe([("a", 0, 1)])  # type: ignore[list-item]
            with pytest.raises(ValueError):
                c.subscribe([])
            # Nothing was sent for any of these: the client still works.
            c.connect(broker.url)
            c.publish("t/ok", bytearray(b"x"), qos=1)
            c.publish("t/ok", memoryview(b"xyz"), qos=0)
            c.publish("t/ok")  # empty payload


def test_not_connected_and_released(sim_a7600: Sim) -> None:
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        c = modem.client(0, cid())
        with pytest.raises(cmqtt.NotConnectedError) as ei:
            c.publish("t", b"x")
        assert ei.value.client == 0
        with pytest.raises(cmqtt.NotConnectedError):
            c.subscribe("t")
        # Acquiring an index twice: the modem's own code.
        with pytest.raises(cmqtt.ModemError) as me:
            modem.client(0, cid())
        assert me.value.code is not None or "ERROR" in str(me.value)
        c.release()
        c.release()  # idempotent
        assert c.released
        with pytest.raises(cmqtt.ClosedError, match="released"):
            c.publish("t", b"x")
        with pytest.raises(cmqtt.ClosedError):
            c.recv(timeout=0)
        assert repr(c) == "<cmqtt.Client index=0 released>"


def test_stop_with_acquired_client_reports_code(sim_a7600: Sim) -> None:
    with cmqtt.Modem(sim_a7600.port) as modem:
        modem.start()
        with modem.client(0, cid()):
            with pytest.raises(cmqtt.ModemError) as ei:
                modem.stop()
            assert ei.value.code == 21  # client not released
