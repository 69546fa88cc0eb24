#!/usr/bin/env python3
"""Peer (b): a careful pyserial implementation that never sleeps: it waits for the '>' prompt
before sending data and for the final result code and the '+CMQTTPUB' result line before going
on, reading with blocking reads.

    careful.py PORT BAUD SERVER TOPIC SIZE QOS N

Prints "elapsed_ns=<ns> ok=<publishes answered '+CMQTTPUB: 0,0'>".
"""

import re
import sys
import time

import serial


class Modem:
    def __init__(self, port, baud):
        self.ser = serial.Serial(port, baud, timeout=5)
        self.buf = b""

    def _fill(self):
        chunk = self.ser.read(max(1, self.ser.in_waiting))
        if not chunk:
            raise TimeoutError("modem did not answer; have %r" % self.buf)
        self.buf += chunk

    def wait_prompt(self):
        while True:
            i = self.buf.find(b">")
            if i >= 0:
                self.buf = self.buf[i + 1:]
                return
            if b"ERROR" in self.buf:
                raise RuntimeError("refused: %r" % self.buf)
            self._fill()

    def next_line(self):
        """The next complete non-empty line."""
        while True:
            while b"\r\n" in self.buf:
                line, self.buf = self.buf.split(b"\r\n", 1)
                if line:
                    return line
            self._fill()

    def command(self, line, result=None):
        """Writes a command and waits for its final result code and, if `result` is given,
        its result line (in either order); returns that line."""
        self.ser.write(line.encode() + b"\r")
        pattern = re.compile(re.escape(result.encode()) + rb": *\d+(,\d+)?$") if result else None
        ok, res = False, None
        while not ok or (pattern and res is None):
            l = self.next_line()
            if l == b"OK":
                ok = True
            elif pattern and pattern.match(l):
                res = l
            elif l == b"ERROR" or l.startswith(b"+CME ERROR"):
                raise RuntimeError("%s refused: %r" % (line, l))
        return res

    def prompted(self, line, data):
        self.ser.write(line.encode() + b"\r")
        self.wait_prompt()
        self.ser.write(data)
        while True:
            l = self.next_line()
            if l == b"OK":
                return
            if l == b"ERROR" or l.startswith(b"+CME ERROR"):
                raise RuntimeError("%s refused: %r" % (line, l))


def main() -> int:
    port, baud, server, topic, size, qos, n = sys.argv[1:8]
    baud, size, qos, n = int(baud), int(size), int(qos), int(n)
    payload = bytes(ord("a") + i % 26 for i in range(size))
    m = Modem(port, baud)
    m.ser.reset_input_buffer()
    m.ser.write(b"AT\r")
    time.sleep(0.2)  # set-up only: let a modem with echo on finish echoing
    m.ser.reset_input_buffer()
    m.buf = b""
    m.command("ATE0")
    m.command("AT+CMQTTSTART", "+CMQTTSTART")
    m.command('AT+CMQTTACCQ=0,"bench-careful"')
    line = m.command('AT+CMQTTCONNECT=0,"%s",60,1' % server, "+CMQTTCONNECT")
    if not line.endswith(b",0"):
        print("connect failed: %r" % line, file=sys.stderr)
        return 1
    good = 0
    t0 = time.perf_counter_ns()
    for _ in range(n):
        m.prompted("AT+CMQTTTOPIC=0,%d" % len(topic), topic.encode())
        m.prompted("AT+CMQTTPAYLOAD=0,%d" % len(payload), payload)
        res = m.command("AT+CMQTTPUB=0,%d,60" % qos, "+CMQTTPUB")
        good += res.endswith(b",0")
    t1 = time.perf_counter_ns()
    print(f"elapsed_ns={t1 - t0} ok={good}", flush=True)
    m.command("AT+CMQTTDISC=0,60", "+CMQTTDISC")
    m.command("AT+CMQTTREL=0")
    m.command("AT+CMQTTSTOP", "+CMQTTSTOP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
