#!/usr/bin/env bash
# windows-check: the Windows binaries, built and run on this Linux machine.
#
#   1. install  what is missing: Debian's rustc-web (with its standard library source), MinGW-w64
#               and Wine 8 (skipped when present; needs root and Debian's package registry)
#   2. build    every tool for x86_64-pc-windows-gnu with Debian's rustc (-Zbuild-std, so no
#               rustup target is needed) into target/windows, with the Windows tests, in one
#               cargo run (the standard library is built once, for both)
#   3. wine     a private prefix under target/windows/wine, with the test-only
#               bcryptprimitives.dll shim (scripts/windows/) that Rust binaries need on Wine 8
#   4. tests    core's unit tests and tests/windows, as Windows processes under Wine
#   5. scenarios  the tools as Windows processes under Wine against a native tenant-sim, with
#               Windows paths (C:\... through Wine's drive C:, and relative ..\): each scenario
#               is a function scenario_<name> below, run in the order of SCENARIOS
#
# Exits non-zero at the first failure, naming it. Usage:
#   scripts/windows-check.sh                 everything
#   scripts/windows-check.sh --no-tests      build and scenarios only
#   scripts/windows-check.sh --clippy        also clippy -D warnings for the Windows target
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

. scripts/windows/toolchain.sh
TARGET="$WIN_TARGET"
WTARGET="$root/target/windows"                 # its own target dir: another compiler, std from source
WBIN="$WTARGET/$TARGET/debug"
TOOLS=(preflight register-app grant-consent make-secret set-hrd-policy assign-role
       configure-marketo publish-customizations add-sync-filter verify-sync teardown)
# The chain in runbook order, as scripts/setup-marketo-s2s.sh runs it.
CHAIN=(register-app grant-consent make-secret set-hrd-policy assign-role configure-marketo
       publish-customizations)
SCENARIOS=(exes nul chain rerun verify teardown)

run_tests=1 clippy=0
for arg in "$@"; do
  case "$arg" in
    --no-tests) run_tests=0 ;;
    --clippy) clippy=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "windows-check: unknown option $arg" >&2; exit 2 ;;
  esac
done

started=$SECONDS
step() { printf '== windows-check: %s (%ds)\n' "$*" "$((SECONDS - started))"; }
fail() { printf 'windows-check: FAILED: %s\n' "$*" >&2; exit 1; }

# ---- 1. install ------------------------------------------------------------------------------
# clippy for the Windows target must be Debian's too (rustup's is another compiler version).
if [ "$clippy" = 1 ]; then win_install rust-web-clippy; else win_install; fi

# ---- 2. build ----------------------------------------------------------------------------------
# One cargo run builds the root package's binaries (every tool and tenant-sim: the Windows test
# needs them) and the test executables, and bench, so the whole workspace is shown to build.
step "building the tools and the Windows tests for $TARGET with $(/usr/bin/rustc --version)"
mkdir -p "$WTARGET"
wcargo "$WTARGET" test --no-run -p s2s-core --lib -p marketo-s2s --test windows -p bench \
  > "$WTARGET/build.log" 2>&1 || { tail -n 60 "$WTARGET/build.log" >&2; fail "the Windows build (log: $WTARGET/build.log)"; }
for t in "${TOOLS[@]}" tenant-sim; do
  [ -f "$WBIN/$t.exe" ] || fail "$WBIN/$t.exe was not built"
done
if [ "$clippy" = 1 ]; then
  step "clippy -D warnings for $TARGET"
  wcargo "$WTARGET" clippy --workspace --all-targets -- -D warnings || fail "clippy for $TARGET"
fi

# ---- 3. wine -----------------------------------------------------------------------------------
export WINEPREFIX="$WTARGET/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  step "creating the Wine prefix $WINEPREFIX"
  "$WINE" wineboot --init >/dev/null 2>&1 || fail "wineboot --init"
