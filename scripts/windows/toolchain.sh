# Sourced by scripts/windows-check.sh and scripts/dist.sh: the Windows toolchain of this Linux
# machine, all from Debian's packages: rustc-web (rustc 1.96) with its standard
# library source, so `-Zbuild-std` builds std for x86_64-pc-windows-gnu without a rustup
# target; the MinGW-w64 linker; Wine 8 to run the result.

WIN_TARGET=x86_64-pc-windows-gnu
WIN_PACKAGES=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 wine64)
WINE=/usr/lib/wine/wine64

win_fail() { printf '%s: FAILED: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# Installs what is missing of WIN_PACKAGES (and any package names given), nothing when all are
# there; needs root and Debian's package registry only then.
win_install() {
  local missing=() p
  for p in "${WIN_PACKAGES[@]}" "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== ${0##*/}: installing ${missing[*]}"
    [ "$(id -u)" = 0 ] || win_fail "missing Debian packages ${missing[*]}; as root: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || win_fail "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || win_fail "apt-get install ${missing[*]}"
  fi
  [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ] \
    || win_fail "Debian's rustc-web with rust-web-src is not where expected"
  [ -x "$WINE" ] || win_fail "$WINE is missing (Debian's wine64)"
}

# cargo for Windows: Debian's compiler and cargo first, nightly-only -Zbuild-std allowed
# (RUSTC_BOOTSTRAP), its own target dir (another compiler, std from source). WIN_BUILD_STD
# names the std crates (default: std; a release with panic = "abort" adds panic_abort).
# Usage: wcargo TARGET_DIR SUBCOMMAND ARGS... (the flags go right after the subcommand, so a
# `-- ARGS` for clippy or the tests stays last).
wcargo() {
  local target_dir="$1" sub="$2"; shift 2
  PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TERM_COLOR=never \
    /usr/bin/cargo "$sub" "-Zbuild-std=${WIN_BUILD_STD:-std}" --target "$WIN_TARGET" \
    --target-dir "$target_dir" "$@"
}
