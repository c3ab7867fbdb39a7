#!/usr/bin/env bash
# dist: release archives an admin can download and run without Rust (Linux and Windows).
#
#   target/dist/marketo-s2s-<version>-x86_64-unknown-linux-gnu.tar.gz   (+ .sha256)
#   target/dist/marketo-s2s-<version>-x86_64-pc-windows-gnu.zip         (+ .sha256)
#
# Each holds the eleven tools (release profile: fat LTO, stripped), README.md, LICENSE-MIT,
# LICENSE-APACHE, the two runbooks (scripts/setup-marketo-s2s.sh, scripts/Setup-MarketoS2S.ps1)
# and, under share/, the man pages and the bash, zsh, fish and PowerShell completions. Not in
# them: tenant-sim (the emulator accepts any credentials and exists for tests and the demo; it
# does not belong on an admin's PATH next to tools for a production org) and bench.
#
# The Linux build uses the normal toolchain; the Windows one Debian's rustc with -Zbuild-std
# (scripts/windows/toolchain.sh installs it when missing). Verify an archive with
#   cd target/dist && sha256sum -c marketo-s2s-<version>-<target>.<ext>.sha256
# Archives are reproducible for one commit: file times are the commit's, owners root, names sorted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
. scripts/windows/toolchain.sh

TOOLS=(preflight register-app grant-consent make-secret set-hrd-policy assign-role
       configure-marketo publish-customizations add-sync-filter verify-sync teardown)
LINUX_TARGET=x86_64-unknown-linux-gnu
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
[ -n "$version" ] || win_fail "no version in Cargo.toml"
out="$root/target/dist"
stage="$out/stage"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
say() { echo "== dist: $*"; }

win_install

say "building the Linux release (cargo build --release)"
cargo build --quiet --release $(printf -- '--bin %s ' "${TOOLS[@]}") || win_fail "the Linux release build"

say "building the Windows release ($WIN_TARGET, -Zbuild-std)"
WIN_BUILD_STD=std,panic_abort wcargo "$root/target/windows-release" build --quiet --release \
  $(printf -- '--bin %s ' "${TOOLS[@]}") || win_fail "the Windows release build"

say "man pages and completions (cargo run --example gen-docs)"
rm -rf "$stage" && mkdir -p "$stage"
cargo run --quiet --example gen-docs -- "$stage/docs" >/dev/null || win_fail "gen-docs"
find "$stage/docs" -name '*tenant-sim*' -delete             # not shipped, so not documented

# stage_common DIR: what both archives hold besides the binaries.
stage_common() {
  local d="$1"
  mkdir -p "$d/share"
  cp README.md LICENSE-MIT LICENSE-APACHE "$d/"
  cp scripts/setup-marketo-s2s.sh scripts/Setup-MarketoS2S.ps1 "$d/"
  cp -r "$stage/docs/man" "$stage/docs/completions" "$d/share/"
}

# checksum FILE: FILE.sha256 in sha256sum's format, naming the file relative to its folder.
checksum() {
  (cd "$(dirname "$1")" && sha256sum "$(basename "$1")" > "$(basename "$1").sha256")
}

linux="marketo-s2s-$version-$LINUX_TARGET"
say "$linux.tar.gz"
mkdir -p "$stage/$linux/bin"
for t in "${TOOLS[@]}"; do install -m 0755 "target/release/$t" "$stage/$linux/bin/$t"; done
stage_common "$stage/$linux"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
  -C "$stage" -cf - "$linux" | gzip -n -9 > "$out/$linux.tar.gz"
checksum "$out/$linux.tar.gz"

windows="marketo-s2s-$version-$WIN_TARGET"
say "$windows.zip"
mkdir -p "$stage/$windows/bin"
for t in "${TOOLS[@]}"; do cp "target/windows-release/$WIN_TARGET/release/$t.exe" "$stage/$windows/bin/"; done
stage_common "$stage/$windows"
# Python's zipfile: no zip package needed, and fixed times and order make it reproducible.
python3 - "$stage" "$windows" "$out/$windows.zip" "$epoch" <<'PY'
import os, sys, time, zipfile
stage, name, dest, epoch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
stamp = time.gmtime(max(epoch, 315532800))[:6]          # zip cannot hold times before 1980
paths = []
for d, _, files in os.walk(os.path.join(stage, name)):
    paths += [os.path.join(d, f) for f in files]
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for p in sorted(paths):
        info = zipfile.ZipInfo(os.path.relpath(p, stage).replace(os.sep, "/"), stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (0o755 if p.endswith((".exe", ".sh")) else 0o644) << 16
        with open(p, "rb") as f:
            z.writestr(info, f.read())
PY
checksum "$out/$windows.zip"

rm -rf "$stage"
(cd "$out" && sha256sum -c "$linux.tar.gz.sha256" "$windows.zip.sha256") || win_fail "a checksum does not verify"
ls -l "$out"
