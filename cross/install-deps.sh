#!/usr/bin/env bash
# Installs what builds, tests, cross builds and the demo need on a fresh Debian machine. Idempotent; safe to re-run.
#   install-deps.sh host   — Debian packages for tests and the demo (curl, python3 for the demo origin, rclone,
#                            python3-venv for the MCP SDK tests), clippy, rustfmt
#   install-deps.sh musl   — rustup std for x86_64/aarch64-unknown-linux-musl (aarch64 links with rust-lld, no C tools)
#   install-deps.sh zig    — nightly + rust-src (build-std), ziglang from PyPI, cargo-zigbuild: 32-bit ARM and mipsel
#   install-deps.sh qemu   — qemu-user-static (qemu-aarch64-static, qemu-arm-static); binfmt is not needed
#   install-deps.sh bloat  — cargo-bloat, for `make size` reports when a budget is missed
#   install-deps.sh cross  — musl + zig + qemu (everything `make boards` and `make test-cross` use)
#   install-deps.sh bench  — the peers `make bench` measures against: nginx (origin), wrk, hyperfine, OpenSSH,
#                            rclone, bore and rathole (cargo install, ≈3 min the first time)
# Several modes may be given at once: `install-deps.sh host musl qemu`.
set -uo pipefail

apt_want=()
need_deb() { dpkg -s "$1" >/dev/null 2>&1 || apt_want+=("$1"); }

# rustup_target TOOLCHAIN TARGET: add a std for TARGET when it is not installed yet.
rustup_target() {
  rustup target list --toolchain "$1" --installed 2>/dev/null | grep -qx "$2" || rustup target add --toolchain "$1" "$2"
}

# have_bin NAME: NAME is on PATH or in cargo's bin dir.
have_bin() { command -v "$1" >/dev/null 2>&1 || [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/$1" ]; }

mode_host() {
  need_deb curl; need_deb ca-certificates; need_deb python3; need_deb procps
  need_deb rclone # WebDAV interoperability test (tests/webdav_rclone.rs)
  need_deb python3-venv # the MCP Python SDK venv of tests/mcp_sdk.rs (tests/mcp_sdk/venv.sh)
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
}

mode_musl() {
  need_deb musl-tools # musl-gcc: the C compiler for ring (engine) on x86_64 musl
  need_deb file
  rustup_target stable x86_64-unknown-linux-musl
  rustup_target stable aarch64-unknown-linux-musl
}

mode_zig() {
  command -v pip3 >/dev/null 2>&1 || need_deb python3-pip
  install_debs
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain nightly
  if ! python3 -m ziglang version >/dev/null 2>&1; then
    # Debian's own python3 is "externally managed"; a pyenv/venv python is not. Accept either.
    pip3 install --quiet ziglang 2>/dev/null || pip3 install --quiet --break-system-packages ziglang
  fi
  have_bin cargo-zigbuild || cargo install --locked cargo-zigbuild
}

mode_qemu() { need_deb qemu-user-static; }

mode_bench() {
  need_deb nginx-light; need_deb wrk; need_deb hyperfine; need_deb openssh-server; need_deb openssh-client
  need_deb rclone; need_deb openssl; need_deb curl; need_deb python3; need_deb procps
  need_deb pkg-config; need_deb libssl-dev # rathole's native-tls transport
  install_debs
  have_bin bore || cargo install --locked bore-cli
  # Not --locked: rathole's locked `time` no longer compiles on current Rust.
  have_bin rathole || cargo install rathole
}

mode_bloat() { have_bin cargo-bloat || cargo install --locked cargo-bloat; }

install_debs() {
  [ ${#apt_want[@]} -gt 0 ] || return 0
  echo "installing: ${apt_want[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  # One foreign-architecture index may be mid-sync; the amd64 indexes still work, so do not abort on update.
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_want[@]}" || exit 1
  apt_want=()
}

[ $# -gt 0 ] || set -- host
for mode in "$@"; do
  case "$mode" in
    host) mode_host ;;
    musl) mode_musl ;;
    zig) mode_zig ;;
    qemu) mode_qemu ;;
    bloat) mode_bloat ;;
    bench) mode_bench ;;
    cross) mode_musl; mode_zig; mode_qemu ;;
    *) echo "usage: $0 [host|musl|zig|qemu|bloat|bench|cross]..." >&2; exit 2 ;;
  esac
done
install_debs
exit 0
