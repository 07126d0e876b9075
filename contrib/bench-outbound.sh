#!/usr/bin/env bash
# Outbound benchmarks: acknowledgement latency and outbox delivery rate.
#
#   contrib/bench-outbound.sh
#
# 1. Latency: customer mail at RATE/s over SMTP; for each message, the time
#    from postdesk's 250 to its acknowledgement arriving at a real SMTP
#    server (aiosmtpd: tests/common/smtp_sink.py). p50/p90/p99/max.
# 2. Delivery rate: QUEUE acknowledgements queued by `postdesk ingest`
#    (ingest_sends_mail = true), then `serve` delivers them to Postfix's
#    `smtp-sink -u nobody 127.0.0.1:PORT 256`; rows marked sent per second.
#
# Environment: MESSAGES [3000], RATE [100], QUEUE [20000], IN_FLIGHT [8],
# SKIP_LATENCY=1, SKIP_RATE=1, KEEP=1 (keep temp dirs), POSTDESK_BIN.
# Needs python3 with aiosmtpd (contrib/test.sh installs it) and, for (2),
# smtp-sink (Debian package postfix).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${POSTDESK_BIN:-}" ]; then
    cargo build --release --quiet
fi
exec python3 contrib/bench_outbound.py
