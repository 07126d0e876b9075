#!/usr/bin/env bash
# The test command (README "Run the tests"; .ci/run calls exactly this).
#
# The integration tests start the real `postdesk serve` on loopback port 0
# and talk to it with real peers: Python's smtplib and raw sockets, aiosmtpd
# and Postfix's smtp-sink as SMTP servers for outbound mail, a throwaway
# Dovecot (with a throwaway TLS certificate, made by openssl) for the IMAP
# pollers, a throwaway Postfix instance in front of postdesk (its own
# configuration, queue and loopback port in a temp dir; the system's mail
# server is neither set up nor touched), headless Chromium for the web
# pages, and systemd-analyze for the unit in contrib/systemd. Installs what
# is missing: python3, dovecot-imapd, postfix, openssl, chromium and
# systemd and postgresql with apt (sudo when not root), aiosmtpd with pip
# or apt. Then runs the whole suite in the release profile, and the store's
# tests a second time with the store on PostgreSQL.
# Extra arguments go to `cargo test` (e.g. `bash contrib/test.sh --test crash`).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The IMAP poller tests (tests/imap_poll.rs, tests/digest.rs) start a
# throwaway Dovecot and deliver alerts and digests to Postfix's smtp-sink.
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
[ -x /usr/sbin/smtp-sink ] || need+=(postfix)
# tests/postfix_front.rs runs a throwaway Postfix (its own config_directory
# and queue in a temp dir) that hands mail to postdesk over LMTP.
[ -x /usr/sbin/postfix ] && [ -x /usr/sbin/postqueue ] || need+=(postfix)
# tests/deploy.rs checks contrib/systemd/postdesk.service with
# `systemd-analyze verify` (no running systemd needed).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# The store's tests run on PostgreSQL too, and tests/cluster.rs runs three
# nodes on one: a throwaway cluster per test binary (contrib/pg-cluster.sh:
# initdb into a temp dir, the server on a loopback port, as the postgres
# user when root), never the system's own.
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# The IMAP TLS test makes a throwaway CA and server certificate with openssl.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The web door's browser test renders the contact and customer pages in
# headless Chromium (Debian's package; fonts for its screenshots).
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
# ... and fills its forms with Selenium (run by the system Python).
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
/usr/bin/python3 -c "import selenium" >/dev/null 2>&1 || need+=(python3-selenium)
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing ${need[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    # Postfix is wanted for smtp-sink and for throwaway instances with their
    # own configuration: install it without setting up a mail server on
    # this machine.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi

# The outbound tests (tests/outbound.rs, tests/conversation.rs) deliver to a
# real SMTP server: Python's aiosmtpd (tests/common/smtp_sink.py). Installed
# only when missing; on a system Python that refuses pip (PEP 668), from
# Debian's package instead.
if ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
    echo "test.sh: installing aiosmtpd"
    python3 -m pip install --quiet aiosmtpd 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages aiosmtpd 2>/dev/null \
        || {
            SUDO=""
            [ "$(id -u)" = 0 ] || SUDO=sudo
            $SUDO apt-get update
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-aiosmtpd
        }
    python3 -c "import aiosmtpd"
fi

# The metrics test (tests/metrics.rs) parses /metrics with Prometheus's
# own Python parser (prometheus-client), installed the same way.
if ! python3 -c "import prometheus_client" >/dev/null 2>&1; then
    echo "test.sh: installing prometheus-client"
    python3 -m pip install --quiet prometheus-client 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages prometheus-client 2>/dev/null \
        || {
            SUDO=""
            [ "$(id -u)" = 0 ] || SUDO=sudo
            $SUDO apt-get update
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-prometheus-client
        }
    python3 -c "import prometheus_client"
fi

cargo test --release --locked "$@"

# The tests of the store, again with the store on PostgreSQL (each test a
# database of its own). Skipped when arguments chose other tests.
if [ $# -eq 0 ] || [ "$*" = "--no-fail-fast" ]; then
    POSTDESK_TEST_BACKEND=postgres cargo test --release --locked "$@" \
        --test smtp_accept --test threading --test routing --test conversation \
        --test outbound --test automation --test sla --test satisfaction \
        --test webhooks --test stats --test ticket_numbers --test cli_listing \
        --test detector_actions --test detector_e2e --test digest --test trust \
        --test bad_input --test crash --test fidelity --test ingest_cli --test metrics
fi
