#!/usr/bin/env bash
# The Marketo "Step 2 of 3" runbook against a real tenant: runs the marketo-s2s tools in order on
# one state file, stops at the first failure with that step's exit code and the command that
# resumes, and ends with verify-sync's checklist and the values to enter in Marketo step 3. It
# starts with preflight (read-only: may the admin do every step, is the org ready?) unless
# --skip-preflight is given.
#
# Usage:
#   scripts/setup-marketo-s2s.sh --tenant contoso.onmicrosoft.com \
#       --dynamics-url https://contoso.crm.dynamics.com [--name "Marketo Integration"] \
#       [--state FILE] [--from STEP] [--dry-run] [--secret-file FILE] [--sync-filter lead,contact] \
#       [--skip-preflight]
#
# Passed to every step: --cloud NAME, --auth SOURCE, --timeout DURATION, --authority-host URL,
#   --graph-url URL, --login-client-id GUID, --ca-file FILE, --retarget, --color WHEN, -v/-vv, -q.
# Passed to their step (every flag a step's hints name): --name, --unique-name and --client-id
#   (register-app); --expires-in (preflight and make-secret); --min-validity, --rotate
#   (make-secret); --hrd-mode MODE (set-hrd-policy --mode), --replace (set-hrd-policy);
#   --role NAME (assign-role and verify-sync; repeatable), --business-unit, --purge-deleted
#   (assign-role); --record-name, --config-entity, --config-entity-set, --user-lookup,
#   --user-nav-property, --replace-sync-user (configure-marketo); --async, --publish-timeout
#   (publish-customizations); --warn-days N (verify-sync). A mistyped option is refused with the
#   nearest one suggested, and a bad value for any step (--warn-days abc) before the first step
#   runs (exit 2, nothing run).
#
# The first line names the target: tenant, org, state file and sign-in, and where each came
# from. A state file with no target yet (a new setup) and a tenant or org that comes only from
# the environment (AZURE_TENANT_ID, MKTO_S2S_DYNAMICS_URL — perhaps left over from the previous
# customer) is refused (exit 2) unless --tenant and --dynamics-url are given, or it is confirmed
# on a terminal.
#
# --dry-run: every read, no write; each step prints its plan. The state file is never written:
# the first step reads it, each step's would-be document goes to a hidden file beside it
# (removed at the end) and feeds the next, so paths recorded beside the state file resolve.
# It stops early, and still exits 0, at the first step that needs a value a write planned
# above would create (a new app's ids), or at verify-sync's checks of planned writes; any other
# failure ends it as in a real run.
#
# Needs the tools in bin/ beside this script (a release archive), on PATH, or in
# ../target/release or ../target/debug (a build; override with MKTO_S2S_BIN=DIR). Sign-in: see README (environment service principal, az,
# or device code on a terminal — only the first tool prompts; the rest reuse the token cache).
# A failed or interrupted step (Ctrl-C, SIGTERM) prints the command that resumes from it with
# the same flags (a dry run's resumes as a dry run).
# Exit codes: those of the step that failed; 2 for a bad argument of the runbook itself (also a
# --dry-run whose --state folder does not exist or cannot be written) or a target it was not
# sure of; 130/143 when interrupted.
set -euo pipefail

STEPS=(preflight register-app grant-consent make-secret set-hrd-policy assign-role configure-marketo publish-customizations add-sync-filter verify-sync)

