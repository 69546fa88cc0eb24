#!/usr/bin/env python3
"""Publish through a supervised client: the library keeps the connection up (reconnecting with
backoff after broker, network, modem or port faults), publishes go through an outbox and each
returns a Delivery ticket.

    python3 supervised.py [--port /dev/ttyUSB2] [--server tcp://broker:1883] [--count N]
                          [--outbox FILE] TOPIC MESSAGE

Publishes "MESSAGE #i" for i = 1..N at QoS 1 and waits until the broker acknowledged each.
With --outbox the outbox is kept in FILE: what a crashed run left there is sent first.
Every supervisor event is printed. The port and server may also come from CMQTT_PORT and
CMQTT_SERVER (try it without hardware: `cmqtt sim` prints the pseudo-terminal to use).
"""

from __future__ import annotations

import argparse
import os
import sys

import cmqtt


def show(event: cmqtt.SupervisorEvent) -> None:
    # Runs on the library's threads (mostly the supervisor's own): keep it short.
    print(f"event: {event!r}", flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", default=os.environ.get("CMQTT_PORT"), help="serial device (env CMQTT_PORT)")
    ap.add_argument("--server", default=os.environ.get("CMQTT_SERVER"), help="tcp://host:port (env CMQTT_SERVER)")
    ap.add_argument("--client-id", default=f"cmqtt-supervised-{os.getpid()}")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--outbox", help="keep the outbox in this file")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each delivery")
    ap.add_argument("topic")
    ap.add_argument("message")
    args = ap.parse_args(argv)
    if not args.port or not args.server:
        ap.error("give --port and --server (or set CMQTT_PORT and CMQTT_SERVER)")

    try:
        with cmqtt.Supervisor(args.port, args.server, args.client_id, outbox_path=args.outbox,
                              on_event=show) as sup:
            left = sup.pending()
            if left:
                print(f"{len(left)} publish(es) left by an earlier run are sent first")
            tickets = [sup.publish(args.topic, f"{args.message} #{i}", qos=1)
                       for i in range(1, args.count + 1)]
            for t in tickets:
                t.wait_delivered(timeout=args.timeout)
            print(f"delivered {len(tickets)} message(s)")
    except cmqtt.DeliveryError as e:
        print(f"publish {e.id} {e.status}: {e.reason}", file=sys.stderr)
        return 1
    except cmqtt.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
