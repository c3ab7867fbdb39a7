#!/usr/bin/env bash
# Conformance: Microsoft's own clients (MSAL for Python, azure-identity, msgraph-sdk and the
# Dataverse client for Python, unpatched, versions pinned in tests/conformance/requirements.txt)
# against `tenant-sim --tls` (docs/real-service-notes.md, "Conformance"). Builds the emulator,
# installs the clients into a virtual environment under target/ (again only when the
# requirements change), starts the emulator, runs tests/conformance/run.py and stops the
# emulator. Exit 0 when every check passed.
#
# Usage: scripts/conformance.sh [FILTER]    FILTER runs only the checks whose name contains it
# Needs: CPython 3.11 (python3.11, else python3; or PYTHON=...) with venv and pip, and PyPI
# reachable for the first install (about a minute); the run itself is offline (loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."

req=tests/conformance/requirements.txt
venv=target/conformance-venv
python=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
if [ -z "$python" ]; then
    echo "conformance: no python3.11 or python3 on PATH (set PYTHON=...)" >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/.requirements"; then
    echo "conformance: installing the pinned clients into $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check -r "$req"
    cp "$req" "$venv/.requirements"
fi

echo "conformance: building tenant-sim" >&2
cargo build --quiet --bin tenant-sim

work="$(mktemp -d)"
sim_pid=""
cleanup() {
    if [ -n "$sim_pid" ]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

target/debug/tenant-sim --tls --managed-identity --federated >"$work/sim.json" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 1 600); do
    [ -s "$work/sim.json" ] && break
    if ! kill -0 "$sim_pid" 2>/dev/null; then
        echo "conformance: tenant-sim did not start:" >&2
        cat "$work/sim.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ ! -s "$work/sim.json" ]; then
    echo "conformance: tenant-sim printed no start-up line within 60 s" >&2
    exit 1
fi

ca="$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ca_file"])' "$work/sim.json")"
# The clients trust the emulator's throw-away CA (requests and MSAL read REQUESTS_CA_BUNDLE,
# httpx and OpenSSL SSL_CERT_FILE); nothing goes through a proxy.
export REQUESTS_CA_BUNDLE="$ca" SSL_CERT_FILE="$ca" NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy AZURE_CLIENT_ID AZURE_TENANT_ID AZURE_CLIENT_SECRET \
    AZURE_AUTHORITY_HOST IDENTITY_ENDPOINT IDENTITY_HEADER MSI_ENDPOINT IMDS_ENDPOINT
cd tests/conformance
"../../$venv/bin/python" -W ignore run.py "$work/sim.json" "$@"
