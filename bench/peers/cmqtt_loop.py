#!/usr/bin/env python3
"""The bindings benchmark's publish loop in Python, through the cmqtt module.

    cmqtt_loop.py PORT BAUD SERVER TOPIC SIZE QOS N

Opens the modem, connects, publishes 2 warm-up messages, then times N publishes of SIZE bytes
and prints "elapsed_ns=<ns> ok=<n>". The same loop as `cmqtt-bench child-publish` (Rust) and
bench/c/publish_loop.c (C).
"""

import os
import sys
import time

import cmqtt


def main() -> int:
    port, baud, server, topic, size, qos, n = sys.argv[1:8]
    baud, size, qos, n = int(baud), int(size), int(qos), int(n)
    payload = bytes(ord("a") + i % 26 for i in range(size))
    with cmqtt.Modem(port, baudrate=baud) as modem:
        modem.start()
        with modem.client(0, f"bench-py-{os.getpid()}") as client:
            client.connect(server)
            for _ in range(2):
                client.publish(topic, payload, qos=qos)
            t0 = time.perf_counter_ns()
            for _ in range(n):
                client.publish(topic, payload, qos=qos)
            t1 = time.perf_counter_ns()
            print(f"elapsed_ns={t1 - t0} ok={n}", flush=True)
            client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
