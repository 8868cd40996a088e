#!/usr/bin/env bash
# Runs every test of Switchyard, installing what the tests need first (idempotent).
#
#   ./scripts/test.sh            # everything: lint, unit + scenario tests, benches (test mode), e2e
#   SKIP_E2E=1 ./scripts/test.sh # without the real-client end-to-end suite
#
# CI (.ci/run) calls exactly this. Needs root for apt and for the e2e network namespace.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never
# The TURN tests run coturn's turnutils_uclient (scripts/install-test-deps.sh installs it); here a
# missing binary fails them instead of skipping.
export SWITCHYARD_REQUIRE_COTURN=1

step() { echo; echo "==== $* ($(date +%H:%M:%S))"; }

step "install test dependencies"
if [[ -z "${SKIP_E2E:-}" ]]; then
    "$ROOT/scripts/install-test-deps.sh"
    # A real PostgreSQL for the store tests and the database e2e run (Unix socket URL).
    export SWITCHYARD_TEST_POSTGRES_URL="$("$ROOT/scripts/postgres.sh" --fresh)"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (unit, scenario, bench smoke runs)"
cargo test --workspace --all-targets

step "build the switchyard binary (same debug profile the tests used)"
cargo build -p switchyard

step "load generator smoke run against the binary (a few seconds; prints figures, never fails on timing)"
SWITCHYARD_REQUIRE_BENCH_SMOKE=1 cargo test -p switchyard-benches --test loadgen_smoke -- --nocapture

if [[ -z "${SKIP_E2E:-}" ]]; then
    step "end-to-end tests with real LiveKit clients (private network namespace)"
    SWITCHYARD_BIN="$ROOT/target/debug/switchyard" "$ROOT/scripts/e2e.sh"

    step "persistence, server API and webhook e2e tests again, on PostgreSQL"
    DATABASE_URL="$("$ROOT/scripts/postgres.sh" --fresh)" SWITCHYARD_BIN="$ROOT/target/debug/switchyard" \
        "$ROOT/scripts/e2e.sh" -k "leave or room_service or webhooks"
fi
step "all tests passed"
