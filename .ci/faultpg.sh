#!/usr/bin/env bash
# Creates and starts the private PostgreSQL cluster that the fault tests
# restart and slow down (examples/notekeeper, TestFaults), so that no fault
# ever reaches the shared server on 5432: cluster ${FAULT_PG_CLUSTER:-tenancy_faults}
# on 127.0.0.1:${FAULT_PG_PORT:-5450}. Run as root; idempotent.
exec bash "$(dirname "$0")/pgcluster.sh" "${FAULT_PG_CLUSTER:-tenancy_faults}" "${FAULT_PG_PORT:-5450}" 100
