#!/usr/bin/env python3
"""Peer (a): the approach most scripts for SIMCom modems take today, as in vendor demo code.

    naive_sleep.py PORT BAUD SERVER TOPIC SIZE QOS N [SLEEP]

Every command is written (ended by CR, as in the manuals' examples: demos that end it by CRLF
also lose the first byte of prompted data to the LF), then the script sleeps a fixed time (SLEEP seconds, default 0.1, the
shortest such scripts use; vendor demos use 0.5-1 s), then reads whatever has arrived and looks
for the expected text in it. The topic and payload are written after the sleep that follows
their command, and followed by a sleep of their own. There is no parsing of unsolicited output
and no waiting for the real answer: a slower answer is simply missed (reported as not ok).

Prints "elapsed_ns=<ns> ok=<publishes whose '+CMQTTPUB: 0,0' was seen>".
"""

import sys
import time

import serial


def send_at(ser, command, back, timeout):
    """The vendor demos' helper, kept as they write it."""
    rec_buff = b""
    ser.write((command + "\r").encode())
    time.sleep(timeout)
    if ser.in_waiting:
        time.sleep(0.01)
        rec_buff = ser.read(ser.in_waiting)
    if back.encode() not in rec_buff:
        return 0, rec_buff
    return 1, rec_buff


def send_data(ser, data, back, timeout):
    ser.write(data)
    time.sleep(timeout)
    rec_buff = b""
    if ser.in_waiting:
        time.sleep(0.01)
        rec_buff = ser.read(ser.in_waiting)
    return (1 if back.encode() in rec_buff else 0), rec_buff


def main() -> int:
    port, baud, server, topic, size, qos, n = sys.argv[1:8]
    pause = float(sys.argv[8]) if len(sys.argv) > 8 else 0.1
    baud, size, qos, n = int(baud), int(size), int(qos), int(n)
    payload = bytes(ord("a") + i % 26 for i in range(size))
    ser = serial.Serial(port, baud)
    ser.reset_input_buffer()
    # Set-up, with the demos' generous sleeps (not timed).
    send_at(ser, "AT", "OK", 0.5)
    send_at(ser, "ATE0", "OK", 0.5)
    send_at(ser, "AT+CMQTTSTART", "+CMQTTSTART: 0", 1)
    send_at(ser, 'AT+CMQTTACCQ=0,"bench-naive"', "OK", 0.5)
    ok, rec = send_at(ser, 'AT+CMQTTCONNECT=0,"%s",60,1' % server, "+CMQTTCONNECT: 0,0", 1)
    if not ok:
        print("connect failed: %r" % rec, file=sys.stderr)
        return 1
    good = 0
    t0 = time.perf_counter_ns()
    for _ in range(n):
        send_at(ser, "AT+CMQTTTOPIC=0,%d" % len(topic), ">", pause)
        send_data(ser, topic.encode(), "OK", pause)
        send_at(ser, "AT+CMQTTPAYLOAD=0,%d" % len(payload), ">", pause)
        send_data(ser, payload, "OK", pause)
        ok, rec = send_at(ser, "AT+CMQTTPUB=0,%d,60" % qos, "+CMQTTPUB: 0,0", pause)
        good += ok
    t1 = time.perf_counter_ns()
    print(f"elapsed_ns={t1 - t0} ok={good}", flush=True)
    send_at(ser, "AT+CMQTTDISC=0,60", "OK", 0.5)
    send_at(ser, "AT+CMQTTREL=0", "OK", 0.3)
    send_at(ser, "AT+CMQTTSTOP", "OK", 0.3)
    ser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
