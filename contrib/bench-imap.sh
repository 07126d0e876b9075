#!/usr/bin/env bash
# IMAP poller benchmark: catch-up ingest of BENCH_MESSAGES
# (default 10000) messages waiting in four Dovecot mailboxes, and the time
# from APPEND to ticket with IDLE (p50/p99 over 50 messages). Needs
# dovecot-imapd (installed here if missing) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x /usr/sbin/dovecot ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends dovecot-imapd
fi
cargo test --release --test imap_poll -- --ignored --nocapture bench_imap 2>&1 | grep -E "catch-up|APPEND|test result"
