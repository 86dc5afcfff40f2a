#!/usr/bin/env bash
# Creates and starts the second PostgreSQL server that the placement tests
# spread tenants over (TEST_DATABASE_URL2): cluster
# ${SECOND_PG_CLUSTER:-tenancy_second} on 127.0.0.1:${SECOND_PG_PORT:-5433}.
# Run as root; idempotent.
exec bash "$(dirname "$0")/pgcluster.sh" "${SECOND_PG_CLUSTER:-tenancy_second}" "${SECOND_PG_PORT:-5433}" 200
