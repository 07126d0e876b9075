#!/usr/bin/env bash
# Where SMTP intake spends its time: one smtp-source run against
# `postdesk serve` on the shipped configuration (the repository's
# rules.toml, mailboxes/ and templates/, SMTP on a free port, a fresh data
# dir), with the server's CPU and I/O per message and, when asked, a perf
# profile of the server during the run.
#
#   contrib/profile-smtp.sh                 figures only
#   PERF=out.data contrib/profile-smtp.sh   and `perf record -g` into out.data
#
# Prints the rate, the server's CPU time per message (user + system, from
# /proc/PID/stat), the bytes it wrote per message (`wchar` of
# /proc/PID/io: WAL frames, checkpoint copies and socket writes) and its
# write system calls per message (`syscw`), and the disk's sync latency
# (contrib/disk-sync.py), which the rate depends on. Read a profile with
#   perf report -i out.data --no-children --sort symbol
#   perf report -i out.data --children --sort comm,symbol -g none
# (`--sort comm` splits the store writer thread from the tokio workers).
#
# Environment (defaults in brackets): MESSAGES [10000], SESSIONS [20],
# SIZE [4096], PERF [unset], POSTDESK_BIN (profile this binary instead of
# building one), KEEP=1 (keep the temp dir). Needs smtp-source (Debian
# package postfix) and, for PERF, perf (Debian package linux-perf).
set -euo pipefail

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
KEEP=${KEEP:-0}
export RUST_LOG=${RUST_LOG:-warn}

cd "$(dirname "$0")/.."
PATH="$PATH:/usr/sbin:/usr/lib/postfix/sbin"
for tool in smtp-source python3 ${PERF:+perf}; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "profile-smtp: $tool not found (smtp-source: apt-get install postfix; perf: apt-get install linux-perf)" >&2
        exit 1
    fi
done

if [ -n "${POSTDESK_BIN:-}" ]; then
    BIN=$POSTDESK_BIN
else
    cargo build --release --quiet
    BIN=${CARGO_TARGET_DIR:-target}/release/postdesk
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/postdesk-profile.XXXXXX")
SERVER=""
RECORDER=""
cleanup() {
    for pid in $RECORDER $SERVER; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$WORK/config" "$WORK/data"
cp rules.toml "$WORK/config/"
cp -r mailboxes templates "$WORK/config/"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$BIN" serve --config "$WORK/config" --data "$WORK/data" \
    --smtp "127.0.0.1:$PORT" --http 127.0.0.1:0 >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { echo "profile-smtp: the server stopped:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done

if [ -n "${PERF:-}" ]; then
    perf record -g -p "$SERVER" -o "$PERF" -- sleep 100000 >"$WORK/perf.log" 2>&1 &
    RECORDER=$!
    sleep 0.5
fi

# Fields 14 and 15 of /proc/PID/stat: user and system time in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
io() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$SERVER/io"; }
c0=$(cpu); w0=$(io wchar); s0=$(io syscw); t0=$(date +%s.%N)
smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" \
    -f customer@example.org -t support@example.com "127.0.0.1:$PORT"
t1=$(date +%s.%N); c1=$(cpu); w1=$(io wchar); s1=$(io syscw)

if [ -n "$RECORDER" ]; then
    kill -INT "$RECORDER"
    wait "$RECORDER" || true
    RECORDER=""
    echo "perf profile: $PERF"
fi

awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
    -v w=$((w1 - w0)) -v s=$((s1 - s0)) 'BEGIN {
    printf "rate:                    %.0f msg/s\n", n / (b - a)
    printf "server CPU per message:  %.3f ms\n", c / hz * 1000 / n
    printf "written per message:     %.1f KB in %.1f write calls\n", w / n / 1024, s / n
}'
# The rate includes one log sync per committed batch: how slow the disk
# syncs right now (it varies on shared and virtual disks).
contrib/disk-sync.py "$WORK"
