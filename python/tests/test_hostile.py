"""Hostile conditions through the binding: capacities and timeouts that used to abort or panic,
files without end, a modem that stops answering while a ``with`` block raises, and a client
used after the modem restarted.

The modem here is a scripted one on a pseudo-terminal: it answers like an A76xx, and a test can
make it refuse or swallow commands, or print ``RDY`` as a restarted modem does.
"""

from __future__ import annotations

import logging
import math
import os
import select
import subprocess
import sys
import textwrap
import threading
import time
import tty
from collections.abc import Iterator
from typing import Optional

import pytest

import cmqtt


class PtyModem:
    """A scripted modem on a pseudo-terminal (``path`` is what cmqtt.Modem opens)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.lines: list[str] = []
        # Command prefix -> the answer (None: swallowed, no answer at all).
        self.answers: dict[str, Optional[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def _answer(self, line: str) -> Optional[str]:
        for prefix, answer in self.answers.items():
            if line.startswith(prefix):
                return answer
        cmd = line.split("=", 1)[0]
        if cmd == "AT+CGMM":
            return "\r\nA7600E-H\r\n\r\nOK\r\n"
        if cmd == "AT+CGMR":
            return "\r\n+CGMR: TEST\r\n\r\nOK\r\n"
        if cmd in ("AT+CMQTTSTART", "AT+CMQTTSTOP"):
            return f"\r\nOK\r\n\r\n{cmd[2:]}: 0\r\n"
        return "\r\nOK\r\n"

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                time.sleep(0.01)
                continue
            while b"\r" in buf:
                raw, buf = buf.split(b"\r", 1)
                line = raw.strip(b"\n \x1b").decode("latin-1")
                if not line:
                    continue
                self.lines.append(line)
                answer = self._answer(line)
                if answer:
                    self.send(answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_modem() -> Iterator[PtyModem]:
    m = PtyModem()
    try:
        yield m
    finally:
        m.close()


def open_modem(m: PtyModem, **kw: object) -> cmqtt.Modem:
    return cmqtt.Modem(m.path, model="a7600", timeout=5.0, **kw)  # type: ignore[arg-type]


# ---- item 5: bounds ------------------------------------------------------------------------


def test_capacities_beyond_the_maximum_are_value_errors(pty_modem: PtyModem) -> None:
    for cap in (2**20 + 1, 2**32, 2**63 - 1):
        with pytest.raises(ValueError, match="1048576"):
            open_modem(pty_modem, queue_capacity=cap)
    for kw in ({"queue_capacity": 2**32}, {"outbox_capacity": 2**32}):
        with pytest.raises(ValueError, match="1048576"):
            cmqtt.Supervisor(pty_modem.path, "tcp://127.0.0.1:1883", "hostile", **kw)  # type: ignore[arg-type]
    # The maximum itself is accepted.
    with open_modem(pty_modem, queue_capacity=2**20) as modem:
        assert modem.start() is True


def test_baud_zero_is_a_value_error(pty_modem: PtyModem) -> None:
    with pytest.raises(ValueError, match="baud"):
        open_modem(pty_modem, baudrate=0)


def test_timeouts_nan_inf_negative_are_refused_and_huge_ones_do_not_panic(
    pty_modem: PtyModem,
) -> None:
    with open_modem(pty_modem) as modem:
        for bad in (math.nan, math.inf, -1.0, 1e300):
            with pytest.raises(ValueError, match="timeout"):
                modem.recv_event(timeout=bad)
        threading.Timer(0.2, lambda: pty_modem.send("\r\n+CMQTTPING: 0,5\r\n")).start()
        t0 = time.monotonic()
        ev = modem.recv_event(timeout=1e18)
        assert ev is not None and ev.kind == "ping_failed", ev
        assert time.monotonic() - t0 < 5


def test_files_without_end_are_read_with_a_bound(pty_modem: PtyModem) -> None:
    # In a child with its address space capped: an unbounded read fails there, not here.
    script = textwrap.dedent(
        f"""
        import resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        import cmqtt
        t0 = time.monotonic()
        with cmqtt.Modem({pty_modem.path!r}, model="a7600", timeout=5.0) as modem:
            try:
                modem.cert_upload("ca.pem", "/dev/zero")
                print("no error")
            except ValueError as e:
                print("ValueError:", e)
        try:
            cmqtt.Supervisor({pty_modem.path!r}, "tcp://127.0.0.1:1883", "h",
                             certs={{"ca.pem": "/dev/zero"}})
            print("no error")
        except ValueError as e:
            print("ValueError:", e)
        print("took", time.monotonic() - t0)
        """
    )
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert len(lines) == 3, p.stdout
    for line in lines[:2]:
        assert line.startswith("ValueError:"), line
        assert "/dev/zero" in line and "10240" in line, line
    assert float(lines[2].split()[1]) < 10, lines[2]
    assert not any(l.startswith("AT+CCERTDOWN") for l in pty_modem.lines), pty_modem.lines


# ---- item 6: the context managers and stale handles ----------------------------------------


def test_exit_never_masks_the_exception_of_the_block(
    pty_modem: PtyModem, caplog: pytest.LogCaptureFixture
) -> None:
    with open_modem(pty_modem) as modem:
        modem.start()
        # The modem refuses the release: the block's exception goes on, the refusal is logged.
        pty_modem.answers["AT+CMQTTREL"] = "\r\nERROR\r\n"
        with caplog.at_level(logging.WARNING, logger="cmqtt"):
            with pytest.raises(RuntimeError, match="boom") as ei:
                with modem.client(0, "hostile-a"):
                    raise RuntimeError("boom")
        assert not isinstance(ei.value, cmqtt.Error)
        assert any("releasing the client" in r.getMessage() for r in caplog.records), [
            r.getMessage() for r in caplog.records
        ]
        # Without an exception in the block, the release's own error is raised.
        with pytest.raises(cmqtt.ModemError):
            with modem.client(1, "hostile-b"):
                pass
        pty_modem.answers.pop("AT+CMQTTREL")


def test_exit_of_a_block_that_raised_while_the_modem_stopped_answering(
    pty_modem: PtyModem, caplog: pytest.LogCaptureFixture
) -> None:
    # The modem swallows the release: it times out (the command timeout, 9 s on A76xx).
    with open_modem(pty_modem) as modem:
        modem.start()
        with caplog.at_level(logging.WARNING, logger="cmqtt"):
            with pytest.raises(KeyError, match="mine") as ei:
                with modem.client(0, "hostile-c"):
                    pty_modem.answers["AT+CMQTTREL"] = None
                    raise KeyError("mine")
        assert not isinstance(ei.value, cmqtt.TimeoutError)
        msgs = [r.getMessage() for r in caplog.records]
        assert any("releasing the client" in m and "AT+CMQTTREL" in m for m in msgs), msgs
        pty_modem.answers.pop("AT+CMQTTREL")


def test_stale_client_after_a_modem_restart_is_a_cmqtt_error(pty_modem: PtyModem) -> None:
    with open_modem(pty_modem) as modem:
        modem.start()
        c = modem.client(0, "hostile-d")
        pty_modem.send("\r\nRDY\r\n")
        deadline = time.monotonic() + 10
        while True:
            ev = modem.recv_event(timeout=max(0.0, deadline - time.monotonic()))
            assert ev is not None, "no modem_restarted event"
            if ev.kind == "modem_restarted":
                break
        with pytest.raises(cmqtt.StaleHandleError) as ei:
            c.set_check_utf8(False)
        assert isinstance(ei.value, cmqtt.Error)
        assert isinstance(ei.value, ValueError)  # what it was before: still caught as such
        assert "restarted" in str(ei.value)
        assert issubclass(cmqtt.StaleHandleError, cmqtt.Error)
