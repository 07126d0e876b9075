#!/usr/bin/env bash
# SMTP ingest rate with the off-platform bypass detector OFF, SCAN and ON.
#
#   contrib/bench-detector-ingest.sh
#   MESSAGES=1500 ROUNDS=1 POSTDESK_BIN=target/release/postdesk contrib/bench-detector-ingest.sh
#
# What is measured: how many realistic customer messages a second postdesk
# accepts over SMTP (each parsed, threaded, routed and committed before its
# 250) in three modes: OFF (`[detector] enabled = false`); SCAN (enabled,
# an empty scope so every customer message is scanned, its actions off:
# the scan and its bookkeeping only); ON (the shipped actions too: warning
# mail, Compliance Alert ticket and admin alert, suspension on a repeat).
# From that, each mode's share of the ingest cost, 1 - rate(mode) / rate(OFF).
#
# The messages: every case of the labelled detector set,
# tests/fixtures/detector/*.txt (about 420 bodies of client mail, positives
# and negatives, `\u{XXXX}` escapes unescaped), cycled to MESSAGES messages.
# Each has its own Message-ID and a numbered Subject ("Invoice question
# 1234"), comes from one of 500 customer addresses
# (client{i%500}@customer{i%50}.example.org) to support@example.com, with a
# Date and a text/plain utf-8 part (7bit, or quoted-printable when not ASCII
# or a line is long). They are rendered once, before any clock starts, and
# every run sends the same bytes; each message opens its own ticket
# (recent_rule = false, as in bench-smtp.sh).
#
# The load generator (contrib/bench_detector_ingest.py): Python smtplib,
# SESSIONS sessions split over PROCS processes so the client is not the
# bottleneck, messages handed out from a shared counter. The time is from
# the first MAIL to the last 250; only 250s count. It runs first against
# Postfix's smtp-sink (accepts and discards) to show the generator's ceiling
# on this machine, then ROUNDS rounds of OFF, SCAN, ON, interleaved so load
# drifting on the machine hits both; each run has a fresh data dir and
# server, and a config checked with `postdesk check`, identical but for
# [detector]. After each run the store must hold every message and ticket
# (`postdesk messages --json`, `tickets --json`), and the ON run's
# `detector_flagged` events are counted (from <data>/postdesk.sqlite3, read
# only) to show it did real work. The server's CPU time per message
# (/proc/PID/stat, during the load) is printed too: on a busy machine it is
# a steadier measure of the detector's cost than the rate.
#
# Printed: each run's msg/s and MB/s, the median of each mode, ON/OFF, and
# the detector's share of the ingest cost with its per-round min..max. The
# share can be about 0, or negative, within the noise: it is printed as it
# comes out.
#
# Environment (defaults in brackets):
#   MESSAGES [10000]     messages per measured run
#   SESSIONS [16]        parallel SMTP sessions
#   PROCS [min(SESSIONS, max(2, nproc))]  client processes sharing them
#   ROUNDS [3]           rounds of (OFF, SCAN, ON)
#   POSITIVE_SHARE []    fraction of messages taken from the labelled
#                        positives (e.g. 0.02); empty: the set's own mix,
#                        about 60% positive, the worst case for ON
#   BENCH_TIMEOUT [1800] seconds one run may take
#   SKIP_COUNT [0]       1 = don't list messages/tickets to verify the counts
#   KEEP [0]             1 = keep the temp dir (configs, data, server logs)
#   RUST_LOG [warn]      the server's log level during the runs
#   POSTDESK_BIN         benchmark this binary instead of building one
#                        (cargo build --release)
#
# Needs python3 (standard library only) and smtp-sink (Debian package
# postfix). This script installs nothing; on Debian:
#   echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
#   DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
set -euo pipefail

case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;/^set -euo/d'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."

export MESSAGES=${MESSAGES:-10000}
export SESSIONS=${SESSIONS:-16}
export ROUNDS=${ROUNDS:-3}
export BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
export SKIP_COUNT=${SKIP_COUNT:-0}
export KEEP=${KEEP:-0}
export POSITIVE_SHARE=${POSITIVE_SHARE:-}
export RUST_LOG=${RUST_LOG:-warn}

PATH="$PATH:/usr/sbin:/usr/lib/postfix/sbin"
export PATH
for tool in python3 smtp-sink; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench-detector-ingest: $tool not found." >&2
        if [ "$tool" = smtp-sink ]; then
            cat >&2 <<'EOF'
smtp-sink comes with Postfix. On Debian or Ubuntu:
  apt-get update
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
("No configuration" installs the tools without setting up a mail server.)
EOF
        fi
        exit 1
    fi
done

if [ -z "${POSTDESK_BIN:-}" ]; then
    echo "== building (cargo build --release)"
    cargo build --release --quiet
    POSTDESK_BIN=${CARGO_TARGET_DIR:-target}/release/postdesk
fi
if [ ! -x "$POSTDESK_BIN" ]; then
    echo "bench-detector-ingest: POSTDESK_BIN=$POSTDESK_BIN is not an executable" >&2
    exit 1
fi
export POSTDESK_BIN

exec python3 contrib/bench_detector_ingest.py
