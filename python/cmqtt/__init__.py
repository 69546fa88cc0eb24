"""Drive the MQTT client built into SIMCom LTE modems over AT commands.

Supported: A7600/A76xx, SIM7600, SIM7672X/SIM7652X. A thin layer over the Rust crate ``cmqtt``
(every AT command, check and parser lives there)::

    import cmqtt

    with cmqtt.Modem("/dev/ttyUSB2", baudrate=115200) as modem:   # opens, syncs, identifies
        modem.start()
        with modem.client(0, "device-1", tls=False) as client:    # ACCQ ... REL
            client.on_message = lambda msg: print(msg.topic, msg.payload)
            client.connect("tcp://127.0.0.1:1883", keepalive=60, clean_session=True)
            client.subscribe("cmd/#", qos=1)             # or a list of (topic, qos)
            client.publish("data/x", b"\\x00\\x01", qos=1, retain=False, timeout=60)
            msg = client.recv(timeout=5.0)               # Message or None
            for msg in client.messages(timeout=10.0): ...
            client.unsubscribe("cmd/#")
            client.disconnect()

Blocking and threads
    Every call that waits on the modem releases the GIL, so other Python threads run. It runs
    on the calling thread (no thread per call) and sleeps until the modem answers (no periodic
    wakeups). On the main thread, Ctrl-C still raises ``KeyboardInterrupt`` at once in a
    ``recv(timeout=None)``, ``messages()``, a ``publish`` waiting for its PUBACK, a
    ``connect``, ...: while such a call runs, the module lends Python a ``signal.set_wakeup_fd``
    (the fd in place before, e.g. asyncio's, still gets every signal and is put back), and a
    watcher thread interrupts the modem's wait. An AT transaction cannot be taken back: the
    modem may still carry out an interrupted command (an interrupted publish may still be
    delivered; the interruption is logged on the ``cmqtt`` logger, the modem's late answer
    arrives as a modem event, and the next command first gets back in step). Ctrl-C also
    interrupts a command another thread is waiting for on the same modem, if it has not
    finished within 40 ms. Another signal with a Python handler (which may raise nothing) runs
    during a wait, which then goes on, and after an AT command returns, never costing it.
    Opening a port and closing a supervisor run on a pooled worker thread when called from the
    main thread; the waits of ``Supervisor``, ``Delivery`` and ``Modem.recv_event`` check for
    signals every 50 ms on the main thread. Modem and Client methods may be called from several
    threads at once.

Callbacks
    ``client.on_message``, ``client.on_connection_lost``, ``modem.on_no_network`` and
    ``modem.on_event`` run on the library's dispatch thread, holding the GIL, one at a time.
    They may call any method (a callback may publish). An exception raised in a callback is
    logged on the ``cmqtt`` logger with its traceback, and delivery goes on. Release the client
    (or close the modem) to drop the callbacks.

Logging
    The logger ``cmqtt`` gets the AT trace at DEBUG (``>> AT+CMQTTSTART``, ``<< OK``, passwords
    redacted), the library's warnings (queue overflows, ...) and callback exceptions. The trace
    costs nothing while DEBUG is off for that logger.

Staying connected
    ``Supervisor(port, server, client_id, ...)`` keeps one client connected through broker
    restarts, lost connections and network, modem restarts and a port that vanishes and comes
    back (reconnecting with exponential backoff and jitter, re-subscribing), and reports every
    transition as a ``SupervisorEvent`` (``on_event`` / ``recv_event()``). Publishes go
    through an outbox (bounded; ``when_full`` "block", "error" or "drop_oldest"; optionally kept
    in ``outbox_path``) and return a ``Delivery`` ticket::

        with cmqtt.Supervisor("/dev/ttyUSB2", "tcp://broker:1883", "device-1",
                              subscriptions=["cmd/#"], outbox_path="outbox.bin") as sup:
            sup.on_event = lambda e: print(e)
            sup.on_message = lambda msg: print(msg.topic, msg.payload)
            d = sup.publish("data/x", b"42", qos=1)       # queued while disconnected
            d.wait_delivered(timeout=60)                 # DeliveryError / TimeoutError

    ``on_event`` runs on the thread that caused the event (mostly the supervisor's own
    thread: keep it short, do not wait there); ``on_message`` on the modem's dispatch thread.

Errors
    ``Error`` (``.code``: the modem's <err> code or None) is the base of ``ModemError``,
    ``ConnectionLostError`` (also ``ConnectionError``), ``TimeoutError`` (also the builtin
    ``TimeoutError``), ``SerialError`` (also ``OSError``), ``NotConnectedError``,
    ``ClosedError``, ``UnsupportedError``, ``ProtocolError``, ``DeliveryError`` (``.id``,
    ``.status``, ``.reason``), ``OutboxFullError`` and ``StaleHandleError`` (also
    ``ValueError``: a client used after the modem restarted). Arguments outside the spec's
    range raise ``ValueError`` naming the allowed range; arguments of the wrong type raise
    ``TypeError``. An error while leaving a ``with`` block whose body raised is logged on the
    ``cmqtt`` logger, never raised over the body's exception.
"""

from ._cmqtt import (
    Client,
    ClosedError,
    ConnectionLostError,
    Delivery,
    DeliveryError,
    Error,
    Event,
    Message,
    MessageIterator,
    Modem,
    ModemError,
    NotConnectedError,
    OutboxFullError,
    ProtocolError,
    SerialError,
    StaleHandleError,
    Supervisor,
    SupervisorEvent,
    SupervisorMessageIterator,
    TimeoutError,
    UnsupportedError,
    __version__,
    core_version,
)

__all__ = [
    "Client",
    "ClosedError",
    "ConnectionLostError",
    "Delivery",
    "DeliveryError",
    "Error",
    "Event",
    "Message",
    "MessageIterator",
    "Modem",
    "ModemError",
    "NotConnectedError",
    "OutboxFullError",
    "ProtocolError",
    "SerialError",
    "StaleHandleError",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorMessageIterator",
    "TimeoutError",
    "UnsupportedError",
    "__version__",
    "core_version",
]
