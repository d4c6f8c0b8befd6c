#!/usr/bin/env bash
# Builds one static, stripped musl `rstream` for a target and copies it to --out (or prints its path).
#
#   cross/build.sh [--features LIST] [--rustflags FLAGS] [--mode stable|size|size-abort] [--out FILE] TARGET
#
# Modes (recipes verified in /work/shared/reference/cross-build.md; sizes in README "Boards and image sizes"):
#   stable      x86_64/aarch64-unknown-linux-musl only: stable toolchain + rustup's musl std. aarch64 links with
#               rust-lld (.cargo/config.toml) and drops the unwind tables prebuilt std brings: .eh_frame_hdr
#               (--no-eh-frame-hdr), .eh_frame and .gcc_except_table (cross/no-unwind-tables.ld), ≈250 KiB a
#               stripped panic=abort image cannot use; x86_64 compiles C (ring, engine only) with Debian's musl-gcc.
#   size        any target (the default for 32-bit ARM and mipsel, which have no rustup std here): nightly
#               `-Z build-std=std,panic_abort` with `optimize_for_size` and without the backtrace symbolizer,
#               no unwind tables, linked by cargo-zigbuild (zig brings musl's crt, libc and unwinder for the
#               exact CPU, which matters for ARMv6: Debian's armhf musl is ARMv7 code).
#   size-abort  size + `-C panic=immediate-abort`: no panic messages at all (smallest, hardest to debug).
# --size and --immediate-abort are short for --mode size / --mode size-abort.
# --features: a comma list, or `default` for the default feature set (the laptop/relay build). Default: device.
# Every variant (mode + extra rustflags) has its own target dir under target/cross/, so switching variants never
# invalidates another's cache. Install the tools first: cross/install-deps.sh cross.
set -euo pipefail
cd "$(dirname "$0")/.."

features=device rustflags="" mode="" out="" target=""
while [ $# -gt 0 ]; do
  case "$1" in
    --features) features="$2"; shift 2 ;;
    --rustflags) rustflags="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --size) mode=size; shift ;;
    --immediate-abort) mode=size-abort; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) target="$1"; shift ;;
  esac
done
[ -n "$target" ] || { echo "error: missing TARGET (e.g. aarch64-unknown-linux-musl)" >&2; exit 2; }

case "$target" in
  x86_64-unknown-linux-musl|aarch64-unknown-linux-musl) : "${mode:=stable}" ;;
  armv7-unknown-linux-musleabihf|arm-unknown-linux-musleabihf|mipsel-unknown-linux-musl)
    : "${mode:=size}"
    [ "$mode" != stable ] || { echo "error: $target has no rustup std: use --mode size" >&2; exit 2; }
    ;;
  *) echo "error: unsupported target $target" >&2; exit 2 ;;
esac

feature_args=(--no-default-features --features "$features")
[ "$features" = default ] && feature_args=()

flags="$rustflags"
cargo_cmd=(cargo build)
std_args=()
case "$mode" in
  stable)
    # aarch64: drop prebuilt std's unwind tables, their index and LSDAs (see cross/no-unwind-tables.ld).
    [ "$target" = aarch64-unknown-linux-musl ] &&
      flags="$flags -C link-arg=--no-eh-frame-hdr -C link-arg=-T$PWD/cross/no-unwind-tables.ld"
    ;;
  size|size-abort)
    # zig supplies crt1.o, libc and the unwinder; rustc must not look for its own self-contained copies.
    flags="-C link-self-contained=no -C force-unwind-tables=no $flags"
    cargo_cmd=(cargo +nightly zigbuild)
    std_args=(-Z build-std=std,panic_abort -Z build-std-features=optimize_for_size)
    [ "$mode" = size-abort ] && flags="$flags -Z unstable-options -C panic=immediate-abort"
    ;;
  *) echo "error: --mode must be stable, size or size-abort, not '$mode'" >&2; exit 2 ;;
esac

# One target dir per variant; plain x86_64 builds share the ordinary target/ with `cargo build --target …`.
slug=$(printf '%s' "$rustflags" | tr -cs 'A-Za-z0-9' '-' | sed 's/^-//; s/-$//')
if [ "$mode" = stable ] && [ "$target" = x86_64-unknown-linux-musl ] && [ -z "$slug" ]; then
  target_dir="${CARGO_TARGET_DIR:-target}"
else
  target_dir="target/cross/$mode${slug:+-$slug}"
fi

# C code in dependencies (ring, for the engine) needs a musl C compiler: Debian's musl-gcc on x86_64; zig elsewhere.
[ "$target" = x86_64-unknown-linux-musl ] && [ "$mode" = stable ] && export CC_x86_64_unknown_linux_musl=musl-gcc

echo "building $target [$features] mode=$mode rustflags='${flags# }' dir=$target_dir" >&2
if [ -n "${flags// /}" ]; then export RUSTFLAGS="${flags# }"; else unset RUSTFLAGS; fi
CARGO_TARGET_DIR="$target_dir" "${cargo_cmd[@]}" "${std_args[@]}" --release --locked --target "$target" \
  "${feature_args[@]}" >&2

bin="$target_dir/$target/release/rstream"
if [ -n "$out" ]; then
  mkdir -p "$(dirname "$out")"
  cp "$bin" "$out.tmp" && mv "$out.tmp" "$out"
  echo "$out"
else
  echo "$bin"
fi
