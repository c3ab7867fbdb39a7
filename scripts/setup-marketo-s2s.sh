#!/usr/bin/env bash
# The Marketo "Step 2 of 3" runbook against a real tenant: runs the eight marketo-s2s tools in
# order on one state file, stops at the first failure with that step's exit code and the command
# that resumes, and ends with verify-sync's checklist and the values to enter in Marketo step 3.
# It starts with preflight (read-only: may the admin do every step, is the org ready?) unless
# --skip-preflight is given.
#
# Usage:
#   scripts/setup-marketo-s2s.sh --tenant contoso.onmicrosoft.com \
#       --dynamics-url https://contoso.crm.dynamics.com [--name "Marketo Integration"] \
#       [--state FILE] [--from STEP] [--dry-run] [--secret-file FILE] [--sync-filter lead,contact] \
#       [--skip-preflight]
#
# Passed to every step: --cloud NAME, --auth SOURCE, --timeout DURATION, --authority-host URL,
#   --graph-url URL, --login-client-id GUID, --ca-file FILE, --retarget, -v/-vv, -q.
# Passed to their step: --expires-in and --min-validity (make-secret), --hrd-mode MODE
#   (set-hrd-policy --mode), --role NAME (assign-role and verify-sync; repeatable), --async
#   (publish-customizations), --warn-days N (verify-sync).
#
# Needs the tools on PATH, or next to this script in ../target/release or ../target/debug
# (override with MKTO_S2S_BIN=DIR). Sign-in: see README (environment service principal, az,
# or device code on a terminal — only the first tool prompts; the rest reuse the token cache).
# A failed step prints the command that resumes from it with the same flags (a dry run's
# resumes as a dry run).
# Exit codes: those of the step that failed; 2 for a bad argument of the runbook itself.
set -euo pipefail

STEPS=(preflight register-app grant-consent make-secret set-hrd-policy assign-role configure-marketo publish-customizations add-sync-filter verify-sync)

# The comment block above, without the shell.
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
fail() { echo "setup-marketo-s2s: error: $1" >&2; echo "setup-marketo-s2s: hint: see \`$0 --help\`" >&2; exit 2; }

tenant="" dynamics_url="" name="" state="./marketo-s2s.state.json" from="" dry_run=0 secret_file="" sync_filter="" skip_preflight=0
# Flags for every step, and for one step each; recorded as typed so the resume command repeats them.
common_pass=() secret_pass=() hrd_pass=() role_pass=() publish_pass=() verify_pass=() pass_through=()
while [ $# -gt 0 ]; do
  opt="$1"
  # A flag that takes a value: it must be there and must not be the next flag.
  value() { if [ $# -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then fail "$1 needs a value"; fi; }
  case "$opt" in
    --tenant) value "$@"; tenant="$2"; shift 2 ;;
    --dynamics-url) value "$@"; dynamics_url="$2"; shift 2 ;;
    --name) value "$@"; name="$2"; shift 2 ;;
    --state) value "$@"; state="$2"; shift 2 ;;
    --from) value "$@"; from="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --secret-file) value "$@"; secret_file="$2"; shift 2 ;;
    --sync-filter) value "$@"; sync_filter="$2"; shift 2 ;;
    --cloud|--auth|--timeout|--authority-host|--graph-url|--login-client-id|--ca-file)
      value "$@"; common_pass+=("$1" "$2"); pass_through+=("$1" "$2"); shift 2 ;;
    --retarget|-v|-vv|--verbose|-q|--quiet)
      common_pass+=("$1"); pass_through+=("$1"); shift ;;
    --expires-in|--min-validity)
      value "$@"; secret_pass+=("$1" "$2"); pass_through+=("$1" "$2"); shift 2 ;;
    --hrd-mode) value "$@"; hrd_pass+=(--mode "$2"); pass_through+=("$1" "$2"); shift 2 ;;
    --role) value "$@"; role_pass+=(--role "$2"); pass_through+=("$1" "$2"); shift 2 ;;
    --async) publish_pass+=(--async); pass_through+=("$1"); shift ;;
    --warn-days) value "$@"; verify_pass+=("$1" "$2"); pass_through+=("$1" "$2"); shift 2 ;;
    --skip-preflight) skip_preflight=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) fail "unknown argument $opt" ;;
  esac
done

if [ -n "$from" ]; then
  found=0
  for s in "${STEPS[@]}"; do [ "$s" = "$from" ] && found=1; done
  if [ $found = 0 ]; then
    echo "setup-marketo-s2s: error: --from $from is not a step (one of: ${STEPS[*]})" >&2
    exit 2
  fi
fi

# Where the tools are.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="${MKTO_S2S_BIN:-}"
if [ -z "$bin_dir" ]; then
  if command -v register-app >/dev/null 2>&1; then bin_dir="$(dirname "$(command -v register-app)")"
  elif [ -x "$here/../target/release/register-app" ]; then bin_dir="$here/../target/release"
  elif [ -x "$here/../target/debug/register-app" ]; then bin_dir="$here/../target/debug"
  else echo "setup-marketo-s2s: error: the marketo-s2s tools are not built: run cargo build --release" >&2; exit 2
  fi
