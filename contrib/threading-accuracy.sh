#!/usr/bin/env bash
# Threading accuracy of postdesk on real mailing-list archives that nobody
# here wrote, and the ingest rate with threading on and off.
#
# The archives come from the test data of GrimoireLab's perceval and
# grimoire-elk (PyPI, GPL-3.0, fetched here at run time and never copied into
# this repository): perceval's mbox captures of pipermail and HyperKitty
# archives, and grimoire-elk's dumps of the GNOME libart-hackers list
# (pipermail, 2001-2002), a personal mbox and a Mozilla newsgroup. The dumps
# keep every message's headers and text; this script writes them back out
# as an mbox, in archive order, and runs benches/threading_accuracy.rs on
# everything, which takes the conversations the archives' References and
# In-Reply-To define as the truth.
#
# Usage: bash contrib/threading-accuracy.sh [MORE.mbox ...]
# BENCH_MESSAGES=N sets how many messages the rate runs use (default 3000).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --no-binary :all: \
    "grimoire-elk==1.8.3" "perceval==1.6.1" -d "$work" >&2
tar xzf "$work"/grimoire_elk-1.8.3.tar.gz -C "$work"
tar xzf "$work"/perceval-1.6.1.tar.gz -C "$work"
data="$work/grimoire_elk-1.8.3/tests/data"
pdata="$work/perceval-1.6.1/tests/data"

python3 - "$data" "$work/archives.mbox" <<'PY'
"""perceval JSON items -> one mbox, messages in archive order."""
import json
import sys

data, out = sys.argv[1], sys.argv[2]
DROP = {"body", "unixfrom", "content-type", "content-transfer-encoding", "mime-version"}
count = 0
with open(out, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as mbox:
    for name in ("pipermail.json", "mbox.json", "nntp.json"):
        for item in json.load(open(f"{data}/{name}", encoding="utf-8")):
            msg = item["data"]
            body = msg.get("body") or {}
            text = body.get("plain") or body.get("html") or ""
            mbox.write("From archive@example.invalid Thu Jan  1 00:00:00 1970\n")
            for key, value in msg.items():
                if key.lower() in DROP:
                    continue
                for v in value if isinstance(value, list) else [value]:
                    mbox.write(f"{key}: {v}\n")
            mbox.write("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n")
            mbox.write("Content-Transfer-Encoding: 8bit\n\n")
            for line in text.splitlines():
                mbox.write((">" + line if line.startswith("From ") else line) + "\n")
            mbox.write("\n")
            count += 1
print(f"wrote {count} messages to {out}", file=sys.stderr)
PY

cargo bench --bench threading_accuracy -- "$work/archives.mbox" \
    "$pdata"/pipermail/*.mbox "$pdata"/hyperkitty/*.mbox "$pdata"/mbox/*.mbox "$@"
