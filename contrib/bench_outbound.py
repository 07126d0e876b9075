#!/usr/bin/env python3
"""Outbound benchmarks for postdesk (run through contrib/bench-outbound.sh).

1. latency: customer mail at RATE messages/s over SMTP; for each one, the
   time from postdesk's 250 to its acknowledgement arriving at a real SMTP
   server (aiosmtpd, tests/common/smtp_sink.py, which timestamps arrivals).
   Prints p50, p90, p99 and max.
2. delivery rate: QUEUE acknowledgements queued (by `postdesk ingest` of an
   mbox with ingest_sends_mail = true, no server running), then `serve`
   with Postfix's smtp-sink as the smarthost; the rate is rows marked sent
   per second, from the first to the last, read from the outbox table.

Environment: POSTDESK_BIN (the binary), MESSAGES [3000] and RATE [100] for
(1), QUEUE [20000] and IN_FLIGHT [8] for (2), SKIP_LATENCY / SKIP_RATE.
"""

import json
import os
import shutil
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("POSTDESK_BIN", os.path.join(REPO, "target/release/postdesk"))
MESSAGES = int(os.environ.get("MESSAGES", "3000"))
RATE = float(os.environ.get("RATE", "100"))
QUEUE = int(os.environ.get("QUEUE", "20000"))
IN_FLIGHT = int(os.environ.get("IN_FLIGHT", "8"))
SENDERS = 8  # parallel SMTP client connections for the latency run


def rules(port, extra=""):
    return f"""[server]
smtp = "127.0.0.1:0"
hostname = "bench.example.com"
[domains]
served = ["example.com"]
[addresses]
support = ["support@example.com"]
[threading]
recent_rule = false
[outbound]
host = "127.0.0.1"
port = {port}
tls = "none"
max_in_flight = {IN_FLIGHT}
retry_initial_secs = 0.5
poll_secs = 1
auto_replies_per_hour = 1000000
{extra}
"""


def mail(i):
    return (
        f"From: Customer {i} <c{i}@bench.test>\r\n"
        f"To: support@example.com\r\n"
        f"Subject: Question {i}\r\n"
        f"Message-ID: <m{i}@bench.test>\r\n"
        f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        f"\r\nHello, this is question {i}.\r\n"
    ).encode()


def start_server(conf, data):
    log = open(os.path.join(conf, "server.log"), "w")
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    p = subprocess.Popen([BIN, "serve", "--config", conf, "--data", data],
                         stdout=subprocess.DEVNULL, stderr=log, env=env)
    ports = os.path.join(data, "ports.json")
    deadline = time.time() + 60
    while time.time() < deadline:
        if os.path.exists(ports):
            with open(ports) as f:
                return p, json.load(f)["smtp"]
        if p.poll() is not None:
            sys.exit("postdesk exited; see " + log.name)
        time.sleep(0.05)
    sys.exit("postdesk did not start")


def percentile(values, q):
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))
    return values[k]


