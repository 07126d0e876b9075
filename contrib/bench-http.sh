#!/usr/bin/env bash
# Web intake throughput beside SMTP: the same number of new tickets sent as
# web form posts (POST /api/v1/tickets, JSON over HTTP/1.1 keep-alive) and
# as SMTP mail (smtplib), each from SESSIONS client threads, against one
# `postdesk serve` on a fresh data dir with the shipped configuration
# (acknowledgements on; outbound mail to the Maildir fallback), only with
# the listeners on free ports and the per-address post limit raised.
# Every 201 and every 250 comes after the commit, so both rates are of
# durably stored tickets. Beside each rate: the server's CPU time per
# ticket (from /proc/PID/stat). The client (Python) shares the machine.
#
# Environment: MESSAGES [3000] per run, SESSIONS [8], SIZE [1024] bytes of
# text per message, POSTDESK_BIN (a built binary; else cargo build
# --release), KEEP=1 keeps the temp dir.
set -euo pipefail
MESSAGES=${MESSAGES:-3000}
SESSIONS=${SESSIONS:-8}
SIZE=${SIZE:-1024}
KEEP=${KEEP:-0}
export RUST_LOG=${RUST_LOG:-warn}
cd "$(dirname "$0")/.."

if [ -n "${POSTDESK_BIN:-}" ]; then
    BIN=$POSTDESK_BIN
else
    echo "== building (cargo build --release)"
    cargo build --release --quiet
    BIN=${CARGO_TARGET_DIR:-target}/release/postdesk
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/postdesk-bench-http.XXXXXX")
SERVE_PID=
cleanup() {
    if [ -n "$SERVE_PID" ]; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$WORK/config" "$WORK/data"
cp -r mailboxes templates "$WORK/config/" 2>/dev/null || true
# The shipped rules.toml with the web door's limit raised for one client.
sed -e 's/^posts_per_minute_per_ip = .*/posts_per_minute_per_ip = 100000000/' \
    rules.toml > "$WORK/config/rules.toml"

"$BIN" serve --config "$WORK/config" --data "$WORK/data" \
    --smtp 127.0.0.1:0 --http 127.0.0.1:0 2>"$WORK/server.log" &
SERVE_PID=$!
for _ in $(seq 1 300); do
    [ -s "$WORK/data/ports.json" ] && break
    sleep 0.1
done
PORTS=$(cat "$WORK/data/ports.json")
HTTP=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["http"])' "$PORTS")
SMTP=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["smtp"])' "$PORTS")
echo "== $MESSAGES tickets per run, $SESSIONS sessions, $SIZE bytes of text; server $HTTP (http), $SMTP (smtp)"
python3 contrib/bench_http.py "$HTTP" "$SMTP" "$SERVE_PID" "$MESSAGES" "$SESSIONS" "$SIZE"

TICKETS=$("$BIN" tickets --json --config "$WORK/config" --data "$WORK/data" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "== stored tickets: $TICKETS (expected $((2 * MESSAGES)))"
[ "$TICKETS" = $((2 * MESSAGES)) ]
