#!/usr/bin/env bash
# The test command (README "Run the tests"; .ci/run calls exactly this).
#
# The integration tests start the real `postdesk serve` on loopback port 0
# and talk to it with Python's smtplib (stdlib only) and raw sockets, so
# besides Rust they need python3 and nothing else. Installs it with apt only
# when it is missing, then runs the whole suite in the release profile.
# Extra arguments go to `cargo test` (e.g. `bash contrib/test.sh --test crash`).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing ${need[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi

cargo test --release --locked "$@"
