#!/usr/bin/env bash
# Memory benchmark: the server's peak RSS (VmHWM from /proc/PID/status)
# while SESSIONS SMTP sessions at once each send one SIZE_MB message, its
# RSS once they are stored and the outbox is idle, and what the database
# and its WAL grew by.
#
#   contrib/bench-memory.sh                      # 20 sessions x 10 MB
#   SESSIONS=1 SIZE_MB=24 contrib/bench-memory.sh
#
# Environment: SESSIONS [20], SIZE_MB [10], TEXT_SHARE [0.5] (share of each
# message that is its plain-text body; the rest is a base64 attachment),
# AGENTS [3], KEEP=1 (keep the temp dir), POSTDESK_BIN. Needs python3 only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${POSTDESK_BIN:-}" ]; then
    cargo build --release --quiet
fi
exec python3 contrib/bench_memory.py
