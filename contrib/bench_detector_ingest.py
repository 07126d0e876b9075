#!/usr/bin/env python3
"""SMTP ingest rate with the bypass detector on and off (run it through
contrib/bench-detector-ingest.sh, which documents what is measured and
the environment knobs).

Steps:
1. Read every case of tests/fixtures/detector/*.txt (the labelled client
   mail, positives and negatives; `\\u{XXXX}` escapes unescaped as in
   tests/detector_quality.rs) and render MESSAGES RFC 5322 messages cycling
   through the bodies: unique Message-ID, a numbered Subject, 500 customer
   addresses, To support@example.com, text/plain utf-8 (7bit or
   quoted-printable). Rendered once, to dot-stuffed DATA bytes, before any
   clock starts; every run sends the same bytes.
2. Baseline: the generator against Postfix's smtp-sink (accepts, discards).
3. ROUNDS x (detector OFF, SCAN, ON), each on a fresh data dir and a
   fresh server. The generator: SESSIONS SMTP sessions over PROCS processes
   (threads inside each), messages handed out from a shared counter; the
   time is from the first MAIL to the last 250, and only 250s count.
4. After each run: the store must hold every message (`postdesk messages
   --json`, `postdesk tickets --json`; SKIP_COUNT=1 skips), and the ON run's
   `detector_flagged` events are counted from the database (read-only).
"""

import email.policy
import email.utils
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from email.message import EmailMessage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("POSTDESK_BIN", os.path.join(REPO, "target/release/postdesk"))
MESSAGES = int(os.environ.get("MESSAGES", "10000"))
SESSIONS = int(os.environ.get("SESSIONS", "16"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
# Fraction of messages drawn from the labelled positives; empty: the set's
# own mix (about 60% positive, a worst case for the actions).
POSITIVE_SHARE = os.environ.get("POSITIVE_SHARE", "")
MODES = ("off", "scan", "on")
PROCS = int(os.environ.get("PROCS", str(min(SESSIONS, max(2, os.cpu_count() or 2)))))
SKIP_COUNT = os.environ.get("SKIP_COUNT", "0") == "1"
KEEP = os.environ.get("KEEP", "0") == "1"
RUST_LOG = os.environ.get("RUST_LOG", "warn")
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "1800"))
FIXTURES = os.path.join(REPO, "tests/fixtures/detector")
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
RCPT = "support@example.com"


def die(msg):
    print(f"bench-detector-ingest: {msg}", file=sys.stderr)
    sys.exit(1)


# --- the messages -------------------------------------------------------------

def unescape(s):
    """`\\u{200B}` -> the character (tests/detector_quality.rs `unescape`)."""
    def one(m):
        return chr(int(m.group(1), 16))
    return re.sub(r"\\u\{([0-9A-Fa-f]+)\}", one, s)


def load_bodies():
    names = sorted(n for n in os.listdir(FIXTURES) if n.endswith(".txt"))
    cases = []  # (file, id, expect, body)
    for name in names:
        with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
            text = f.read()
        cur, lines = None, []
        for line in text.splitlines():
            if line.startswith("#### "):
                if cur:
                    cases.append((*cur, unescape("\n".join(lines).rstrip())))
                parts = line[5:].split()
                expect = next((p[7:] for p in parts if p.startswith("expect=")), "")
                cur, lines = (name, parts[0], expect), []
            else:
                lines.append(line)
        if cur:
            cases.append((*cur, unescape("\n".join(lines).rstrip())))
    if not cases:
        die(f"no cases in {FIXTURES}")
    return cases


SUBJECTS = [
    "Invoice question", "Question about my return", "Quarterly estimate",
    "Receipts for March", "Payroll question", "Re: documents", "Follow-up",
    "Bookkeeping help", "1099 question", "Engagement letter",
]


