#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for postdesk's outbound tests.

Usage: smtp_sink.py DIR

Listens on 127.0.0.1, port 0, and prints one JSON line {"port": N} once it
is bound. Every message it accepts is written to DIR as NNNNNN.json
({"received_at", "mail_from", "rcpt_tos", "data_hex"}), via a temporary file
and a rename, so a reader never sees half a file.

It reads commands from stdin, one JSON object per line, and answers each
with one JSON line on stdout ({"ok": true, ...}):

  {"cmd": "accept"}                 accept everything (the default)
  {"cmd": "tempfail"}               answer 451 4.3.0 at the end of data
  {"cmd": "reject", "address": A}   answer RCPT TO:<A> with 550 5.1.1
  {"cmd": "down"}                   stop listening (connections refused)
  {"cmd": "up"}                     listen again, same port
  {"cmd": "hold"}                   hold every session at MAIL FROM
  {"cmd": "release"}                let held sessions go on
  {"cmd": "status"}                 {"held": sessions waiting at MAIL FROM,
                                      "stored": messages stored}
  {"cmd": "forward", "port": P, "naive": bool}
        also hand every accepted message to 127.0.0.1:P; with "naive",
        as a careless auto-responder would: Auto-Submitted, X-Loop,
        In-Reply-To and References removed, a new Subject and Message-ID,
        the From address as envelope sender.

EOF on stdin stops the sink.
"""

import asyncio
import email.utils
import itertools
import json
import os
import re
import smtplib
import sys
import threading
import time

from aiosmtpd.smtp import SMTP

OUT_DIR = sys.argv[1]
os.makedirs(OUT_DIR, exist_ok=True)

state = {
    "mode": "accept",
    "reject": set(),
    "hold": False,
    "held": 0,
    "stored": 0,
    "forward": None,
    "naive": False,
}
counter = itertools.count(1)
release = None  # asyncio.Event, made on the loop
naive_counter = itertools.count(1)


def naive_copy(data: bytes):
    """What a careless responder sends back: its own mail, no loop headers."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = re.split(rb"\r?\n(?![ \t])", head)
    drop = (b"auto-submitted", b"x-loop", b"in-reply-to", b"references",
            b"x-auto-response-suppress", b"subject", b"message-id", b"precedence")
    kept = [l for l in lines if l.split(b":", 1)[0].strip().lower() not in drop]
    n = next(naive_counter)
    kept.append(b"Subject: Your message was received (" + str(n).encode() + b")")
    kept.append(b"Message-ID: " + email.utils.make_msgid(domain="naive.test").encode())
    from_addr = ""
    for l in kept:
        if l.lower().startswith(b"from:"):
            _, addr = email.utils.parseaddr(l[5:].decode("utf-8", "replace"))
            from_addr = addr
    return b"\r\n".join(kept) + b"\r\n\r\n" + body, from_addr


def forward(envelope_from, rcpts, data):
    target = state["forward"]
    if target is None:
        return
    sender = envelope_from
    if state["naive"]:
        data, from_addr = naive_copy(data)
        sender = from_addr or envelope_from

    def send():
        try:
            with smtplib.SMTP("127.0.0.1", target, timeout=30) as s:
                s.sendmail(sender, rcpts, data)
        except Exception as e:  # a refused forward is the other side's answer
            print(json.dumps({"forward_error": str(e)}), file=sys.stderr, flush=True)

    threading.Thread(target=send, daemon=True).start()


class Handler:
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if state["hold"]:
            state["held"] += 1
            try:
                await release.wait()
            finally:
                state["held"] -= 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in state["reject"]:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if state["mode"] == "tempfail":
            return "451 4.3.0 Temporary failure, try again later"
        n = next(counter)
        record = {
            "received_at": time.time(),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data_hex": envelope.original_content.hex(),
        }
        tmp = os.path.join(OUT_DIR, ".%06d.tmp" % n)
        dst = os.path.join(OUT_DIR, "%06d.json" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, dst)
        state["stored"] += 1
        forward(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        return "250 2.0.0 Ok: queued as %06d" % n


async def main():
    global release
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    handler = Handler()

    def factory():
        return SMTP(handler, hostname="sink.test", decode_data=False,
                    enable_SMTPUTF8=True, data_size_limit=64 * 1024 * 1024)

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            cmd = json.loads(line)
        except ValueError:
            continue
        c = cmd.get("cmd")
        reply = {"ok": True}
        if c == "accept":
            state["mode"] = "accept"
            state["reject"].clear()
        elif c == "tempfail":
            state["mode"] = "tempfail"
        elif c == "reject":
            state["reject"].add(cmd["address"].lower())
        elif c == "down":
            if server is not None:
                server.close()
                await server.wait_closed()
                server = None
        elif c == "up":
            if server is None:
                server = await loop.create_server(factory, "127.0.0.1", port, reuse_address=True)
        elif c == "hold":
            state["hold"] = True
            release.clear()
        elif c == "release":
            state["hold"] = False
            release.set()
        elif c == "forward":
            state["forward"] = cmd.get("port")
            state["naive"] = bool(cmd.get("naive"))
        elif c == "status":
            reply.update({"held": state["held"], "stored": state["stored"]})
        else:
            reply = {"ok": False, "error": "unknown command %r" % c}
        print(json.dumps(reply), flush=True)
    if server is not None:
        server.close()


asyncio.run(main())
