#!/usr/bin/env bash
# Creates and starts a local PostgreSQL cluster of the newest installed
# version: pgcluster.sh NAME PORT MAX_CONNECTIONS, on 127.0.0.1:PORT with
# trust authentication on loopback like the main cluster. Run as root.
# Idempotent: an existing cluster is only started when it is down.
set -euo pipefail
name=$1
port=$2
max_connections=$3
version=$(ls /etc/postgresql | sort -n | tail -1)

if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version $name"; then
  echo "creating PostgreSQL cluster $version/$name on port $port"
  pg_createcluster "$version" "$name" -p "$port" >/dev/null
  conf=/etc/postgresql/$version/$name
  cat >"$conf/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
HBA
  cat >>"$conf/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
max_connections = $max_connections
shared_buffers = 32MB
CONF
fi
if ! pg_isready -q -h 127.0.0.1 -p "$port"; then
  pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
fi
for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 0.2; done
pg_isready -h 127.0.0.1 -p "$port"
