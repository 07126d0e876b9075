#!/usr/bin/env python3
"""How long each SMTP reply takes, one session at a time.

    contrib/smtp_phases.py [--count N] [--sender ADDR] [--size BYTES] HOST:PORT

Opens N sessions in turn (connect, EHLO, MAIL, RCPT, DATA, the message,
QUIT) and prints, for each reply, the median, mean, 99th percentile and
longest time from sending the command (or opening the connection) to reading the reply. Run it
beside a load (smtp-source against the same server) to see where a
loaded session waits: on postdesk the end of DATA is answered only after
the message's batch is committed and synced, every other reply at once.

Each message has its own Message-ID and a line of its own, so the
duplicate check never answers instead of the store.
"""

import argparse
import socket
import statistics
import sys
import time

PHASES = ["connect", "ehlo", "mail", "rcpt", "data", "end of data", "quit"]


def read_reply(stream):
    """The last line of one (possibly multi-line) reply."""
    while True:
        line = stream.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        if line[3:4] != b"-":
            return line


def session(host, port, sender, size, n, times):
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=60) as sock:
        stream = sock.makefile("rb")

        def step(phase, data, expect):
            nonlocal start
            if data is not None:
                sock.sendall(data)
            reply = read_reply(stream)
            now = time.perf_counter()
            times[phase].append(now - start)
            start = now
            if not reply.startswith(expect):
                raise ConnectionError(f"{phase}: {reply.decode(errors='replace').strip()}")

        body = "".join(
            f"{i} line of the message body, nothing in it but words\r\n"
            for i in range(max(1, size // 56))
        )
        message = (
            f"From: <{sender}>\r\nTo: <support@example.com>\r\n"
            f"Message-ID: <phase-{n}-{time.time_ns()}@smtp-phases>\r\n"
            f"Subject: phases {n}\r\n\r\n{body}this one is number {n}\r\n.\r\n"
        ).encode()
        step("connect", None, b"220")
        step("ehlo", b"EHLO smtp-phases\r\n", b"250")
        step("mail", f"MAIL FROM:<{sender}>\r\n".encode(), b"250")
        step("rcpt", b"RCPT TO:<support@example.com>\r\n", b"250")
        step("data", b"DATA\r\n", b"354")
        step("end of data", message, b"250")
        step("quit", b"QUIT\r\n", b"221")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", help="HOST:PORT")
    parser.add_argument("--count", type=int, default=200, help="sessions (200)")
    parser.add_argument("--sender", default="phases@example.org", help="MAIL FROM")
    parser.add_argument("--size", type=int, default=4096, help="body bytes (4096)")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")
    if not host or not port.isdigit() or args.count < 1:
        parser.error("HOST:PORT and a positive --count")
    times = {p: [] for p in PHASES}
    try:
        for n in range(args.count):
            session(host, int(port), args.sender, args.size, n, times)
    except (OSError, ConnectionError) as e:
        print(f"smtp_phases: {e}", file=sys.stderr)
        return 1
    for phase in PHASES:
        t = sorted(times[phase])
        p99 = t[min(len(t) - 1, (len(t) * 99) // 100)]
        print(
            f"{phase:12} median {statistics.median(t) * 1e3:7.3f} ms"
            f"  mean {statistics.mean(t) * 1e3:7.3f} ms"
            f"  p99 {p99 * 1e3:7.3f} ms  max {t[-1] * 1e3:7.3f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
