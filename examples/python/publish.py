#!/usr/bin/env python3
"""Publish one message through a SIMCom modem's MQTT client.

    python3 publish.py [--port /dev/ttyUSB2] [--server tcp://broker:1883] TOPIC MESSAGE

The port and server may also come from the environment: CMQTT_PORT, CMQTT_SERVER
(try it without hardware: `cmqtt sim` prints the pseudo-terminal to use as the port).
Set CMQTT_DEBUG=1 to see the AT trace.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import cmqtt


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", default=os.environ.get("CMQTT_PORT"), help="serial device (env CMQTT_PORT)")
    ap.add_argument("--server", default=os.environ.get("CMQTT_SERVER"), help="tcp://host:port (env CMQTT_SERVER)")
    ap.add_argument("--baudrate", type=int, default=115200)
    ap.add_argument("--client-id", default=f"cmqtt-pub-{os.getpid()}")
    ap.add_argument("--qos", type=int, default=1, choices=(0, 1, 2))
    ap.add_argument("--retain", action="store_true")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("topic")
    ap.add_argument("message")
    args = ap.parse_args(argv)
    if not args.port or not args.server:
        ap.error("give --port and --server (or set CMQTT_PORT and CMQTT_SERVER)")
    logging.basicConfig(level=logging.DEBUG if os.environ.get("CMQTT_DEBUG") else logging.WARNING)

    try:
        with cmqtt.Modem(args.port, baudrate=args.baudrate) as modem:
            modem.start()
            with modem.client(0, args.client_id) as client:
                client.connect(args.server, username=args.username, password=args.password)
                client.publish(args.topic, args.message, qos=args.qos, retain=args.retain)
                client.disconnect()
    except cmqtt.ModemError as e:
        print(f"publish.py: the modem refused: {e} (code {e.code})", file=sys.stderr)
        return 1
    except cmqtt.Error as e:
        print(f"publish.py: {e}", file=sys.stderr)
        return 1
    print(f"published {len(args.message.encode())} bytes to {args.topic} (qos {args.qos}) via {modem.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