fi
shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$shim" ] || [ scripts/windows/bcryptprimitives.c -nt "$shim" ]; then
  step "building the test-only bcryptprimitives.dll shim"
  x86_64-w64-mingw32-gcc -shared -O2 -Wall -o "$shim" scripts/windows/bcryptprimitives.c -lbcrypt \
    || fail "building scripts/windows/bcryptprimitives.c"
fi
"$WINE" "$WBIN/register-app.exe" --version >/dev/null 2>&1 || fail "register-app.exe does not start under Wine"

# ---- 4. tests ------------------------------------------------------------------------------------
if [ "$run_tests" = 1 ]; then
  step "core's unit tests and tests/windows under Wine"
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE" \
    wcargo "$WTARGET" test --no-fail-fast -p s2s-core --lib -p marketo-s2s --test windows 2>&1 \
    | grep -v '^\s*\(Compiling\|Finished\|Blocking\)' || fail "the Windows tests (cargo test --target $TARGET)"
fi

# ---- 5. scenarios --------------------------------------------------------------------------------
step "starting a native tenant-sim"
cargo build --quiet --bin tenant-sim || fail "building tenant-sim for Linux"
work="$WINEPREFIX/drive_c/mkto-check"          # C:\mkto-check for the Windows processes
rm -rf "$work" && mkdir -p "$work/contoso/work"
sim_pid=""
cleanup() { if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
target/debug/tenant-sim --port 0 --federated --replication-lag-ms 200 > "$work/sim.json" 2> "$work/sim.log" &
sim_pid=$!
# Its first line comes once the admin's RSA key is made: seconds on a busy machine.
for _ in $(seq 1 600); do
  [ -s "$work/sim.json" ] && break
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.1
done
line="$(head -n 1 "$work/sim.json")"
field() { printf '%s' "$line" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
url="$(field url)"; dynamics="$(field dynamics_url)"
[ -n "$url" ] || fail "tenant-sim did not start: $(cat "$work/sim.log")"
# Environment variables pass through Wine to the Windows processes.
export AZURE_TENANT_ID="$(field tenant_id)" AZURE_CLIENT_ID="$(field client_id)"
export AZURE_CLIENT_SECRET="$(field client_secret)" AZURE_AUTHORITY_HOST="$url"
export MKTO_S2S_GRAPH_URL="$url" MKTO_S2S_DYNAMICS_URL="$dynamics" MKTO_S2S_TIMEOUT=120s

# win TOOL ARGS...: TOOL.exe as a Windows process, in C:\mkto-check\contoso\work; stdout and
# stderr go to $work/TOOL.out / .err; returns the tool's exit code.
win() {
  local tool="$1"; shift
  (cd "$work/contoso/work" && "$WINE" "$WBIN/$tool.exe" "$@" > "$work/$tool.out" 2> "$work/$tool.err")
}
# expect CODE TOOL ARGS...: runs `win` and fails the check unless it exits CODE.
expect() {
  local want="$1" tool="$2" code=0; shift 2
  win "$tool" "$@" || code=$?
  if [ "$code" != "$want" ]; then
    cat "$work/$tool.err" >&2
    fail "$tool.exe $* exited $code, not $want"
  fi
}
# sim METHOD PATH [PYTHON]: calls a control route of the emulator; with PYTHON, prints that
# expression over the JSON answer `v`.
sim() {
  python3 - "$1" "$url$2" "${3:-}" <<'PY'
import json, sys, urllib.request
method, url, expr = sys.argv[1:]
answer = urllib.request.urlopen(urllib.request.Request(url, method=method)).read()
if expr:
    v = json.loads(answer)
    print(eval(expr))
PY
}
writes() { sim GET /_sim/requests "len([r for r in v if r['method'] != 'GET' and r['service'] != 'login'])"; }

STATE_ABS='C:\mkto-check\contoso\contoso.state.json'   # absolute, through Wine's drive C:
STATE_REL='..\contoso.state.json'                       # relative to C:\mkto-check\contoso\work
SECRET_REL='..\contoso.secret'

scenario_exes() {
  for t in "${TOOLS[@]}"; do
    expect 0 "$t" --help
    grep -q "Usage" "$work/$t.out" || fail "$t.exe --help printed no usage"
  done
}

# < NUL from cmd.exe is "no document" (as < /dev/null on Unix); a dry run sends no write.
scenario_nul() {
  sim DELETE /_sim/requests
  local code=0
  (cd "$work/contoso/work" && "$WINE" cmd /c "$(winepath_of "$WBIN/register-app.exe") --dry-run < NUL" \
    > "$work/nul.out" 2> "$work/nul.err") || code=$?
  [ "$code" = 0 ] || { cat "$work/nul.err" >&2; fail "register-app.exe --dry-run < NUL under cmd.exe exited $code"; }
  grep -q '"plan"' "$work/nul.out" || fail "register-app --dry-run < NUL printed no plan"
  [ "$(writes)" = 0 ] || fail "the dry run sent a write"
}
winepath_of() { printf 'Z:%s' "${1//\//\\}"; }

scenario_chain() {
  for t in "${CHAIN[@]}"; do
    case "$t" in
      make-secret) expect 0 "$t" --state "$STATE_ABS" --secret-file "$SECRET_REL" ;;
      publish-customizations) expect 0 "$t" --state "$STATE_ABS" --if-changed ;;
      *) expect 0 "$t" --state "$STATE_ABS" ;;
    esac
  done
  [ -s "$work/contoso/contoso.secret" ] || fail "make-secret wrote no C:\\mkto-check\\contoso\\contoso.secret"
  grep -q '"file": "contoso.secret"' "$work/contoso/contoso.state.json" \
    || fail "secret.file is not recorded by name beside the state file"
}