def latency():
    tmp = tempfile.mkdtemp(prefix="postdesk-bench-out-")
    sink_dir = os.path.join(tmp, "sink")
    sink = subprocess.Popen([sys.executable, os.path.join(REPO, "tests/common/smtp_sink.py"), sink_dir],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = json.loads(sink.stdout.readline())["port"]
    conf, data = os.path.join(tmp, "conf"), os.path.join(tmp, "data")
    os.makedirs(conf)
    with open(os.path.join(conf, "rules.toml"), "w") as f:
        f.write(rules(port))
    server, smtp = start_server(conf, data)
    host, sport = smtp.rsplit(":", 1)

    acked = {}
    lock = threading.Lock()
    start = time.time() + 0.5
    errors = []

    def sender(k):
        try:
            s = smtplib.SMTP(host, int(sport), timeout=60)
            for i in range(k, MESSAGES, SENDERS):
                due = start + i / RATE
                pause = due - time.time()
                if pause > 0:
                    time.sleep(pause)
                s.sendmail(f"c{i}@bench.test", ["support@example.com"], mail(i))
                t = time.time()
                with lock:
                    acked[i] = t
            s.quit()
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_for = time.time() - start
    if errors:
        sys.exit("sending failed: " + errors[0])

    # Wait for every acknowledgement (In-Reply-To <m{i}@bench.test>).
    arrived = {}
    seen = set()
    deadline = time.time() + 120
    while len(arrived) < MESSAGES and time.time() < deadline:
        for name in os.listdir(sink_dir):
            if not name.endswith(".json") or name in seen:
                continue
            seen.add(name)
            with open(os.path.join(sink_dir, name)) as f:
                rec = json.load(f)
            raw = bytes.fromhex(rec["data_hex"]).decode("utf-8", "replace")
            for line in raw.split("\r\n"):
                if line.lower().startswith("in-reply-to:"):
                    ref = line.split(":", 1)[1].strip().strip("<>")
                    if ref.startswith("m") and ref.endswith("@bench.test"):
                        arrived[int(ref[1:-len("@bench.test")])] = rec["received_at"]
                    break
        time.sleep(0.1)
    server.terminate()
    server.wait()
    sink.stdin.close()
    sink.wait()
    lat = [(arrived[i] - acked[i]) * 1000 for i in arrived if i in acked]
    print(f"latency: {MESSAGES} messages at {RATE:.0f}/s (sent in {sent_for:.1f} s, "
          f"{MESSAGES / sent_for:.0f}/s achieved), {len(lat)} acknowledgements arrived")
    if lat:
        print(f"  250 -> ack at the sink: p50 {percentile(lat, .5):.1f} ms, "
              f"p90 {percentile(lat, .9):.1f} ms, p99 {percentile(lat, .99):.1f} ms, "
              f"max {max(lat):.1f} ms")
    if os.environ.get("KEEP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)


def rate():
    sink_bin = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not os.path.exists(sink_bin):
        print("delivery rate: skipped (no smtp-sink; apt-get install postfix)")
        return
    tmp = tempfile.mkdtemp(prefix="postdesk-bench-rate-")
    conf, data = os.path.join(tmp, "conf"), os.path.join(tmp, "data")
    os.makedirs(conf)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with open(os.path.join(conf, "rules.toml"), "w") as f:
        f.write(rules(port, "ingest_sends_mail = true"))
    mbox = os.path.join(tmp, "queue.mbox")
    with open(mbox, "wb") as f:
        for i in range(QUEUE):
            f.write(b"From c%d@bench.test Mon Mar  2 10:00:00 2026\n" % i)
            f.write(mail(i).replace(b"\r\n", b"\n"))
            f.write(b"\n")
    t = time.time()
    subprocess.run([BIN, "ingest", mbox, "--config", conf, "--data", data], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"delivery rate: {QUEUE} acknowledgements queued by ingest in {time.time() - t:.1f} s")
    sink = subprocess.Popen([sink_bin, "-u", "nobody", f"127.0.0.1:{port}", "256"])
    time.sleep(0.3)
    server, _ = start_server(conf, data)
    db = sqlite3.connect(os.path.join(data, "postdesk.sqlite3"), timeout=30)
    first = None
    deadline = time.time() + 600
    done = 0
    while time.time() < deadline:
        done = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
        if done and first is None:
            first = (time.time(), done)
        if done >= QUEUE:
            break
        time.sleep(0.1)
    end = time.time()
    failed = db.execute("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").fetchone()[0]
    server.terminate()
    server.wait()
    sink.terminate()
    sink.wait()
    if first is None:
        sys.exit("nothing was sent")
    secs = max(end - first[0], 1e-3)
    print(f"  {done} sent to smtp-sink ({failed} not sent) in {secs:.1f} s: "
          f"{(done - first[1]) / secs:.0f} mails/s sustained (max_in_flight {IN_FLIGHT})")
    if os.environ.get("KEEP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if os.environ.get("SKIP_LATENCY") != "1":
        latency()
    if os.environ.get("SKIP_RATE") != "1":
        rate()
