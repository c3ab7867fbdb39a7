#!/usr/bin/env bash
# The whole Marketo S2S runbook against the local emulator, no tenant needed:
# builds the tools, starts tenant-sim (with replication lag and an AD FS-federated domain, so the
# real waits and the HRD step show), runs the runbook, runs it again to show that nothing changes,
# and stops the emulator. Exits 0 only if all of that held.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n\033[1m%s\033[0m\n' "$*" >&2; }

# MKTO_S2S_DEMO_BIN: use tools built elsewhere (the test suite runs the demo on its own build).
if [ -n "${MKTO_S2S_DEMO_BIN:-}" ]; then
  bin="$MKTO_S2S_DEMO_BIN"
else
  say "Building the tools (cargo build)"
  cargo build --quiet --bins
  bin="$(pwd)/target/debug"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/marketo-s2s-demo.XXXXXX")"
sim_pid=""
cleanup() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

say "Starting tenant-sim (replication lag 1500 ms, federated domain)"
"$bin/tenant-sim" --port 0 --replication-lag-ms 1500 --federated > "$work/sim.json" 2> "$work/sim.log" &
sim_pid=$!
# Up to 60 s: on a loaded machine (a CI runner building in parallel) 5 s was seen to be too short.
for _ in $(seq 1 1200); do
  [ -s "$work/sim.json" ] && break
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.05
done
line="$(head -n 1 "$work/sim.json")"
field() { printf '%s' "$line" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
url="$(field url)"; tenant="$(field tenant_id)"; dynamics="$(field dynamics_url)"
client_id="$(field client_id)"; client_secret="$(field client_secret)"
if [ -z "$url" ] || [ -z "$client_secret" ]; then echo "demo: tenant-sim did not start: $(cat "$work/sim.log")" >&2; exit 1; fi
echo "tenant-sim serves Graph at $url and the Dynamics org at $dynamics (tenant $tenant)" >&2

# The admin signs in as a service principal from the environment (the azure-identity convention);
# the emulator's sign-in and Graph endpoints stand in for the cloud's.
export AZURE_TENANT_ID="$tenant" AZURE_CLIENT_ID="$client_id" AZURE_CLIENT_SECRET="$client_secret"
export AZURE_AUTHORITY_HOST="$url" MKTO_S2S_GRAPH_URL="$url" MKTO_S2S_BIN="$bin"
unset client_secret

state="$work/marketo-s2s.state.json"
say "Run 1: the runbook on a fresh tenant"
scripts/setup-marketo-s2s.sh --tenant "$tenant" --dynamics-url "$dynamics" --state "$state" \
  --secret-file "$work/marketo.secret" --sync-filter lead,contact

say "Run 2: the same command again — every step must report that nothing changed"
scripts/setup-marketo-s2s.sh --tenant "$tenant" --dynamics-url "$dynamics" --state "$state" \
  --secret-file "$work/marketo.secret" --sync-filter lead,contact 2> "$work/run2.log" || { cat "$work/run2.log" >&2; exit 1; }
cat "$work/run2.log" >&2
if grep -q '"changed": true' "$state"; then
  echo "demo: FAILED — the second run changed something:" >&2
  grep -n '"changed": true' "$state" >&2
  exit 1
fi
echo "demo: the second run wrote nothing (every steps.*.changed is false)" >&2

say "The secret file"
ls -l "$work/marketo.secret" | awk '{print $1, $NF}' >&2
mode="$(stat -c %a "$work/marketo.secret" 2>/dev/null || stat -f %Lp "$work/marketo.secret")"
[ "$mode" = 600 ] || { echo "demo: FAILED — the secret file is mode $mode, not 600" >&2; exit 1; }

say "Demo complete: tenant-sim stops now."
