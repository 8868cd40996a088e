#!/usr/bin/env bash
# Starts a local PostgreSQL for the tests (installs it if needed; idempotent; root) and
# prints the connection URL on stdout. The URL uses the Unix socket, which also works from
# inside the e2e network namespace (sockets are files, not network addresses).
#
#   url=$(scripts/postgres.sh)            # database "switchyard_test"
#   url=$(scripts/postgres.sh --fresh)    # drop and recreate it first
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# su postgres must be able to enter the working directory.
cd /
log() { echo "[postgres] $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing postgresql"
    apt-get install -y -q --no-install-recommends postgresql >&2 || { apt-get update -q >&2; apt-get install -y -q --no-install-recommends postgresql >&2; }
fi
ver="$(ls /etc/postgresql | sort -V | tail -1)"
# Password auth for our role over the Unix socket (the default for local sockets is peer).
hba="/etc/postgresql/$ver/main/pg_hba.conf"
if ! grep -q "^local all switchyard scram-sha-256" "$hba"; then
    sed -i "0,/^local/s//local all switchyard scram-sha-256\nlocal/" "$hba"
    pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $4}' | grep -q online && pg_ctlcluster "$ver" main reload >&2 || true
fi
if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $4}' | grep -q online; then
    log "starting cluster $ver/main"
    pg_ctlcluster "$ver" main start >&2
fi
for _ in $(seq 1 50); do
    su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
    sleep 0.2
done
DB=switchyard_test
su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='switchyard'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"create role switchyard login password 'switchyard'\"" >&2
if [[ "${1:-}" == "--fresh" ]]; then
    su postgres -c "psql -qc 'drop database if exists $DB'" >&2
fi
su postgres -c "psql -qAtc \"select 1 from pg_database where datname='$DB'\"" | grep -q 1 \
    || su postgres -c "psql -qc 'create database $DB owner switchyard'" >&2
echo "postgres://switchyard:switchyard@localhost/$DB?host=/var/run/postgresql"