# The options that go to the tools, one per line: the runbook's option, whether it takes a
# value (1) or not (0), the steps it goes to (* = every step) and the tool's flag. The
# PowerShell runbook has the same table (tests/it/runbook.rs compares them and checks every
# flag against its tools' --help).
PASS_TABLE='
--cloud             1 *                        --cloud
--auth              1 *                        --auth
--timeout           1 *                        --timeout
--authority-host    1 *                        --authority-host
--graph-url         1 *                        --graph-url
--login-client-id   1 *                        --login-client-id
--ca-file           1 *                        --ca-file
--retarget          0 *                        --retarget
--color             1 *                        --color
-v                  0 *                        -v
-vv                 0 *                        -vv
--verbose           0 *                        -v
-q                  0 *                        -q
--quiet             0 *                        -q
--name              1 register-app             --name
--unique-name       1 register-app             --unique-name
--client-id         1 register-app             --client-id
--expires-in        1 preflight,make-secret    --expires-in
--min-validity      1 make-secret              --min-validity
--rotate            0 make-secret              --rotate
--secret-file       1 make-secret              --secret-file
--hrd-mode          1 set-hrd-policy           --mode
--replace           0 set-hrd-policy           --replace
--role              1 assign-role,verify-sync  --role
--business-unit     1 assign-role              --business-unit
--purge-deleted     0 assign-role              --purge-deleted
--record-name       1 configure-marketo        --record-name
--config-entity     1 configure-marketo        --config-entity
--config-entity-set 1 configure-marketo        --config-entity-set
--user-lookup       1 configure-marketo        --user-lookup
--user-nav-property 1 configure-marketo        --user-nav-property
--replace-sync-user 0 configure-marketo        --replace-sync-user
--async             0 publish-customizations   --async
--publish-timeout   1 publish-customizations   --publish-timeout
--warn-days         1 verify-sync              --warn-days
'
# The runbook's own options.
OWN_OPTIONS=(--tenant --dynamics-url --state --from --dry-run --sync-filter --skip-preflight --help)
DEFAULT_STATE="./marketo-s2s.state.json"

# The comment block above, without the shell.
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
# This script's path as a hint prints it: quoted, so a path with a space pastes as it is.
self="$(printf '%q' "$0")"
fail() {
  echo "setup-marketo-s2s: error: $1" >&2
  echo "setup-marketo-s2s: hint: ${2:-see \`$self --help\`}" >&2
  exit 2
}