scenario_rerun() {
  sim DELETE /_sim/requests
  for t in "${CHAIN[@]}"; do
    case "$t" in
      make-secret) expect 0 "$t" --state "$STATE_REL" --secret-file "$SECRET_REL" ;;
      publish-customizations) expect 0 "$t" --state "$STATE_REL" --if-changed ;;
      *) expect 0 "$t" --state "$STATE_REL" ;;
    esac
  done
  local n; n="$(writes)"
  [ "$n" = 0 ] || { sim GET /_sim/requests "[(r['method'], r['path']) for r in v if r['method'] != 'GET']" >&2; fail "the re-run sent $n write(s)"; }
  if grep -q '"changed": true' "$work/contoso/contoso.state.json"; then fail "a re-run step says changed"; fi
}

scenario_verify() {
  expect 0 verify-sync --state "$STATE_REL"
  grep -q "all .* checks passed" "$work/verify-sync.err" || fail "verify-sync did not pass every check"
  grep -q "Client secret: the content of" "$work/verify-sync.err" || fail "verify-sync printed no step-3 block"
}

scenario_teardown() {
  local app; app="$(sim GET /_sim/state "len(v['applications'])")"
  expect 0 teardown --state "$STATE_ABS" --yes
  [ "$(sim GET /_sim/state "len(v['applications'])")" -lt "$app" ] || fail "teardown left the application"
  [ ! -e "$work/contoso/contoso.secret" ] || fail "teardown left the secret file"
  local kinds; kinds="$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(sorted({r["kind"] for r in d["teardown"]["removed"]})))' "$work/contoso/contoso.state.json")"
  for k in application service_principal oauth2_permission_grant hrd_policy role_assignment secret_file; do
    [[ " $kinds " == *" $k "* ]] || fail "teardown.removed has no $k (it has: $kinds)"
  done
  sim DELETE /_sim/requests
  expect 0 teardown --state "$STATE_REL" --yes
  [ "$(writes)" = 0 ] || fail "a second teardown sent a write"
}

for s in "${SCENARIOS[@]}"; do
  step "scenario $s"
  "scenario_$s"
done
step "all passed"
