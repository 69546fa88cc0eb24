"""The event plane through the binding: a connection loss reaches its callbacks while
``on_message`` blocks, and a stale client (from before a modem restart) collected by the garbage
collector does not clear the callbacks of the client that replaced it.

The modem is the scripted one on a pseudo-terminal from ``test_hostile``.
"""

from __future__ import annotations

import gc
import threading
import time

import cmqtt
from test_hostile import PtyModem, open_modem, pty_modem  # noqa: F401  (fixture)


def message(client: int, topic: str, payload: str) -> str:
    return (
        f"\r\n+CMQTTRXSTART: {client},{len(topic)},{len(payload)}\r\n"
        f"+CMQTTRXTOPIC: {client},{len(topic)}\r\n{topic}\r\n"
        f"+CMQTTRXPAYLOAD: {client},{len(payload)}\r\n{payload}\r\n"
        f"+CMQTTRXEND: {client}\r\n"
    )


def wait_for(cond: "object", timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return bool(cond())  # type: ignore[operator]


def test_a_loss_reaches_its_callback_while_on_message_blocks(pty_modem: PtyModem) -> None:  # noqa: F811
    """The issue's reproduction: queue capacity 4, a blocking on_message, 12 messages, then
    +CMQTTCONNLOST. Before, the loss notification was dropped with the overflow."""
    pty_modem.answers["AT+CMQTTCONNECT"] = "\r\nOK\r\n\r\n+CMQTTCONNECT: 0,0\r\n"
    with open_modem(pty_modem, queue_capacity=4) as modem:
        modem.start()
        c = modem.client(0, "plane-a")
        c.connect("tcp://127.0.0.1:1883")
        gate = threading.Event()
        got: list[bytes] = []
        lost: list[tuple[int, int]] = []

        def on_message(m: cmqtt.Message) -> None:
            got.append(m.payload)
            gate.wait(10)

        c.on_message = on_message
        c.on_connection_lost = lambda i, cause: lost.append((i, cause))
        for i in range(12):
            pty_modem.send(message(0, "t", f"m{i}"))
        assert wait_for(lambda: len(got) == 1)
        pty_modem.send("\r\n+CMQTTCONNLOST: 0,1\r\n")
        # State at once, whatever the callbacks are doing.
        assert wait_for(lambda: not c.connected), "still connected after +CMQTTCONNLOST"
        gate.set()
        assert wait_for(lambda: lost == [(0, 1)]), f"on_connection_lost never ran: {lost}"
        assert wait_for(lambda: len(got) + c.dropped_messages == 12)
        assert c.dropped_messages > 0


def test_a_collected_stale_client_keeps_its_successors_callbacks(pty_modem: PtyModem) -> None:  # noqa: F811
    with open_modem(pty_modem) as modem:
        modem.start()
        old = modem.client(0, "plane-b")
        old.on_message = lambda m: None
        pty_modem.send("\r\nRDY\r\n")
        deadline = time.monotonic() + 10
        while True:
            ev = modem.recv_event(timeout=max(0.0, deadline - time.monotonic()))
            assert ev is not None, "no modem_restarted event"
            if ev.kind == "modem_restarted":
                break
        modem.start()
        new = modem.client(0, "plane-b")
        got: list[bytes] = []
        new.on_message = lambda m: got.append(m.payload)
        del old
        gc.collect()
        pty_modem.send(message(0, "t", "after"))
        assert wait_for(lambda: got == [b"after"]), (
            "the collected stale client cleared the new client's callback"
        )
