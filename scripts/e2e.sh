#!/usr/bin/env bash
# Run the end-to-end tests (tests/e2e) against the Switchyard binary, inside a private network
# namespace so that no packet can leave this machine:
#   lo up + a veth pair v0 (10.200.0.1/24, the server) <-> v1 (10.200.0.2/24).
# (Native libwebrtc ignores loopback interfaces, hence the veth pair.)
#
#   scripts/e2e.sh                 # whole suite
#   scripts/e2e.sh -k data         # extra arguments go to pytest
#   SWITCHYARD_BIN=/path/to/switchyard scripts/e2e.sh
#
# Needs root (unshare -n) and scripts/install-test-deps.sh to have run. Exits with pytest's code.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SWITCHYARD_BIN="${SWITCHYARD_BIN:-$ROOT/target/debug/switchyard}"
PY="$ROOT/.venv/bin/python"

if [[ ! -x "$PY" ]]; then
    echo "e2e: $PY missing: run scripts/install-test-deps.sh first" >&2
    exit 2
fi
if [[ ! -d "$ROOT/tests/e2e/js/node_modules/livekit-client" ]]; then
    echo "e2e: tests/e2e/js/node_modules missing: run scripts/install-test-deps.sh first" >&2
    exit 2
fi
if [[ ! -x "$SWITCHYARD_BIN" ]]; then
    echo "e2e: warning: server binary $SWITCHYARD_BIN not found (tests will fail)" >&2
fi
mkdir -p "$ROOT/tests/.artifacts"

cd "$ROOT"
# Hard cap for the whole run (the suite targets < 3 min; each test has its own timeout too).
E2E_TIMEOUT="${E2E_TIMEOUT:-900}"

set +e
unshare -n bash -c '
    set -e
    ip link set lo up
    ip link add v0 type veth peer name v1
    ip addr add 10.200.0.1/24 dev v0
    ip addr add 10.200.0.2/24 dev v1
    ip link set v0 up
    ip link set v1 up
    set +e
    timeout -k 15 "$0" "$1" -m pytest tests/e2e -v "${@:2}"
' "$E2E_TIMEOUT" "$PY" "$@"
rc=$?
set -e
exit $rc
