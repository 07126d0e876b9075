#!/usr/bin/env bash
# SMTP intake throughput: postdesk against Postfix's smtp-sink as a baseline.
#
#   contrib/bench-smtp.sh              empty store: smtp-sink, then postdesk
#   contrib/bench-smtp.sh --fill N     also fill the store to N messages and
#                                      measure again (target: >= 80% of the
#                                      empty-store rate at N = 1,000,000)
#
# Both runs use the same load generator, Postfix's smtp-source:
#   smtp-source -s SESSIONS -m MESSAGES -l SIZE \
#       -f customer@example.org -t support@example.com 127.0.0.1:PORT
# smtp-sink accepts and discards, so its rate is the ceiling the client and
# loopback allow on this machine; postdesk's rate is with every message
# parsed, threaded and committed (synchronous=FULL) before its 250.
#
# The server runs the SHIPPED configuration by default (the repository's
# rules.toml, mailboxes/ and templates/: acknowledgements on, the
# recent-ticket rule on), only with SMTP on a free port and a fresh data
# dir; CONFIG=bench instead writes the older minimal config (recent rule
# off, raised connection limits). Beside each rate it prints the server's
# CPU time (user + system, from /proc/PID/stat) per message.
# Before the runs and after the empty-store run it prints the disk's sync
# latency (contrib/disk-sync.py: fdatasync of a small append, median and
# p90): smtp-sink never syncs, postdesk syncs once per committed batch, so
# the ratio between them moves with it, and on a shared or virtual disk it
# can change tenfold within minutes.
#
# smtp-source sends every message from one sender with no Subject: the
# recent-ticket rule has no subject to compare (each message opens its own
# ticket) and only the first auto_replies_per_hour acknowledgements are
# written. contrib/bench_mix.py sends a mix of many senders and subjects
# instead (MIX=N messages after the smtp-source runs; 0 to skip).
#
# Environment (defaults in brackets), to rerun small or large:
#   CONFIG [shipped]    shipped | bench
#   SLA [on]            off = the shipped config without its [[sla.policy]]
#                       (to measure what SLA bookkeeping costs on intake)
#   RULES [0]           N automation rules in automation/bench.toml, all on
#                       ticket_created and message_added: RULES_MATCHING of
#                       them match every message (from_domain; each adds a
#                       tag), the others test the queue, a regex over the
#                       subject and body keywords, and do not match
#   RULES_MATCHING [1]  how many of the RULES match (spread evenly)
#   MIX [5000]          messages of the many-senders mix (0: skip)
#   MESSAGES [20000]    messages per measured run
#   SESSIONS [20]       parallel SMTP sessions (smtp-source -s)
#   SIZE [4096]         payload bytes per message (smtp-source -l)
#   FILL_BATCH [50000]  messages per smtp-source run while filling
#   BENCH_TIMEOUT [1800] seconds one smtp-source run may take
#   SKIP_COUNT [0]      1 = don't list tickets/messages to verify the counts
#   KEEP [0]            1 = keep the temp dir (config, data, server log)
#   RUST_LOG [warn]     the server's log level during the run
#   POSTDESK_BIN        benchmark this binary instead of building one
#
# Message-IDs: smtp-source writes "Message-Id: <PID.FD.COUNT@host>", unique
# within a run and (the pid differs) across runs, and a Date of the run's
# start, so no two messages share Message-ID and content and postdesk's
# dedupe (same Message-ID and same content hash) never drops one. A message
# without a Message-ID would get a fresh synthetic id, so it would not be
# deduplicated either. Each message is new mail (no In-Reply-To, References
# or ticket tag), so each opens its own ticket: the script checks that the
# store holds as many messages and tickets as were sent.
#
# No Subject is sent (no smtp-source -S): every message has the same sender
# and mailbox, so a shared non-empty subject would let the recent-ticket
# rule (same sender, mailbox and subject within the window) thread them all
# into one ticket, which is right for a helpdesk but not what is measured.
#
# Needs smtp-source and smtp-sink (Debian package postfix). This script
# installs nothing; on Debian:
#   echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
#   DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
set -euo pipefail

