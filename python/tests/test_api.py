"""The module's surface, without a modem: names, exception hierarchy, docstrings, Message."""

from __future__ import annotations

import builtins
import inspect
import os
import pydoc
from pathlib import Path

import pytest

import cmqtt


def test_version() -> None:
    assert isinstance(cmqtt.__version__, str)
    assert cmqtt.__version__.count(".") >= 2
    assert cmqtt.core_version == cmqtt.__version__


def test_exception_hierarchy() -> None:
    for e in (
        cmqtt.ModemError,
        cmqtt.ConnectionLostError,
        cmqtt.TimeoutError,
        cmqtt.SerialError,
        cmqtt.NotConnectedError,
        cmqtt.ClosedError,
        cmqtt.UnsupportedError,
        cmqtt.ProtocolError,
    ):
        assert issubclass(e, cmqtt.Error), e
        assert e.__module__ == "cmqtt"
    assert issubclass(cmqtt.Error, Exception)
    assert issubclass(cmqtt.ConnectionLostError, ConnectionError)
    assert issubclass(cmqtt.TimeoutError, builtins.TimeoutError)
    assert issubclass(cmqtt.SerialError, OSError)
    assert cmqtt.Error("x").code is None
    # Raisable and catchable as their builtin bases.
    with pytest.raises(builtins.TimeoutError):
        raise cmqtt.TimeoutError("t")
    with pytest.raises(OSError):
        raise cmqtt.SerialError("s")


def test_docstrings_and_signatures() -> None:
    text = pydoc.render_doc(cmqtt.Modem, renderer=pydoc.plaintext)
    for word in ("context manager", "start", "client", "ssl_configure", "cert_upload", "on_no_network"):
        assert word in text, word
    assert "baudrate=115200" in str(inspect.signature(cmqtt.Modem))
    sig = inspect.signature(cmqtt.Client.publish)
    assert list(sig.parameters)[:4] == ["self", "topic", "payload", "qos"]
    assert sig.parameters["timeout"].default == 60.0
    assert "Ctrl-C" in (cmqtt.Client.publish.__doc__ or "")
    assert "on_message" in (cmqtt.Client.__doc__ or "")
    assert "KeyboardInterrupt" in (cmqtt.__doc__ or "")


def test_stubs_and_py_typed_are_shipped() -> None:
    pkg = Path(cmqtt.__file__).parent
    assert (pkg / "py.typed").exists()
    stub = (pkg / "_cmqtt.pyi").read_text()
    for name in cmqtt.__all__:
        if name.startswith("__") or name == "core_version":
            continue
        assert f"class {name}" in stub, name


def test_message_value_semantics() -> None:
    m = cmqtt.Message("a/b", b"\x00\r\nOK", client=1)
    assert (m.topic, m.topic_bytes, m.payload, m.client) == ("a/b", b"a/b", b"\x00\r\nOK", 1)
    assert m == cmqtt.Message(b"a/b", b"\x00\r\nOK", 1)
    assert m != cmqtt.Message("a/b", b"", 1)
    assert hash(m) == hash(cmqtt.Message("a/b", b"\x00\r\nOK", 1))
    assert repr(m) == "Message(client=1, topic='a/b', payload=b'\\x00\\r\\nOK')"
    assert cmqtt.Message("t", "é").payload == "é".encode()
    long = cmqtt.Message("t", bytes(1000))
    assert "(1000 bytes)" in repr(long)


def test_message_topic_not_utf8_round_trips() -> None:
    raw = b"caf\xe9/\xff"
    m = cmqtt.Message(raw, b"")
    assert m.topic_bytes == raw
    assert m.topic.encode("utf-8", "surrogateescape") == raw
    # A surrogate-escaped str topic goes back to the same bytes.
    assert cmqtt.Message(m.topic, b"").topic_bytes == raw


def test_message_argument_types() -> None:
    with pytest.raises(TypeError, match="payload must be"):
        cmqtt.Message("t", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="topic must be"):
        cmqtt.Message(5, b"")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="client"):
        cmqtt.Message("t", b"", client=300)


def test_open_missing_port_is_serial_error(tmp_path: Path) -> None:
    with pytest.raises(cmqtt.SerialError) as ei:
        cmqtt.Modem(str(tmp_path / "no-such-tty"), timeout=1)
    assert isinstance(ei.value, OSError)
    assert "no-such-tty" in str(ei.value)


def test_open_accepts_pathlike(tmp_path: Path) -> None:
    with pytest.raises(cmqtt.SerialError):
        cmqtt.Modem(tmp_path / "no-such-tty", timeout=1)


def test_silent_port_times_out() -> None:
    # A pseudo-terminal nobody answers on: the AT sync gives up after `timeout`.
    master, slave = os.openpty()
    try:
        with pytest.raises(cmqtt.TimeoutError) as ei:
            cmqtt.Modem(os.ttyname(slave), timeout=0.5)
        assert isinstance(ei.value, builtins.TimeoutError)
        assert ei.value.command == "AT"
    finally:
        os.close(master)
        os.close(slave)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="a7600, sim7600 or sim7672x"):
        cmqtt.Modem("/dev/null", model="ec25")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        cmqtt.Modem("/dev/null", timeout=-1)
    with pytest.raises(ValueError, match="queue_capacity"):
        cmqtt.Modem("/dev/null", queue_capacity=0)
    with pytest.raises(TypeError):
        cmqtt.Modem(42)  # type: ignore[arg-type]


def test_stubs_match_the_runtime(tmp_path: Path) -> None:
    """mypy's stubtest: every name, signature and property of _cmqtt.pyi matches the module."""
    pytest.importorskip("mypy")
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "cmqtt"], capture_output=True,
                       text=True, cwd=str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
