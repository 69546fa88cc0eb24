#!/usr/bin/env python3
"""Print the messages a SIMCom modem's MQTT client receives.

    python3 subscribe.py [--port /dev/ttyUSB2] [--server tcp://broker:1883] [--count N] TOPIC...

The port and server may also come from the environment: CMQTT_PORT, CMQTT_SERVER.
Stops after --count messages, after --idle seconds without one, or on Ctrl-C.
Set CMQTT_DEBUG=1 to see the AT trace.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Optional

import cmqtt


def show(msg: cmqtt.Message) -> None:
    try:
        text = msg.payload.decode("utf-8")
    except UnicodeDecodeError:
        text = msg.payload.hex()
    print(f"{msg.topic} {text}", flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", default=os.environ.get("CMQTT_PORT"), help="serial device (env CMQTT_PORT)")
    ap.add_argument("--server", default=os.environ.get("CMQTT_SERVER"), help="tcp://host:port (env CMQTT_SERVER)")
    ap.add_argument("--baudrate", type=int, default=115200)
    ap.add_argument("--client-id", default=f"cmqtt-sub-{os.getpid()}")
    ap.add_argument("--qos", type=int, default=1, choices=(0, 1, 2))
    ap.add_argument("--count", type=int, default=0, help="stop after N messages (0: no limit)")
    ap.add_argument("--idle", type=float, default=None, help="stop after this many seconds without a message")
    ap.add_argument("--ready-file", help="create this file once subscribed (for scripts)")
    ap.add_argument("topics", nargs="+")
    args = ap.parse_args(argv)
    if not args.port or not args.server:
        ap.error("give --port and --server (or set CMQTT_PORT and CMQTT_SERVER)")
    logging.basicConfig(level=logging.DEBUG if os.environ.get("CMQTT_DEBUG") else logging.WARNING)

    lost = threading.Event()

    def on_lost(index: int, cause: int) -> None:
        print(f"client {index}: connection lost (cause {cause})", file=sys.stderr)
        lost.set()

    received = 0
    idle: Optional[float] = args.idle
    try:
        with cmqtt.Modem(args.port, baudrate=args.baudrate) as modem:
            modem.start()
            with modem.client(0, args.client_id) as client:
                client.on_connection_lost = on_lost
                client.connect(args.server)
                client.subscribe([(t, args.qos) for t in args.topics])
                if args.ready_file:
                    open(args.ready_file, "w").close()
                for msg in client.messages(timeout=idle):
                    show(msg)
                    received += 1
                    if args.count and received >= args.count:
                        break
                    if lost.is_set():
                        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted after {received} message(s)", file=sys.stderr)
    except cmqtt.Error as e:
        print(f"subscribe.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
