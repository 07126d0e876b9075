#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for postdesk's tests and benches:
#
#   bash contrib/pg-cluster.sh DIR PORT [--throwaway]
#
# makes a cluster in DIR/data on first use (superuser `postdesk`, its
# password in DIR/password, SCRAM over TCP), then runs the server in the
# foreground on 127.0.0.1:PORT (socket in DIR) until it is stopped (SIGINT
# or SIGTERM). With --throwaway, DIR is removed once the server has stopped. As root, the cluster is owned by and runs as the `postgres`
# user (PostgreSQL refuses to run as root). Connect with
#   postgres://postdesk@127.0.0.1:PORT/postgres  and the password file.
set -euo pipefail
dir=$(realpath "$1")
port=$2
throwaway=${3:-}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "pg-cluster.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    # Keep the parent-death signal across the change of user: the cluster
    # stops when the test process that started it does.
    as=(setpriv --reuid=postgres --regid=postgres --init-groups --pdeathsig keep --)
fi
if [ ! -e "$dir/data/PG_VERSION" ]; then
    head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password"
    chmod 0644 "$dir/password"
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U postdesk --pwfile="$dir/password" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
fi
server=("${as[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir"
    -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200
    -c log_min_messages=warning -c logging_collector=off)
if [ "$throwaway" != --throwaway ]; then
    exec "${server[@]}"
fi
"${server[@]}" &
pid=$!
# SIGINT or SIGTERM here (or the parent's death signal) stops the server
# fast, waits for it, then removes the cluster.
trap 'kill -INT "$pid" 2>/dev/null || true; wait "$pid" || true; rm -rf "$dir"' EXIT
trap 'exit 0' INT TERM
wait "$pid" || true
