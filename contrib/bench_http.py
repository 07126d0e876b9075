"""Load generator for contrib/bench-http.sh: the same tickets sent as web
form posts (POST /api/v1/tickets, JSON, HTTP/1.1 keep-alive) and as SMTP
mail (smtplib), each from SESSIONS threads, each message from its own
sender with its own subject (so each opens its own ticket). Prints one line
per run: count, seconds, rate, and the server's CPU time per message.

Usage: bench_http.py HTTP_ADDR SMTP_ADDR SERVER_PID MESSAGES SESSIONS SIZE
"""

import http.client
import json
import os
import smtplib
import sys
import threading
import time
from email.message import EmailMessage

http_addr, smtp_addr, pid, messages, sessions, size = sys.argv[1:7]
messages, sessions, size, pid = int(messages), int(sessions), int(size), int(pid)
TICK = os.sysconf("SC_CLK_TCK")
BODY = ("Some ordinary text so the message has a realistic size.\n" * (size // 56 + 1))[:size]


def cpu():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def posts(worker, failures):
    host, port = http_addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    for i in range(worker, messages, sessions):
        body = json.dumps({
            "name": f"Web Customer {i}",
            "email": f"web{i}@bench.example.org",
            "subject": f"Web bench ticket {i}",
            "message": BODY,
            "category": "support",
        })
        conn.request("POST", "/api/v1/tickets", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 201:
            failures.append(r.status)


def mails(worker, failures):
    host, port = smtp_addr.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=60) as s:
        for i in range(worker, messages, sessions):
            m = EmailMessage()
            m["From"] = f"Mail Customer {i} <mail{i}@bench.example.org>"
            m["To"] = "support@example.com"
            m["Subject"] = f"Mail bench ticket {i}"
            m["Message-ID"] = f"<bench-{i}-{time.time_ns()}@bench.example.org>"
            m.set_content(BODY)
            try:
                s.send_message(m)
            except smtplib.SMTPException as e:
                failures.append(str(e))


def run(label, fn):
    failures = []
    c0, t0 = cpu(), time.monotonic()
    threads = [threading.Thread(target=fn, args=(w, failures)) for w in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    used = cpu() - c0
    print(f"{label}: {messages} in {secs:.2f} s = {messages / secs:,.0f} tickets/s, "
          f"server CPU {1000 * used / messages:.3f} ms/ticket, failures {len(failures)}")
    if failures:
        print(f"  first failures: {failures[:5]}")
        sys.exit(1)


run("http POST /api/v1/tickets", posts)
run("smtp (smtplib)           ", mails)
