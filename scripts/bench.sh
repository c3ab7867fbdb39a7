#!/usr/bin/env bash
# The benchmark: builds the tools in release mode, then runs the `bench`
# binary (crates/bench), which starts tenant-sim on loopback and measures start-up against
# /bin/true, the chain of eight tools (fresh, re-run, and at several replication lags against
# the target "waits x lag + 150 ms per wait", with the wait count), requests per tool against
# the documented minimum, `verify-sync --fleet` over 20 state files, peak RSS and binary sizes.
# Writes docs/benchmarks.md and docs/benchmarks.json. Targets are reported there, never
# asserted: the script exits 0 when the measurement itself worked.
#
# Usage:
#   scripts/bench.sh [--profiles] [--out-dir DIR] [-- BENCH-OPTIONS...]
#
#   --profiles   also build register-app and verify-sync under several release profiles (one
#                full build each, in target/bench-profiles; slow) and record the comparison;
#                without it the last recorded comparison is kept
#   --out-dir    where to write the two files (default: docs)
#   after --     options of the measuring binary (see target/release/bench --help), e.g.
#                -- --lag-ms 0,500,1000,2000 --lag-runs 7, or a before/after comparison with
#                an earlier build copied aside: -- --baseline before=DIR --baseline-note TEXT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profiles=0
out_dir=docs
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profiles) profiles=1; shift ;;
    --out-dir) out_dir="${2:?--out-dir needs a value}"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: error: unknown argument $1" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m%s\033[0m\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

say "Building the tools, tenant-sim and the bench (cargo build --release)"
t0="$(now)"
cargo build --release --bins -p marketo-s2s -p bench
build_s="$(since "$t0")"

# The root Cargo.toml's [profile.release], as one line for the report.
profile="$(awk '/^\[profile\.release\]/ { on = 1; next } /^\[/ { on = 0 } on && !/^#/ && NF { sub(/[ \t]*#.*/, ""); printf "%s%s", sep, $0; sep = "; " }' Cargo.toml)"

variants=()
if [ $profiles = 1 ]; then
  vdir=target/bench-profiles
  # The profile in Cargo.toml, from the build above.
  mkdir -p "$vdir/Cargo.toml"
  cp target/release/register-app target/release/verify-sync "$vdir/Cargo.toml/"
  echo "$profile" > "$vdir/Cargo.toml/profile.txt"
  variants+=(--variant "Cargo.toml=$vdir/Cargo.toml")
  # The alternatives, each fully specified so the comparison does not depend on Cargo.toml.
  # Only register-app and verify-sync are built (one LTO link each), in one shared target
  # directory (proc macros and build scripts are built once for all).
  # name|opt-level|lto|codegen-units|panic|strip
  sweep=(
    'fat-lto-Os|"s"|"fat"|1|"abort"|true'
    'fat-lto-Oz|"z"|"fat"|1|"abort"|true'
    'thin-lto|3|"thin"|16|"abort"|true'
    'fat-lto-unwind|3|"fat"|1|"unwind"|true'
    'cargo-defaults|3|false|16|"unwind"|"debuginfo"'
  )
  for spec in "${sweep[@]}"; do
    IFS='|' read -r name opt lto cgu panic strip <<< "$spec"
    desc="opt-level=$opt; lto=$lto; codegen-units=$cgu; panic=$panic; strip=$strip"
    say "Release-profile sweep: $name ($desc)"
    t1="$(now)"
    cargo build --release --target-dir "$vdir" --bin register-app --bin verify-sync \
      --config "profile.release.opt-level=$opt" --config "profile.release.lto=$lto" \
      --config "profile.release.codegen-units=$cgu" --config "profile.release.panic=$panic" \
      --config "profile.release.strip=$strip"
    mkdir -p "$vdir/$name"
    cp "$vdir/release/register-app" "$vdir/release/verify-sync" "$vdir/$name/"
    echo "$desc (build $(since "$t1") s)" > "$vdir/$name/profile.txt"
    variants+=(--variant "$name=$vdir/$name")
  done
fi

say "Measuring (tenant-sim on 127.0.0.1)"
target/release/bench --bin-dir target/release --out-dir "$out_dir" \
  --profile "$profile" \
  --build-note "cargo build --release of the tools, tenant-sim and bench took ${build_s} s (incremental: only what changed is rebuilt)" \
  "${variants[@]}" "${extra[@]}"