def render(cases, n):
    """[(mail_from, DATA bytes: CRLF, dot-stuffed, ending in CRLF.CRLF)]."""
    token = f"{os.getpid()}.{int(time.time())}"
    base = time.time() - n
    out = []
    pos = [c for c in cases if c[2]]
    neg = [c for c in cases if not c[2]]
    share = float(POSITIVE_SHARE) if POSITIVE_SHARE else None
    for i in range(n):
        if share is None:
            _, _, _, body = cases[i % len(cases)]
        elif int((i + 1) * share) > int(i * share):
            _, _, _, body = pos[i % len(pos)]
        else:
            _, _, _, body = neg[i % len(neg)]
        addr = f"client{i % 500}@customer{i % 50}.example.org"
        m = EmailMessage(policy=email.policy.SMTP)
        m["From"] = email.utils.formataddr((f"Client {i % 500}", addr))
        m["To"] = RCPT
        m["Subject"] = f"{SUBJECTS[i % len(SUBJECTS)]} {i + 1}"
        m["Date"] = email.utils.format_datetime(datetime.fromtimestamp(base + i, timezone.utc))
        m["Message-ID"] = f"<bench.{i}.{token}@customer{i % 50}.example.org>"
        if body.isascii():
            m.set_content(body + "\n", charset="utf-8")  # 7bit, or QP for long lines
        else:
            m.set_content(body + "\n", charset="utf-8", cte="quoted-printable")
        data = m.as_bytes()
        data = re.sub(rb"(?m)^\.", b"..", data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        out.append((addr, data + b".\r\n"))
    return out


# --- the load generator ---------------------------------------------------------

MSGS = []  # filled before the workers fork; inherited, never pickled


def session(port, counter, go, ready, res, lock):
    """One SMTP session: takes message indices from `counter` until none are left."""
    s = None
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=120)
        code, _ = s.ehlo("bench.client.example.org")
        if code != 250:
            raise smtplib.SMTPException(f"EHLO {code}")
    except Exception as e:  # its messages go to the other sessions
        with lock:
            res["errors"].append(f"connect: {e!r}")
        ready.release()
        return
    ready.release()
    go.wait()
    first = last = None
    ok = fail = nbytes = 0
    try:
        while True:
            with counter.get_lock():
                i = counter.value
                counter.value = i + 1
            if i >= len(MSGS):
                break
            sender, blob = MSGS[i]
            if first is None:
                first = time.monotonic()
            code, msg = s.mail(sender)
            if code == 250:
                code, msg = s.rcpt(RCPT)
            if code == 250:
                s.putcmd("data")
                code, msg = s.getreply()
                if code == 354:
                    s.send(blob)
                    code, msg = s.getreply()
                    if code == 250:
                        ok += 1
                        nbytes += len(blob)
                        last = time.monotonic()
                        continue
            fail += 1
            with lock:
                if len(res["errors"]) < 5:
                    res["errors"].append(f"message {i}: {code} {msg!r}")
            if code < 400 or code >= 600 or code == 421:
                raise smtplib.SMTPException(f"{code} {msg!r}")
            s.rset()
        s.quit()
    except Exception as e:
        with lock:
            res["errors"].append(f"session: {e!r}")
    with lock:
        res["ok"] += ok
        res["fail"] += fail
        res["bytes"] += nbytes
        if first is not None:
            res["first"] = min(res["first"], first)
        if last is not None:
            res["last"] = max(res["last"], last)


def worker(port, nsessions, counter, barrier, out):
    res = {"ok": 0, "fail": 0, "bytes": 0, "first": float("inf"), "last": float("-inf"), "errors": []}
    lock = threading.Lock()
    go = threading.Event()
    ready = threading.Semaphore(0)
    threads = [threading.Thread(target=session, args=(port, counter, go, ready, res, lock))
               for _ in range(nsessions)]
    for t in threads:
        t.start()
    # Every session connects and says EHLO before the start line.
    for _ in threads:
        ready.acquire(timeout=130)
    barrier.wait()
    go.set()
    for t in threads:
        t.join()
    out.put(res)


