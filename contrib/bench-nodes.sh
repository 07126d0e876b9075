#!/usr/bin/env bash
# Intake with 1, 2 and 3 postdesk nodes on one PostgreSQL beside one node
# on SQLite, in one run, with CPU per message for each (postdesk's and
# PostgreSQL's) and smtp-sink's rate as the baseline:
#
#   bash contrib/bench-nodes.sh
#
# Environment: MESSAGES [10000], SESSIONS [18] (split over the nodes),
# SIZE [4096], POSTDESK_BIN (default: target/release/postdesk, built
# first), KEEP=1 keeps the temp dir (configs, node logs, the cluster).
# Needs smtp-source/smtp-sink (Debian's postfix) and postgresql; the
# cluster is a throwaway one (contrib/pg-cluster.sh). Not part of the
# test command.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PATH:/usr/sbin:/usr/lib/postfix/sbin"
if [ -z "${POSTDESK_BIN:-}" ]; then
    cargo build --release --quiet
fi
exec python3 contrib/bench_nodes.py