# Edit distance, for "did you mean" (clap's suggestion, as the tools make it).
distance() {
  local a=$1 b=$2 i j cost d ins sub
  local -a prev cur
  for ((j = 0; j <= ${#b}; j++)); do prev[j]=$j; done
  for ((i = 1; i <= ${#a}; i++)); do
    cur=("$i")
    for ((j = 1; j <= ${#b}; j++)); do
      if [ "${a:i-1:1}" = "${b:j-1:1}" ]; then cost=0; else cost=1; fi
      d=$((prev[j] + 1)); ins=$((cur[j - 1] + 1)); sub=$((prev[j - 1] + cost))
      ((ins < d)) && d=$ins
      ((sub < d)) && d=$sub
      cur[j]=$d
    done
    prev=("${cur[@]}")
  done
  echo "${prev[${#b}]}"
}
# The candidate nearest to $1 (one of "${@:2}"), or nothing when none is close.
nearest() {
  local word=$1 best="" best_d=99 c d
  shift
  for c in "$@"; do
    d=$(distance "$word" "$c")
    if ((d < best_d)); then best_d=$d; best=$c; fi
  done
  if ((best_d <= 2 || best_d * 3 <= ${#word})); then echo "$best"; fi
}

known_options=("${OWN_OPTIONS[@]}")
while read -r o _; do [ -n "$o" ] && known_options+=("$o"); done <<< "$PASS_TABLE"

tenant="" dynamics_url="" state="$DEFAULT_STATE" from="" dry_run=0 sync_filter="" skip_preflight=0
# Each passed option as (step list, tool flag, value or "") triplets, and as typed for the resume.
passed=() typed=()
while [ $# -gt 0 ]; do
  opt="$1" value="" has_value=0
  shift
  # --option=value is --option value.
  if [[ "$opt" == --*=* ]]; then value="${opt#*=}"; opt="${opt%%=*}"; has_value=1; fi
  # A flag that takes a value: it must be there (`--name=` has none) and must not be the next
  # flag.
  need_value() {
    if [ $has_value = 1 ]; then [ -n "$value" ] || fail "$opt needs a value"; return; fi
    if [ $# -lt 1 ] || [ -z "$1" ] || [ "${1#--}" != "$1" ]; then fail "$opt needs a value"; fi
    value="$1"; has_value=2
  }
  case "$opt" in
    --tenant) need_value "$@"; tenant="$value" ;;
    --dynamics-url) need_value "$@"; dynamics_url="$value" ;;
    --state) need_value "$@"; state="$value" ;;
    --from) need_value "$@"; from="$value" ;;
    --dry-run) [ $has_value = 1 ] && fail "$opt takes no value"; dry_run=1 ;;
    --sync-filter) need_value "$@"; sync_filter="$value" ;;
    --skip-preflight) [ $has_value = 1 ] && fail "$opt takes no value"; skip_preflight=1 ;;
    -h|--help) usage; exit 0 ;;
    *)
      row="$(awk -v o="$opt" '$1 == o { print $2, $3, $4 }' <<< "$PASS_TABLE")"
      if [ -z "$row" ]; then
        near="$(nearest "$opt" "${known_options[@]}")"
        if [ -n "$near" ]; then fail "unknown argument $opt" "did you mean \`$near\`? (see \`$self --help\`)"; fi
        fail "unknown argument $opt"
      fi
      read -r takes steps flag <<< "$row"
      if [ "$takes" = 1 ]; then
        need_value "$@"
        passed+=("$steps" "$flag" "$value"); typed+=("$opt" "$value")
      else
        [ $has_value = 1 ] && fail "$opt takes no value"
        passed+=("$steps" "$flag" ""); typed+=("$opt")
      fi
      ;;
  esac
  [ $has_value = 2 ] && shift
done

# --sync-filter "lead, contact": each entity trimmed (as people type lists) and an empty one (a
# trailing comma) dropped, over the whole value (`read` alone stops at its first line).
sync_entities=()
if [ -n "$sync_filter" ]; then
  IFS=',' read -r -d '' -a items <<< "$sync_filter" || true
  for e in "${items[@]}"; do
    e="${e#"${e%%[![:space:]]*}"}"
    e="${e%"${e##*[![:space:]]}"}"
    [ -n "$e" ] && sync_entities+=("$e")
  done
  [ ${#sync_entities[@]} -gt 0 ] || fail "--sync-filter names no entity" "name them with commas between: --sync-filter lead,contact"
fi

if [ -n "$from" ]; then
  found=0
  for s in "${STEPS[@]}"; do [ "$s" = "$from" ] && found=1; done
  if [ $found = 0 ]; then
    near="$(nearest "$from" "${STEPS[@]}")"
    fail "--from $from is not a step (one of: ${STEPS[*]})" \
      "${near:+did you mean \`--from $near\`? }(see \`$self --help\`)"
  fi
  # A --from that would skip every step would end "done" having done nothing.
  if [ "$from" = add-sync-filter ] && [ -z "$sync_filter" ]; then
    fail "--from add-sync-filter needs --sync-filter: without it that step does not run" \
      "add --sync-filter lead,contact (the entities to filter), or resume from verify-sync"
  fi
  if [ "$from" = preflight ] && [ $skip_preflight = 1 ]; then
    fail "--from preflight and --skip-preflight contradict each other" \
      "leave one out: --from register-app starts after preflight"
  fi
fi

# Where the tools are: bin/ beside this script first (a release archive, scripts/dist.sh: the
# tools of the same release, even with other versions on PATH), then PATH, then a build of
# this checkout.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="${MKTO_S2S_BIN:-}"
if [ -z "$bin_dir" ]; then
  if [ -x "$here/bin/register-app" ]; then bin_dir="$here/bin"
  elif command -v register-app >/dev/null 2>&1; then bin_dir="$(dirname "$(command -v register-app)")"
  elif [ -x "$here/../target/release/register-app" ]; then bin_dir="$here/../target/release"
  elif [ -x "$here/../target/debug/register-app" ]; then bin_dir="$here/../target/debug"
  else
    fail "the marketo-s2s tools are not on PATH, nor in $here/bin (a release archive's), nor in $here/../target/release or target/debug (a build)" \
      "put the release archive's bin folder on PATH (or set MKTO_S2S_BIN=DIR); in a source checkout, run cargo build --release"
  fi
fi

# The steps this run will run, in order.
run_steps=()
started=0; [ -z "$from" ] && started=1
for step in "${STEPS[@]}"; do
  [ "$step" = add-sync-filter ] && [ -z "$sync_filter" ] && continue
  [ "$step" = preflight ] && [ $skip_preflight = 1 ] && continue
  [ "$step" = "$from" ] && started=1
  [ $started = 1 ] && run_steps+=("$step")
done

# The words a step runs with (in `args`), reading `$2`.
step_args() {
  local step=$1 k e
  args=(--state "$2")
  [ -n "$tenant" ] && args+=(--tenant "$tenant")
  [ -n "$dynamics_url" ] && args+=(--dynamics-url "$dynamics_url")
  for ((k = 0; k < ${#passed[@]}; k += 3)); do
    case ",${passed[k]}," in
      ,\*,|*,"$step",*) args+=("${passed[k + 1]}"); [ -n "${passed[k + 2]}" ] && args+=("${passed[k + 2]}") ;;
    esac
  done
  case "$step" in
    publish-customizations) args+=(--if-changed) ;;
    add-sync-filter) for e in "${sync_entities[@]}"; do args+=(--entity "$e"); done ;;
  esac
}

# Every step's flags are checked before the first step runs: a tool checks each value as it
# reads its command line and stops at --help, so `STEP FLAGS --help` refuses a bad value
# (exit 2, naming it) without reading the document or signing in. Otherwise a bad value for a
# late step (--warn-days abc) shows only after the steps before it have written — and never in
# a dry run that stops before that step.
for step in "${run_steps[@]}"; do
  step_args "$step" "$state"
  if ! "$bin_dir/$step" "${args[@]}" --help </dev/null >/dev/null; then
    [ -x "$bin_dir/$step" ] || fail "$bin_dir/$step is missing: the tools there are not all of the marketo-s2s tools" \
      "set MKTO_S2S_BIN to the folder that holds all of them"
    fail "$step refuses the flags given for it (see above); nothing was run" "correct that value and run the same command again"
  fi
done

# ---- the target, named before anything runs ----------------------------------------------------

# A string value at a key path (`tenant id`) of a JSON file, or nothing: a small reader for the
# documents the tools write (pretty or compact), so the runbook needs no JSON tool.
json_get() {
  [ -f "$1" ] || return 0
  LC_ALL=C awk -v want="$2" '
    { text = text $0 "\n" }
    END {
      n = length(text); depth = 0; key = ""; expect_key = 0; path[0] = ""
      for (i = 1; i <= n; i++) {
        c = substr(text, i, 1)
        if (c == "\"") {
          s = ""; i++
          while (i <= n) { c = substr(text, i, 1); if (c == "\\") { s = s substr(text, i, 2); i += 2; continue }
                           if (c == "\"") break; s = s c; i++ }
          j = i + 1; while (substr(text, j, 1) ~ /[ \t\r\n]/) j++
          if (substr(text, j, 1) == ":") { key = s; i = j; continue }
          full = path[depth] (path[depth] == "" ? "" : " ") key
          if (full == want) { print s; exit }
          continue
        }
        if (c == "{") { depth++; path[depth] = (depth == 1 ? "" : path[depth - 1] (path[depth - 1] == "" ? "" : " ") key); key = "" }
        else if (c == "}") { depth--; key = "" }
        else if (c == "[") { key = key "[]" }
        else if (c == ",") { if (key !~ /\[\]$/) key = "" }
        else if (c == "]") { key = "" }
      }
    }' "$1" | tr -d '\000-\037\177'
}

doc_tenant="$(json_get "$state" "tenant id")"
doc_org="$(json_get "$state" "dynamics url")"
# What the document adds for people: the tenant's domain, the org's name, its own sign-in.
doc_domain="$(json_get "$state" "tenant domain")"
doc_org_name="$(json_get "$state" "dynamics org_name")"
doc_signin="$(json_get "$state" "sign_in method")"
doc_signin_client="$(json_get "$state" "sign_in client_id")"
if [ -n "$tenant" ]; then tenant_shown="$tenant (from --tenant)"
elif [ -n "$doc_tenant" ]; then tenant_shown="${doc_domain:+$doc_domain }$doc_tenant (from the state file)"
elif [ -n "${AZURE_TENANT_ID:-}" ]; then tenant_shown="$AZURE_TENANT_ID (from AZURE_TENANT_ID in the environment)"
else tenant_shown="not given"
fi
if [ -n "$dynamics_url" ]; then org_shown="$dynamics_url (from --dynamics-url)"
elif [ -n "$doc_org" ]; then org_shown="$doc_org${doc_org_name:+ ($doc_org_name)} (from the state file)"
elif [ -n "${MKTO_S2S_DYNAMICS_URL:-}" ]; then org_shown="$MKTO_S2S_DYNAMICS_URL (from MKTO_S2S_DYNAMICS_URL in the environment)"
else org_shown="not given"
fi
auth_given=""
for ((k = 0; k < ${#passed[@]}; k += 3)); do [ "${passed[k + 1]}" = --auth ] && auth_given="${passed[k + 2]}"; done
if [ -n "$auth_given" ]; then signin="--auth $auth_given"
elif [ -n "${MKTO_S2S_AUTH:-}" ]; then signin="--auth $MKTO_S2S_AUTH (from MKTO_S2S_AUTH)"
elif [ -n "$doc_signin" ]; then signin="$doc_signin${doc_signin_client:+ as $doc_signin_client} (the state file's sign_in)"
elif [ -n "${AZURE_CLIENT_ID:-}" ]; then signin="service principal $AZURE_CLIENT_ID (AZURE_CLIENT_ID in the environment)"
elif [ -n "${IDENTITY_ENDPOINT:-}" ]; then signin="managed identity (IDENTITY_ENDPOINT)"
else signin="the token cache, az or a device code, whichever works first"
fi
if [ -f "$state" ]; then state_shown="$state"; else state_shown="$state (new)"; fi
echo "setup-marketo-s2s: target: tenant $tenant_shown; org $org_shown; state file $state_shown; sign-in: $signin" >&2

# Customer A's leftover variables must not start customer B's setup: a state file without a
# target takes it from the command line, or from a person who confirms it.
if [ -z "$doc_tenant" ] && [ -z "$doc_org" ] && { [ -z "$tenant" ] || [ -z "$dynamics_url" ]; } \
  && { [ -n "${AZURE_TENANT_ID:-}" ] || [ -n "${MKTO_S2S_DYNAMICS_URL:-}" ]; }; then
  question="the state file names no tenant or org yet, and the target above comes from the environment"
  if [ -t 0 ] && [ -t 2 ]; then
    printf 'setup-marketo-s2s: %s. Set up exactly this tenant and org? Type yes to continue: ' "$question" >&2
    read -r answer || answer=""
    case "$answer" in y|Y|yes|YES|Yes) ;; *) echo "setup-marketo-s2s: not confirmed: nothing was run" >&2; exit 2 ;; esac
  else
    confirm=("$0")
    [ -z "$tenant" ] && confirm+=(--tenant "${AZURE_TENANT_ID:-<tenant>}")
    [ -z "$dynamics_url" ] && confirm+=(--dynamics-url "${MKTO_S2S_DYNAMICS_URL:-<org url>}")
    fail "$question (perhaps left over from another customer), and there is no terminal to confirm it on" \
      "if it is the right customer, name it on the command line: $(printf '%q ' "${confirm[@]}")..."
  fi
fi

# ---- the steps ----------------------------------------------------------------------------------

# The words of the command that resumes from a step (with the same flags).
resume_args=()
[ -n "$tenant" ] && resume_args+=(--tenant "$tenant")
[ -n "$dynamics_url" ] && resume_args+=(--dynamics-url "$dynamics_url")
[ "$state" != "$DEFAULT_STATE" ] && resume_args+=(--state "$state")
[ -n "$sync_filter" ] && resume_args+=(--sync-filter "$sync_filter")
[ $skip_preflight = 1 ] && resume_args+=(--skip-preflight)
# A dry run resumes as a dry run: the pasted command must not turn it into real writes.
[ $dry_run = 1 ] && resume_args+=(--dry-run)
resume_args+=("${typed[@]}")
say_resume() {
  # %q quotes each word, so the printed command can be pasted back as it is.
  printf 'setup-marketo-s2s: to resume once fixed:' >&2
  printf ' %q' "$0" "${resume_args[@]}" --from "$1" >&2
  printf '\n' >&2
}
# Where the state stands, named only where there is one: a dry run never writes it, and a step
# that fails before the first write of a new setup leaves none.
where_state() {
  if [ $dry_run = 1 ]; then
    printf 'this dry run wrote nothing'
    [ -f "$state" ] && printf '; %s is unchanged' "$state"
  elif [ -f "$state" ]; then printf 'the state so far is in %s' "$state"
  else printf 'no state file was written yet'
  fi
}

# A dry run's would-be documents live beside the state file (never in it), so a secret file
# recorded by name beside it is found; they are removed however the run ends.
plans=()
cleanup() { [ ${#plans[@]} -gt 0 ] && rm -f "${plans[@]}"; return 0; }
current=""
on_signal() {
  local sig=$1 code=$2
  trap - INT TERM
  echo >&2
  echo "setup-marketo-s2s: interrupted (SIG$sig) during ${current:-the run}; $(where_state)." >&2
  [ -n "$current" ] && say_resume "$current"
  cleanup
  exit "$code"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

input="$state"
started=0; [ -z "$from" ] && started=1
total=${#STEPS[@]}; [ -z "$sync_filter" ] && total=$((total - 1))
[ $skip_preflight = 1 ] && total=$((total - 1))
n=0
# The steps of this dry run that planned writes (space-separated, with a space at each end).
planned_by=" "
for step in "${STEPS[@]}"; do
  [ "$step" = add-sync-filter ] && [ -z "$sync_filter" ] && continue
  [ "$step" = preflight ] && [ $skip_preflight = 1 ] && continue
  n=$((n + 1))
  [ "$step" = "$from" ] && started=1
  if [ $started = 0 ]; then
    echo "==> [$n/$total] $step: skipped (--from $from)" >&2
    continue
  fi
  step_args "$step" "$input"
  if [ $dry_run = 1 ]; then
    # mktemp's own message names the path (a folder that does not exist, one not writable).
    if ! next="$(mktemp "$(dirname "$state")/.$(basename "$state").dry-run.XXXXXX" 2>&1)"; then
      current=""
      fail "a dry run keeps each step's would-be document beside the state file, and cannot create one in $(dirname "$state") (${next#mktemp: })" \
        "check the --state path: its folder must exist and be writable"
    fi
    plans+=("$next")
    args+=(--dry-run --plan "$next")
  fi
  current="$step"
  echo "==> [$n/$total] $step" >&2
  set +e
  "$bin_dir/$step" "${args[@]}" </dev/null
  code=$?
  set -e
  if [ $dry_run = 1 ] && [ $code = 0 ] && [ -s "$next" ]; then
    input="$next"
    # `plan` holds this step's writes only: each step replaces it.
    [ -n "$(json_get "$next" "plan[] method")" ] && planned_by+="$step "
  fi
  if [ $code != 0 ] && [ $dry_run = 1 ]; then
    # A failed step of a dry run writes its would-be document too, with what it missed
    # (steps.<step>.error.missing_key) and the step that writes that key. The rest of the
    # setup needs the ids that a write planned above (and not sent) would have created: the
    # dry run ends there, successfully. Any other failure is the step's own, as in a real run.
    needs="$(json_get "$next" "steps $step error missing_key")"
    writer="$(json_get "$next" "steps $step error written_by")"
    if [ -n "$needs" ] && [ -n "$writer" ] && [[ "$planned_by" == *" $writer "* ]]; then
      echo "==> dry run: $step needs $needs, which $writer would write (planned above, not sent); stopping the dry run here" >&2
      current=""
      break
    fi
    # verify-sync's checks (exit 6) fail on what the planned writes would have changed.
    if [ "$step" = verify-sync ] && [ $code = 6 ] && [ "$planned_by" != " " ]; then
      echo "==> dry run: verify-sync checks the writes planned above (not sent); stopping the dry run here" >&2
      current=""
      break
    fi
  fi
  if [ $code != 0 ]; then
    current=""
    echo >&2
    echo "setup-marketo-s2s: $step failed (exit $code); $(where_state)." >&2
    say_resume "$step"
    exit $code
  fi
done
current=""

if [ $dry_run = 1 ]; then
  echo "==> dry run done: nothing was written; the plan of each step is in its output above" >&2
else
  echo "==> done: state saved in $state" >&2
fi