def load(port):
    """Send every message of MSGS to 127.0.0.1:port; returns the totals."""
    ctx = mp.get_context("fork")
    procs = max(1, min(PROCS, SESSIONS))
    counter = ctx.Value("q", 0)
    barrier = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    shares = [SESSIONS // procs + (1 if k < SESSIONS % procs else 0) for k in range(procs)]
    workers = [ctx.Process(target=worker, args=(port, n, counter, barrier, out)) for n in shares]
    for w in workers:
        w.start()
    barrier.wait(timeout=120)
    total = {"ok": 0, "fail": 0, "bytes": 0, "first": float("inf"), "last": float("-inf"), "errors": []}
    deadline = time.time() + TIMEOUT
    for _ in workers:
        try:
            r = out.get(timeout=max(1, deadline - time.time()))
        except Exception:
            for w in workers:
                w.kill()
            die(f"the load generator did not finish within BENCH_TIMEOUT={TIMEOUT:.0f}s")
        for k in ("ok", "fail", "bytes"):
            total[k] += r[k]
        total["first"] = min(total["first"], r["first"])
        total["last"] = max(total["last"], r["last"])
        total["errors"] += r["errors"]
    for w in workers:
        w.join()
    total["secs"] = total["last"] - total["first"] if total["ok"] else float("nan")
    return total


# --- servers -----------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            die(f"{what} exited (status {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    die(f"nothing listens on 127.0.0.1:{port} ({what})")


def cpu_secs(pid):
    """User + system CPU seconds of a process (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


RULES = """# Written by contrib/bench_detector_ingest.py (detector {mode}).
[server]
smtp = "127.0.0.1:0"
hostname = "postdesk.bench"

[domains]
served = ["example.com"]

[addresses]
support = ["support@example.com"]

# Every message has its own subject already; as in bench-smtp.sh, the
# recent-ticket rule is off so that each message opens its own ticket.
[threading]
recent_rule = false

[limits]
max_connections = 1000
max_connections_per_ip = 1000

[monitoring]
admins = ["admins@example.com"]

[detector]
enabled = {enabled}
{scope}{actions}"""

# SCAN mode: the detector scans and records its verdict, its actions are off.
ACTIONS_OFF = """
[detector.actions]
warn = false
alert = false
suspend_on_repeat = false
"""

SCOPE_ANY = """
# Empty lists mean any: every customer message is scanned (the default
# scope would scan only Accounting Support tickets).
[detector.scope]
queues = []
issue_types = []
statuses = []
"""


def write_config(work, mode):
    conf = os.path.join(work, f"config-{mode}")
    os.makedirs(conf)
    with open(os.path.join(conf, "rules.toml"), "w") as f:
        f.write(RULES.format(mode=mode.upper(), enabled="false" if mode == "off" else "true",
                             scope="" if mode == "off" else SCOPE_ANY,
                             actions=ACTIONS_OFF if mode == "scan" else ""))
    scratch = os.path.join(work, f"check-{mode}")
    r = subprocess.run([BIN, "check", "--config", conf, "--data", scratch],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die(f"postdesk check rejects {conf}/rules.toml:\n{r.stdout}{r.stderr}")
    shutil.rmtree(scratch, ignore_errors=True)
    return conf


def start_server(conf, data, log_path):
    os.makedirs(data)
    log = open(log_path, "w")
    env = dict(os.environ, RUST_LOG=RUST_LOG)
    p = subprocess.Popen([BIN, "serve", "--config", conf, "--data", data],
                         stdout=subprocess.DEVNULL, stderr=log, env=env)
    ports = os.path.join(data, "ports.json")
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            log.close()
            sys.stderr.write(open(log_path).read())
            die(f"postdesk serve exited (status {p.returncode}); log above")
        try:
            with open(ports) as f:
                smtp = json.load(f)["smtp"]
            # Written (atomically) once the listeners are bound. No probe
            # connection: one closed unread ends in a logged reset.
            return p, int(smtp.rsplit(":", 1)[1])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    p.kill()
    die("postdesk serve did not write ports.json within 60 s")


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def store_counts(conf, data):
    counts = []
    for cmd in ("messages", "tickets"):
        r = subprocess.run([BIN, cmd, "--json", "--config", conf, "--data", data],
                           capture_output=True, text=True)
        if r.returncode != 0:
            die(f"postdesk {cmd} --json failed: {r.stderr.strip()}")
        counts.append(len(json.loads(r.stdout)))
    return counts


def flagged(data):
    db = sqlite3.connect(f"file:{os.path.join(data, 'postdesk.sqlite3')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM events WHERE kind = 'detector_flagged'").fetchone()[0]
    finally:
        db.close()


def log_problems(path):
    with open(path, errors="replace") as f:
        bad = [l.rstrip() for l in f if re.search(r"\b(WARN|ERROR)\b", l)]
    return bad


# --- main --------------------------------------------------------------------------

def line(label, r, extra=""):
    rate = r["ok"] / r["secs"] if r["ok"] else 0.0
    mbs = r["bytes"] / r["secs"] / 1e6 if r["ok"] else 0.0
    fail = f"  ({MESSAGES - r['ok']} NOT ACCEPTED)" if r["ok"] != MESSAGES else ""
    print(f"{label:<24} {r['ok']:7d} msgs in {r['secs']:7.2f} s = {rate:7.0f} msg/s "
          f"{mbs:6.2f} MB/s{extra}{fail}", flush=True)
    for e in r["errors"][:5]:
        print(f"    error: {e}", flush=True)
    return rate


def main():
    global MSGS
    if not os.access(BIN, os.X_OK):
        die(f"no postdesk binary at {BIN} (build one: cargo build --release, or set POSTDESK_BIN)")
    cases = load_bodies()
    t = time.time()
    MSGS = render(cases, MESSAGES)
    size = sum(len(b) for _, b in MSGS)
    nonascii = sum(1 for c in cases if not c[3].isascii())
    positives = sum(1 for c in cases if c[2])
    print(f"== {MESSAGES} messages from {len(cases)} fixture bodies ({positives} labelled positive, "
          f"{nonascii} non-ASCII), {size / MESSAGES:.0f} bytes on average, {size / 1e6:.1f} MB "
          f"(rendered in {time.time() - t:.1f} s)")
    print(f"== load: {SESSIONS} sessions over {min(PROCS, SESSIONS)} processes; "
          f"{ROUNDS} rounds of OFF, SCAN, ON; positive share {POSITIVE_SHARE or 'natural mix of the set'}; nproc {os.cpu_count()}; binary {BIN}", flush=True)

    work = tempfile.mkdtemp(prefix="postdesk-bench-detector-")
    procs = []
    try:
        # Baseline: smtp-sink accepts and discards.
        sink_port = free_port()
        sink_args = ["-u", "nobody"] if os.geteuid() == 0 else []  # refuses to run as root
        sink = subprocess.Popen([SINK, *sink_args, f"127.0.0.1:{sink_port}", "256"])
        procs.append(sink)
        wait_listening(sink_port, sink, "smtp-sink")
        sink_rate = line("smtp-sink (baseline)", load(sink_port))
        stop(sink)

        confs = {mode: write_config(work, mode) for mode in MODES}
        rates = {m: [] for m in MODES}
        cpu = {m: [] for m in MODES}
        flags = []
        problems = 0
        for rnd in range(1, ROUNDS + 1):
            for mode in MODES:
                run = os.path.join(work, f"round{rnd}-{mode}")
                os.makedirs(run)
                data, log = os.path.join(run, "data"), os.path.join(run, "serve.log")
                server, port = start_server(confs[mode], data, log)
                procs.append(server)
                c0 = cpu_secs(server.pid)
                r = load(port)
                c1 = cpu_secs(server.pid)
                stop(server)
                extra = ""
                if c0 is not None and c1 is not None and r["ok"]:
                    ms = 1000 * (c1 - c0) / r["ok"]
                    cpu[mode].append(ms)
                    extra = f"  server CPU {ms:.3f} ms/msg"
                rates[mode].append(line(f"round {rnd} detector {mode.upper()}", r, extra))
                if r["ok"] != MESSAGES:
                    die(f"round {rnd} {mode.upper()}: {MESSAGES - r['ok']} messages not accepted; "
                        f"server log: {log} (KEEP=1 keeps it)")
                if mode != "off":
                    n = flagged(data)
                    flags.append(n)
                    print(f"    detector_flagged events: {n} of {MESSAGES} messages "
                          f"({100 * n / MESSAGES:.1f}%)", flush=True)
                if not SKIP_COUNT:
                    msgs, tickets = store_counts(confs[mode], data)
                    # ON opens Compliance Alert tickets besides the customers'.
                    ok = msgs == MESSAGES and (tickets == MESSAGES or (mode == "on" and tickets > MESSAGES))
                    print(f"    stored: {msgs} messages, {tickets} tickets (expected {MESSAGES})", flush=True)
                    if not ok:
                        die(f"COUNT MISMATCH in round {rnd} {mode.upper()}")
                bad = log_problems(log)
                problems += len(bad)
                for l in bad[:3]:
                    print(f"    server log: {l[:300]}", flush=True)
                if not KEEP:
                    shutil.rmtree(data, ignore_errors=True)

        off = statistics.median(rates["off"])
        print()
        for mode in MODES:
            print(f"median detector {mode.upper():<5}  {statistics.median(rates[mode]):7.0f} msg/s  "
                  f"(runs {', '.join(f'{x:.0f}' for x in rates[mode])})")
        print(f"OFF / smtp-sink:          {100 * off / sink_rate:6.1f}%  (the generator's ceiling: {sink_rate:.0f} msg/s)")
        for mode in MODES[1:]:
            med = statistics.median(rates[mode])
            pairs = [1 - b / a for a, b in zip(rates["off"], rates[mode])]
            print(f"{mode.upper():<5} / OFF = {med / off:.3f}: share of ingest cost = 1 - {mode}/off = "
                  f"{100 * (1 - med / off):+.1f}%  (per round {min(pairs) * 100:+.1f}% .. {max(pairs) * 100:+.1f}%)")
            if cpu["off"] and cpu[mode] and len(cpu["off"]) == len(cpu[mode]):
                coff, cm = statistics.median(cpu["off"]), statistics.median(cpu[mode])
                cpairs = [1 - a / b for a, b in zip(cpu["off"], cpu[mode])]
                print(f"      server CPU per message: OFF {coff:.3f} ms, {mode.upper()} {cm:.3f} ms (medians); "
                      f"share of CPU = 1 - off/{mode} = {100 * (1 - coff / cm):+.1f}% "
                      f"(per round {min(cpairs) * 100:+.1f}% .. {max(cpairs) * 100:+.1f}%)")
        print(f"detector_flagged per SCAN/ON run: {', '.join(map(str, flags))} of {MESSAGES}")
        print(f"server log (RUST_LOG={RUST_LOG}): {problems} WARN/ERROR lines over all runs")
    finally:
        for p in procs:
            stop(p)
        if KEEP:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
