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

step() { echo; echo "==== $* ($(date +%H:%M:%S))"; }

step "install test dependencies"
if [[ -z "${SKIP_E2E:-}" ]]; then
    "$ROOT/scripts/install-test-deps.sh"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (unit, scenario, bench smoke runs)"
cargo test --workspace --all-targets

step "build the switchyard binary (same debug profile the tests used)"
cargo build -p switchyard

if [[ -z "${SKIP_E2E:-}" ]]; then
    step "end-to-end tests with real LiveKit clients (private network namespace)"
    SWITCHYARD_BIN="$ROOT/target/debug/switchyard" "$ROOT/scripts/e2e.sh"
fi
step "all tests passed"
