#!/usr/bin/env python3
"""Intake with 1, 2 and 3 postdesk nodes on one PostgreSQL beside one node
on SQLite, in one run (see contrib/bench-nodes.sh for how to call it).

Each setup runs the SHIPPED configuration (the repository's rules.toml,
mailboxes/ and templates/), each node with its own data directory and SMTP
port; Postfix's smtp-source sends MESSAGES messages split evenly over the
nodes (SESSIONS sessions in all), after smtp-sink's baseline. Printed per
setup: messages per second, postdesk's CPU per message (every node, user +
system from /proc) and PostgreSQL's (the postmaster, its live backends and
the ones it reaped). On a 2-core machine this shows what several nodes
cost, not how they scale: they share the cores with the database and the
load generator.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESSAGES = int(os.environ.get("MESSAGES", "10000"))
SESSIONS = int(os.environ.get("SESSIONS", "18"))
SIZE = int(os.environ.get("SIZE", "4096"))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, what, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench-nodes: {what} does not listen on {port}")


def stat(pid):
    """(utime + stime, cutime + cstime) of pid, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def tree_cpu(root):
    """CPU of root, its live children and the children it reaped."""
    own, reaped = stat(root)
    total = own + reaped
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == root:
            total += stat(int(entry))[0]
    return total


def source(port, count, sessions):
    return subprocess.Popen(
        ["smtp-source", "-s", str(sessions), "-m", str(count), "-l", str(SIZE),
         "-f", "customer@example.org", "-t", "support@example.com", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sink_rate(work):
    port = free_port()
    # smtp-sink refuses to run as root.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    wait_port(port, "smtp-sink")
    start = time.time()
    source(port, MESSAGES, SESSIONS).wait()
    rate = MESSAGES / (time.time() - start)
    sink.kill()
    sink.wait()
    return rate


def psql(pg, sql):
    env = dict(os.environ, PGPASSWORD=pg["password"])
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg["port"]), "-U", "postdesk",
                    "-d", "postgres", "-qc", sql], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def config(work, name, pg):
    cfg = os.path.join(work, name)
    shutil.copytree(os.path.join(REPO, "templates"), os.path.join(cfg, "templates"))
    if os.path.isdir(os.path.join(REPO, "mailboxes")):
        shutil.copytree(os.path.join(REPO, "mailboxes"), os.path.join(cfg, "mailboxes"))
    rules = open(os.path.join(REPO, "rules.toml")).read()
    secret = os.path.join(cfg, "token_secret")
    with open(secret, "w") as f:
        f.write("bench-nodes-secret-0123456789abcdef0123\n")
    os.chmod(secret, 0o600)
    rules = rules.replace("[threading]\n", "[threading]\ntoken_secret_file = \"token_secret\"\n", 1)
    if pg:
        psql(pg, f"CREATE DATABASE {name}")
        password = os.path.join(cfg, "store-password")
        with open(password, "w") as f:
            f.write(pg["password"] + "\n")
        os.chmod(password, 0o600)
        rules += (f"\n[store]\nbackend = \"postgres\"\n"
                  f"url = \"postgres://postdesk@127.0.0.1:{pg['port']}/{name}\"\n"
                  f"password_file = \"{password}\"\n")
    with open(os.path.join(cfg, "rules.toml"), "w") as f:
        f.write(rules)
    return cfg


def run_setup(bin_, work, name, nodes, pg):
    cfg = config(work, name, pg)
    procs = []
    ports = []
    for i in range(nodes):
        port = free_port()
        data = os.path.join(work, f"{name}-data{i}")
        log = open(os.path.join(work, f"{name}-node{i}.log"), "w")
        procs.append(subprocess.Popen(
            [bin_, "serve", "--config", cfg, "--data", data, "--smtp", f"127.0.0.1:{port}",
             "--http", "none", "--node", f"n{i + 1}"],
            stdout=log, stderr=log, env=dict(os.environ, RUST_LOG="warn")))
        ports.append(port)
    for p in ports:
        wait_port(p, f"{name} node")
    time.sleep(1)
    before = sum(stat(p.pid)[0] for p in procs)
    pg_before = tree_cpu(pg["pid"]) if pg else 0.0
    start = time.time()
    share = MESSAGES // nodes
    sources = [source(p, share, max(1, SESSIONS // nodes)) for p in ports]
    for s in sources:
        s.wait()
    elapsed = time.time() - start
    sent = share * nodes
    cpu = sum(stat(p.pid)[0] for p in procs) - before
    pg_cpu = (tree_cpu(pg["pid"]) - pg_before) if pg else 0.0
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
    return sent / elapsed, cpu * 1000 / sent, pg_cpu * 1000 / sent


def main():
    bin_ = os.environ.get("POSTDESK_BIN") or os.path.join(REPO, "target/release/postdesk")
    work = tempfile.mkdtemp(prefix="postdesk-bench-nodes.")
    # Beside the work dir, not in it: the cluster runs as the postgres user
    # when root, and the work dir is its owner's alone.
    pgdir = tempfile.mkdtemp(prefix="postdesk-bench-pg.")
    pgport = free_port()
    cluster = subprocess.Popen(["bash", os.path.join(REPO, "contrib/pg-cluster.sh"), pgdir, str(pgport)],
                               stdout=open(os.path.join(work, "pg.log"), "w"), stderr=subprocess.STDOUT)
    try:
        wait_port(pgport, "PostgreSQL")
        time.sleep(1)
        pg = {"port": pgport, "dir": pgdir, "pid": cluster.pid,
              "password": open(os.path.join(pgdir, "password")).read().strip()}
        print(f"{MESSAGES} messages of {SIZE} bytes, {SESSIONS} sessions in all, shipped configuration")
        rate = sink_rate(work)
        print(f"{'smtp-sink':<22} {rate:8.0f} msg/s")
        for name, nodes, use_pg in [("sqlite1", 1, False), ("pg1", 1, True), ("pg2", 2, True), ("pg3", 3, True)]:
            r, cpu, pg_cpu = run_setup(bin_, work, name, nodes, pg if use_pg else None)
            label = f"{nodes} node{'s' if nodes > 1 else ''} on {'PostgreSQL' if use_pg else 'SQLite'}"
            extra = f"  PostgreSQL {pg_cpu:.3f} ms/msg" if use_pg else ""
            print(f"{label:<22} {r:8.0f} msg/s ({r / rate:.2f} of smtp-sink)  "
                  f"postdesk {cpu:.3f} ms CPU/msg{extra}")
    finally:
        cluster.terminate()
        cluster.wait()
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(pgdir, ignore_errors=True)
        else:
            print("kept", work, pgdir)


if __name__ == "__main__":
    main()