MESSAGES=${MESSAGES:-20000}
CONFIG=${CONFIG:-shipped}
MIX=${MIX:-5000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
FILL_BATCH=${FILL_BATCH:-50000}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
SKIP_COUNT=${SKIP_COUNT:-0}
KEEP=${KEEP:-0}
export RUST_LOG=${RUST_LOG:-warn}

FILL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --fill) FILL=${2:?--fill needs a number}; shift 2 ;;
        --fill=*) FILL=${1#--fill=}; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;/^set -euo/d'; exit 0 ;;
        *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."

PATH="$PATH:/usr/sbin:/usr/lib/postfix/sbin"
for tool in smtp-source smtp-sink python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench-smtp: $tool not found." >&2
        if [ "$tool" != python3 ]; then
            cat >&2 <<'EOF'
smtp-source and smtp-sink come with Postfix. On Debian or Ubuntu:
  apt-get update
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
("No configuration" installs the tools without setting up a mail server.)
EOF
        fi
        exit 1
    fi
done

if [ -n "${POSTDESK_BIN:-}" ]; then
    BIN=$POSTDESK_BIN
else
    echo "== building (cargo build --release)"
    cargo build --release --quiet
    BIN=${CARGO_TARGET_DIR:-target}/release/postdesk
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/postdesk-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_listening() { # PORT
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

now() { date +%s.%N; }

# run_source LABEL PORT COUNT [extra smtp-source args]: prints the rate.
run_source() {
    local label=$1 port=$2 count=$3
    shift 3
    local t0 t1
    t0=$(now)
    if ! timeout "$BENCH_TIMEOUT" smtp-source -s "$SESSIONS" -m "$count" -l "$SIZE" \
        -f customer@example.org -t support@example.com "$@" "127.0.0.1:$port"; then
        echo "bench-smtp: smtp-source failed during: $label" >&2
        if [ -n "${SERVE_PID:-}" ]; then
            if kill -0 "$SERVE_PID" 2>/dev/null; then
                echo "postdesk is still running; last lines of its log:" >&2
            else
                echo "postdesk has EXITED; last lines of its log:" >&2
            fi
            tail -n 30 "$WORK/serve.log" >&2
        fi
        return 1
    fi
    t1=$(now)
    awk -v n="$count" -v a="$t0" -v b="$t1" -v l="$label" \
        'BEGIN { d = b - a; printf "%-28s %8d msgs in %8.2f s = %9.0f msg/s\n", l, n, d, n / d }' >&2
    awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", n / (b - a) }'
}

echo "== load: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE (nproc: $(nproc))"
# smtp-sink never syncs; postdesk syncs its log once per committed batch,
# so the ratio moves with the disk's sync latency, which on a shared or
# virtual disk changes from minute to minute: print it beside the rates.
disk_sync() { contrib/disk-sync.py "$WORK" >&2; }
disk_sync

# --- baseline: smtp-sink ----------------------------------------------------
SINK_PORT=$(free_port)
SINK_ARGS=()
[ "$(id -u)" = 0 ] && SINK_ARGS=(-u nobody) # smtp-sink refuses to run as root
smtp-sink "${SINK_ARGS[@]}" "127.0.0.1:$SINK_PORT" 256 &
SINK_PID=$!
PIDS+=("$SINK_PID")
wait_listening "$SINK_PORT"
SINK_RATE=$(run_source "smtp-sink (baseline)" "$SINK_PORT" "$MESSAGES")
kill "$SINK_PID" 2>/dev/null || true
wait "$SINK_PID" 2>/dev/null || true

# --- postdesk -----------------------------------------------------------------
mkdir -p "$WORK/config" "$WORK/data"
if [ "$CONFIG" = shipped ]; then
    cp rules.toml "$WORK/config/"
    cp -r mailboxes templates "$WORK/config/"
    if [ "${SLA:-on}" = off ]; then
        # Drop the policy and its targets: no ticket runs under an SLA.
        python3 - "$WORK/config/rules.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"(?ms)^\[\[sla\.policy\]\].*?(?=^\[(?!sla\.policy))", "", s)
open(p, "w").write(s)
PY
    fi
else
cat >"$WORK/config/rules.toml" <<EOF
# Written by contrib/bench-smtp.sh.
[server]
smtp = "127.0.0.1:0"
hostname = "postdesk.bench"

[domains]
served = ["example.com"]

[addresses]
support = ["support@example.com"]
sales = ["sales@example.com"]
info = ["info@example.com"]

# smtp-source sends every message from one sender with one subject, which
# the recent-ticket rule rightly threads into one conversation. The bench
# measures "each message a new ticket", so that rule is off here; every
# other thread and route rule runs as shipped.
[threading]
recent_rule = false

[limits]
max_connections = 1000
max_connections_per_ip = 1000
EOF
fi
if [ "${RULES:-0}" -gt 0 ]; then
    mkdir -p "$WORK/config/automation"
    python3 - "$WORK/config/automation/bench.toml" "$RULES" "${RULES_MATCHING:-1}" <<'PY'
import sys
path, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
every = max(1, n // m) if m > 0 else n + 1
out = []
for i in range(n):
    out.append(f'[[automation]]\nname = "bench {i}"\non = ["ticket_created", "message_added"]\n[automation.if]\n')
    if i % every == 0 and i // every < m:
        out.append('from_domain = ["example.org"]\n[automation.then]\n')
        out.append(f'add_tags = ["bench-{i}"]\n')
    else:
        out.append('queue = ["support", "sales"]\n')
        out.append(f'subject_matches = "(?i)order {i}\\\\b"\n')
        out.append(f'body_keywords = ["keyword{i}", "phrase number {i}"]\n')
        out.append('[automation.then]\nset_priority = "High"\n')
    out.append("\n")
open(path, "w").write("".join(out))
PY
fi
echo "== configuration: $CONFIG (SLA ${SLA:-on}, ${RULES:-0} automation rules)" >&2
"$BIN" check --config "$WORK/config" --data "$WORK/data" >/dev/null

pd() { "$BIN" "$@" --config "$WORK/config" --data "$WORK/data"; }

# start_server DATA_DIR LOG: starts postdesk on DATA_DIR, sets SERVE_PID and PORT.
start_server() {
    local data=$1 log=$2
    mkdir -p "$data"
    rm -f "$data/ports.json"
    # The web door on a free port too: the mix run starts a second server
    # while the first still holds its store (and would hold the default
    # HTTP port).
    "$BIN" serve --config "$WORK/config" --data "$data" --smtp 127.0.0.1:0 \
        --http 127.0.0.1:0 2>"$log" &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    for _ in $(seq 1 300); do
        [ -s "$data/ports.json" ] && break
        kill -0 "$SERVE_PID" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
    done
    if ! PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["smtp"].rsplit(":",1)[1])' "$data/ports.json" 2>/dev/null); then
        echo "bench-smtp: no SMTP port in ports.json: $(cat "$data/ports.json" 2>/dev/null)" >&2
        cat "$log" >&2
        exit 1
    fi
}

start_server "$WORK/data" "$WORK/serve.log"
FULL_PORT=$PORT

count_json() { # COMMAND: number of entries in `postdesk COMMAND --json`
    pd "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

verify_counts() { # EXPECTED
    [ "$SKIP_COUNT" = 1 ] && return 0
    local msgs tickets
    msgs=$(count_json messages)
    tickets=$(count_json tickets)
    echo "stored: $msgs messages, $tickets tickets (expected $1 of each)" >&2
    if [ "$msgs" != "$1" ] || [ "$tickets" != "$1" ]; then
        echo "bench-smtp: COUNT MISMATCH" >&2
        return 1
    fi
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
# cpu_per_message PID TICKS_BEFORE COUNT: prints ms of server CPU per message.
cpu_per_message() {
    local after
    after=$(cpu_ticks "$1")
    awk -v a="$2" -v b="$after" -v t="$TICK" -v n="$3" \
        'BEGIN { printf "server CPU per message:      %.3f ms\n", 1000 * (b - a) / t / n }' >&2
}

CPU0=$(cpu_ticks "$SERVE_PID")
EMPTY_RATE=$(run_source "postdesk (empty store)" "$FULL_PORT" "$MESSAGES")
cpu_per_message "$SERVE_PID" "$CPU0" "$MESSAGES"
awk -v p="$EMPTY_RATE" -v s="$SINK_RATE" \
    'BEGIN { printf "postdesk / smtp-sink:        %.1f%%\n", 100 * p / s }' >&2
verify_counts "$MESSAGES"
STORED=$MESSAGES
disk_sync

if [ "$FILL" -gt 0 ]; then
    echo "== filling the store to $FILL messages (batches of $FILL_BATCH)" >&2
    batch=0
    while [ "$STORED" -lt "$FILL" ]; do
        n=$((FILL - STORED))
        [ "$n" -gt "$FILL_BATCH" ] && n=$FILL_BATCH
        batch=$((batch + 1))
        run_source "fill batch $batch" "$FULL_PORT" "$n" >/dev/null
        STORED=$((STORED + n))
    done
    FULL_RATE=$(run_source "postdesk ($STORED stored)" "$FULL_PORT" "$MESSAGES")
    STORED=$((STORED + MESSAGES))
    # The machine's load drifts over a long fill, so the empty-store rate is
    # measured again now, on a second server with a fresh data dir, and the
    # filled store once more after it: the ratio compares runs minutes apart
    # rather than a quarter of an hour.
    start_server "$WORK/data-empty" "$WORK/serve-empty.log"
    EMPTY2_RATE=$(run_source "postdesk (empty store, again)" "$PORT" "$MESSAGES")
    kill "$SERVE_PID" 2>/dev/null || true
    FULL2_RATE=$(run_source "postdesk ($STORED stored, again)" "$FULL_PORT" "$MESSAGES")
    STORED=$((STORED + MESSAGES))
    awk -v f="$FULL_RATE" -v e="$EMPTY_RATE" -v n="$FILL" \
        'BEGIN { r = 100 * f / e; printf "after %d stored vs the first empty run: %.1f%%\n", n, r }' >&2
    awk -v f1="$FULL_RATE" -v f2="$FULL2_RATE" -v e="$EMPTY2_RATE" -v n="$FILL" \
        'BEGIN { f = (f1 + f2) / 2; r = 100 * f / e; printf "after %d stored vs the empty run between them: %.1f%% (target >= 80%%): %s\n", n, r, (r >= 80 ? "PASS" : "FAIL") }' >&2
    verify_counts "$STORED"
fi

if [ "$MIX" -gt 0 ]; then
    # A fresh server: many senders, subjects and replies, as a helpdesk gets.
    start_server "$WORK/data-mix" "$WORK/serve-mix.log"
    CPU0=$(cpu_ticks "$SERVE_PID")
    python3 contrib/bench_mix.py --port "$PORT" --messages "$MIX" --sessions "$SESSIONS" --size "$SIZE" >&2
    cpu_per_message "$SERVE_PID" "$CPU0" "$MIX"
fi

echo "server log (RUST_LOG=$RUST_LOG): $(wc -l <"$WORK/serve.log") lines; warnings/errors:" >&2
grep -Eci 'warn|error' "$WORK/serve.log" >&2 || true
