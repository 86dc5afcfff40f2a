#!/usr/bin/env bash
# Starts PgBouncer in transaction pooling mode on 127.0.0.1:${PGBOUNCER_PORT:-6432}
# in front of the local PostgreSQL on ${PGBOUNCER_TARGET_PORT:-5432}, unless
# it already answers. Idempotent. The fault tests start their own on other
# ports, in front of their private cluster.
# PgBouncer refuses to run as root, so it runs as the postgres user.
set -euo pipefail
port=${PGBOUNCER_PORT:-6432}
dir=${PGBOUNCER_DIR:-/tmp/tenancy-pgbouncer}
target_port=${PGBOUNCER_TARGET_PORT:-5432}

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "installing pgbouncer" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi
bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

if pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
  exit 0
fi

mkdir -p "$dir"
cat >"$dir/userlist.txt" <<'USERS'
"postgres" ""
"tenancy_app" ""
"tenancy_owner" ""
USERS
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$target_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 10
max_db_connections = 20
server_idle_timeout = 10
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
chown -R postgres:postgres "$dir"
su postgres -s /bin/sh -c "$bin -d $dir/pgbouncer.ini"
for _ in $(seq 50); do
  pg_isready -q -h 127.0.0.1 -p "$port" && exit 0
  sleep 0.1
done
echo "pgbouncer did not start; see $dir/pgbouncer.log" >&2
exit 1
