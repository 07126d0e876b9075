#!/usr/bin/env python3
"""Memory benchmark for postdesk (run through contrib/bench-memory.sh).

Starts `postdesk serve` on a fresh data directory (three agents, outbound
mail written to the Maildir fallback), then SESSIONS smtplib clients at once
each send one message of SIZE_MB megabytes: a plain-text body of TEXT_SHARE
of the size and a base64 attachment for the rest. Prints, read from
/proc/PID/status: the server's RSS before, its peak (VmHWM) and its RSS once
every message is stored and the outbox is idle again; and the size of the
database and its WAL before and after.

Environment: POSTDESK_BIN (the binary), SESSIONS [20], SIZE_MB [10],
TEXT_SHARE [0.5], AGENTS [3], KEEP=1 (keep the temp dir).
"""

import base64
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
SESSIONS = int(os.environ.get("SESSIONS", "20"))
SIZE_MB = float(os.environ.get("SIZE_MB", "10"))
TEXT_SHARE = float(os.environ.get("TEXT_SHARE", "0.5"))
AGENTS = int(os.environ.get("AGENTS", "3"))


def rules():
    agents = "\n".join(f'agent{i} = "agent{i}@example.com"' for i in range(AGENTS))
    return f"""[server]
smtp = "127.0.0.1:0"
hostname = "bench.example.com"
[domains]
served = ["example.com"]
[addresses]
support = ["support@example.com"]
[limits]
max_message_size = {int(SIZE_MB * 1.2 * 1024 * 1024) + 65536}
[agents]
{agents}
[outbound]
poll_secs = 1
"""


def mail(i):
    size = int(SIZE_MB * 1024 * 1024)
    text_bytes = int(size * TEXT_SHARE)
    line = "The quick brown fox jumps over the lazy dog, message %d. " % i
    line = (line * 2)[:76] + "\r\n"
    text = line * (text_bytes // len(line))
    att_raw = os.urandom(max(0, (size - len(text)) * 3 // 4))
    att = base64.encodebytes(att_raw).decode().replace("\n", "\r\n")
    return (
        f"From: Customer {i} <c{i}@bench.test>\r\n"
        f"To: support@example.com\r\n"
        f"Subject: Large message {i}\r\n"
        f"Message-ID: <big{i}@bench.test>\r\n"
        f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/mixed; boundary=BOUNDARY\r\n"
        f"\r\n--BOUNDARY\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"{text}"
        f"--BOUNDARY\r\nContent-Type: application/octet-stream; name=\"data{i}.bin\"\r\n"
        f"Content-Disposition: attachment; filename=\"data{i}.bin\"\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n"
        f"{att}"
        f"--BOUNDARY--\r\n"
    ).encode()


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0]) // 1024  # MiB
    return out


def sizes(data):
    def size(name):
        p = os.path.join(data, name)
        return os.path.getsize(p) / 1e6 if os.path.exists(p) else 0.0
    return size("postdesk.sqlite3"), size("postdesk.sqlite3-wal")


def main():
    tmp = tempfile.mkdtemp(prefix="postdesk-bench-mem-")
    conf, data = os.path.join(tmp, "conf"), os.path.join(tmp, "data")
    os.makedirs(conf)
    with open(os.path.join(conf, "rules.toml"), "w") as f:
        f.write(rules())
    log = open(os.path.join(tmp, "server.log"), "w")
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    server = subprocess.Popen([BIN, "serve", "--config", conf, "--data", data],
                              stdout=subprocess.DEVNULL, stderr=log, env=env)
    ports = os.path.join(data, "ports.json")
    deadline = time.time() + 60
    while not os.path.exists(ports):
        if server.poll() is not None or time.time() > deadline:
            sys.exit("postdesk did not start; see " + log.name)
        time.sleep(0.05)
    with open(ports) as f:
        host, port = json.load(f)["smtp"].rsplit(":", 1)

    messages = [mail(i) for i in range(SESSIONS)]
    time.sleep(1.0)
    before = status(server.pid)
    db_before = sizes(data)
    errors = []
    barrier = threading.Barrier(SESSIONS)

    def send(i):
        try:
            s = smtplib.SMTP(host, int(port), timeout=600)
            barrier.wait()
            s.sendmail(f"c{i}@bench.test", ["support@example.com"], messages[i])
            s.quit()
        except Exception as e:  # reported below
            errors.append(repr(e))

    t0 = time.time()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - t0
    if errors:
        sys.exit("sending failed: " + errors[0])

    db = os.path.join(data, "postdesk.sqlite3")
    expect_out = SESSIONS * AGENTS
    deadline = time.time() + 300
    while time.time() < deadline:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        stored = c.execute("SELECT count(*) FROM messages WHERE direction = 'inbound'").fetchone()[0]
        pending = c.execute("SELECT count(*) FROM outbox WHERE status NOT IN ('sent', 'failed')").fetchone()[0]
        outbound = c.execute("SELECT count(*) FROM outbox").fetchone()[0]
        c.close()
        if stored == SESSIONS and pending == 0 and outbound >= expect_out:
            break
        time.sleep(0.2)
    time.sleep(2.0)  # let the checkpointer run
    after = status(server.pid)
    db_after = sizes(data)
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    notif = c.execute("SELECT max(length(raw)) FROM outbox").fetchone()[0]
    c.close()
    server.terminate()
    server.wait(timeout=60)
    total = sum(len(m) for m in messages) / 1e6
    print(f"{SESSIONS} sessions x {len(messages[0]) / 1e6:.1f} MB ({total:.0f} MB) in {took:.1f} s; "
          f"{stored} stored, {outbound} outbound")
    print(f"server RSS: idle {before['VmRSS']} MiB, peak (VmHWM) {after['VmHWM']} MiB, "
          f"after {after['VmRSS']} MiB")
    print(f"database: {db_before[0]:.1f} MB -> {db_after[0]:.1f} MB, "
          f"WAL {db_before[1]:.1f} MB -> {db_after[1]:.1f} MB")
    if notif is not None:
        print(f"largest outbound mail: {notif / 1e6:.2f} MB")
    if os.environ.get("KEEP"):
        print("kept", tmp)
    else:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
