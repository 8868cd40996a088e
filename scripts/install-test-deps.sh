#!/usr/bin/env bash
# Install everything the end-to-end tests need (idempotent, non-interactive, Debian 12, run as root).
#   - Debian: chromium (headless browser for livekit-client), iproute2 (ip/veth), util-linux (unshare),
#     coturn (turnutils_uclient / turnutils_peer drive the embedded TURN server)
#   - $ROOT/.venv: Python LiveKit clients + pytest, pinned in tests/e2e/requirements.txt
#   - tests/e2e/js/node_modules: livekit-client, livekit-server-sdk, playwright-core (package-lock.json)
# Re-running is cheap: each step is skipped when already satisfied.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

log() { echo "[install-test-deps] $*"; }

# ---------------------------------------------------------------- Debian packages
APT_PKGS=(chromium iproute2 util-linux coturn)
# A fresh Debian has neither Node.js nor the venv module; machines that ship their own keep them.
command -v node >/dev/null 2>&1 || APT_PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PKGS+=(npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || APT_PKGS+=(python3-venv)
missing=()
for p in "${APT_PKGS[@]}"; do
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "apt: installing ${missing[*]}"
    # Only refresh the package lists when apt can't find a candidate for what we need.
    need_update=0
    for p in "${missing[@]}"; do
        cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
        if [[ -z "$cand" || "$cand" == "(none)" ]]; then need_update=1; fi
    done
    if ((need_update)); then
        log "apt: apt-get update"
        apt-get update -q
    fi
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        # Stale lists (e.g. a removed security update): refresh once and retry.
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
else
    log "apt: ${APT_PKGS[*]} already installed"
fi

# ---------------------------------------------------------------- Python venv
VENV="$ROOT/.venv"
REQ="$ROOT/tests/e2e/requirements.txt"
STAMP="$VENV/.e2e-requirements.sha256"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "python: creating $VENV"
    python3 -m venv "$VENV"
fi
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    log "python: pip install -r $REQ"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    "$VENV/bin/python" -c 'import livekit.rtc, livekit.api, aiortc, pytest, pytest_asyncio, numpy, aiohttp, jwt'
    echo "$want" >"$STAMP"
else
    log "python: venv up to date"
fi

# ---------------------------------------------------------------- Node packages
JS="$ROOT/tests/e2e/js"
JS_STAMP="$JS/node_modules/.e2e-lock.sha256"
if [[ -f "$JS/package-lock.json" ]]; then
    want="$(cat "$JS/package.json" "$JS/package-lock.json" | sha256sum | cut -d' ' -f1)"
    have="$(cat "$JS_STAMP" 2>/dev/null || true)"
    if [[ "$want" != "$have" || ! -d "$JS/node_modules/livekit-client" ]]; then
        log "node: npm ci in $JS"
        (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" >"$JS_STAMP"
    else
        log "node: node_modules up to date"
    fi
else
    log "node: no package-lock.json, npm install in $JS"
    (cd "$JS" && npm install --no-audit --no-fund --loglevel=error)
    want="$(cat "$JS/package.json" "$JS/package-lock.json" | sha256sum | cut -d' ' -f1)"
    echo "$want" >"$JS_STAMP"
fi

log "done"