fi

# A dry run works on a copy, so the real state file is never touched (the tools never write
# --state in a dry run either: each step's would-be document goes to --plan, which becomes the
# next step's input).
work_state="$state"
if [ $dry_run = 1 ]; then
  work_state="$(mktemp "${TMPDIR:-/tmp}/marketo-s2s-dry.XXXXXX")"
  trap 'rm -f "$work_state" "$work_state.next" "$(dirname "$work_state")/.$(basename "$work_state").lock"' EXIT
  if [ -f "$state" ]; then cp "$state" "$work_state"; else echo '{}' > "$work_state"; fi
fi

common=(--state "$work_state" "${common_pass[@]}")
[ -n "$tenant" ] && common+=(--tenant "$tenant")
[ -n "$dynamics_url" ] && common+=(--dynamics-url "$dynamics_url")
[ $dry_run = 1 ] && common+=(--dry-run --plan "$work_state.next")

resume_args=()
[ -n "$tenant" ] && resume_args+=(--tenant "$tenant")
[ -n "$dynamics_url" ] && resume_args+=(--dynamics-url "$dynamics_url")
[ -n "$name" ] && resume_args+=(--name "$name")
[ "$state" != "./marketo-s2s.state.json" ] && resume_args+=(--state "$state")
[ -n "$secret_file" ] && resume_args+=(--secret-file "$secret_file")
[ -n "$sync_filter" ] && resume_args+=(--sync-filter "$sync_filter")
[ $skip_preflight = 1 ] && resume_args+=(--skip-preflight)
# A dry run resumes as a dry run: the pasted command must not turn it into real writes.
[ $dry_run = 1 ] && resume_args+=(--dry-run)
resume_args+=("${pass_through[@]}")

started=0; [ -z "$from" ] && started=1
total=${#STEPS[@]}; [ -z "$sync_filter" ] && total=$((total - 1))
[ $skip_preflight = 1 ] && total=$((total - 1))
n=0
planned=0
for step in "${STEPS[@]}"; do
  [ "$step" = add-sync-filter ] && [ -z "$sync_filter" ] && continue
  [ "$step" = preflight ] && [ $skip_preflight = 1 ] && continue
  n=$((n + 1))
  [ "$step" = "$from" ] && started=1
  if [ $started = 0 ]; then
    echo "==> [$n/$total] $step: skipped (--from $from)" >&2
    continue
  fi
  args=()
  case "$step" in
    register-app) [ -n "$name" ] && args+=(--name "$name") ;;
    make-secret) [ -n "$secret_file" ] && args+=(--secret-file "$secret_file"); args+=("${secret_pass[@]}") ;;
    set-hrd-policy) args+=("${hrd_pass[@]}") ;;
    assign-role) args+=("${role_pass[@]}") ;;
    publish-customizations) args+=(--if-changed "${publish_pass[@]}") ;;
    verify-sync) args+=("${role_pass[@]}" "${verify_pass[@]}") ;;
    add-sync-filter) IFS=',' read -r -a ents <<< "$sync_filter"; for e in "${ents[@]}"; do args+=(--entity "$e"); done ;;
  esac
  echo "==> [$n/$total] $step" >&2
  set +e
  "$bin_dir/$step" "${common[@]}" "${args[@]}" </dev/null
  code=$?
  set -e
  if [ $dry_run = 1 ] && [ -f "$work_state.next" ]; then mv -f "$work_state.next" "$work_state"; fi
  if [ $dry_run = 1 ] && grep -q '"method"' "$work_state" 2>/dev/null; then planned=1; fi
  if [ $code != 0 ] && [ $dry_run = 1 ] && [ $planned = 1 ] && { [ $code = 2 ] || [ "$step" = verify-sync ]; }; then
    # Later steps need the ids that the planned (unsent) writes would have produced.
    echo "==> dry run: $step depends on writes planned above; stopping the dry run here" >&2
    break
  fi
  if [ $code != 0 ]; then
    echo >&2
    # Name the state file only where there is one: a dry run never writes it, and a step that
    # fails before the first write of a new setup leaves none.
    if [ $dry_run = 1 ]; then
      where="this dry run wrote nothing"
      [ -f "$state" ] && where="$where; $state is unchanged"
    elif [ -f "$state" ]; then
      where="the state so far is in $state"
    else
      where="no state file was written yet"
    fi
    echo "setup-marketo-s2s: $step failed (exit $code); $where." >&2
    # %q quotes each word, so the printed command can be pasted back as it is.
    printf 'setup-marketo-s2s: to resume once fixed:' >&2
    printf ' %q' "$0" "${resume_args[@]}" --from "$step" >&2
    printf '\n' >&2
    exit $code
  fi
done

if [ $dry_run = 1 ]; then
  echo "==> dry run done: nothing was written; the plan of each step is in its output above" >&2
else
  echo "==> done: state saved in $state" >&2
fi
