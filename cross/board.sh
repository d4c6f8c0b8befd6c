#!/usr/bin/env bash
# Builds the image for one board profile (boards/<name>/board.env) or all of them, into dist/:
#   dist/rstream-<board>          the static, stripped binary
#   dist/rstream-<board>.tar.gz   an overlay for the board's root filesystem: the binary + service files
#   dist/rstream-<board>.sha256   sha256sum of both (check with: cd dist && sha256sum -c rstream-<board>.sha256)
# Each binary is run once under qemu with the board's CPU (`QEMU=` in board.env) to prove it executes there.
#
#   cross/board.sh rpi-4          one board
#   cross/board.sh --all          every board under boards/
#   SIZE=1 cross/board.sh rpi-4   x86_64/aarch64 boards: nightly build-std size mode instead of stable (32-bit ARM
#                                 boards always build that way; see cross/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 BOARD|--all   (boards: $(board_names | tr '\n' ' '))" >&2; exit 2; }
board_names() { for f in boards/*/board.env; do basename "$(dirname "$f")"; done; }

# render FILE BIN: the template with the board profile filled in, on stdout: @BOARD@, @ROLE@, @FS_ROOT@, @BIN@,
# @LABEL_ARGS@ (LABELS as `--label k=v` flags) and @LABEL_LIST@ (LABELS as UCI `list label` lines).
render() {
  local text l label_args="" label_list=""
  for l in $LABELS; do
    label_args+="${label_args:+ }--label $l"
    label_list+="${label_list:+$'\n'}"$'\t'"list label '$l'"
  done
  text=$(<"$1")
  # Quoted replacements: bash 5.2 would otherwise expand `&` in them to the match.
  text=${text//@BOARD@/"$BOARD"} text=${text//@ROLE@/"$ROLE"} text=${text//@FS_ROOT@/"$FS_ROOT"}
  text=${text//@BIN@/"$2"} text=${text//@LABEL_ARGS@/"$label_args"} text=${text//@LABEL_LIST@/"$label_list"}
  printf '%s\n' "$text"
}

# stage_systemd ROOT: Raspberry Pi OS layout (admin-installed, so /usr/local and /etc).
stage_systemd() {
  local root=$1 c=boards/common
  install -D -m 0755 "dist/rstream-$BOARD" "$root/usr/local/bin/rstream"
  render $c/systemd/rstream.service /usr/local/bin/rstream |
    install -D -m 0644 /dev/stdin "$root/etc/systemd/system/rstream.service"
  # The unit's StateDirectory makes /var/lib/rstream writable; a WebDAV root elsewhere needs ReadWritePaths, which
  # systemd cannot take from a variable: ship it as a drop-in the admin edits along with RSTREAM_FS_ROOT.
  case "$FS_ROOT/" in
    /var/lib/rstream/*) ;;
    *) printf '%s\n' "# WebDAV root from boards/$BOARD/board.env (FS_ROOT); keep it equal to RSTREAM_FS_ROOT in" \
         "# /etc/default/rstream (systemd does not expand variables in ReadWritePaths=)." \
         "[Service]" "ReadWritePaths=$FS_ROOT" |
         install -D -m 0644 /dev/stdin "$root/etc/systemd/system/rstream.service.d/fs-root.conf" ;;
  esac
  install -D -m 0644 $c/systemd/rstream.sysusers "$root/etc/sysusers.d/rstream.conf"
  render $c/systemd/rstream.default /usr/local/bin/rstream | install -D -m 0644 /dev/stdin "$root/etc/default/rstream"
  install -D -m 0644 $c/config.yaml.example "$root/etc/rstream/config.yaml.example"
}

# stage_procd ROOT: OpenWrt layout (init script, UCI defaults, first-boot user creation).
stage_procd() {
  local root=$1 c=boards/common
  install -D -m 0755 "dist/rstream-$BOARD" "$root/usr/bin/rstream"
  render $c/openwrt/rstream.init /usr/bin/rstream | install -D -m 0755 /dev/stdin "$root/etc/init.d/rstream"
  render $c/openwrt/rstream.config /usr/bin/rstream | install -D -m 0600 /dev/stdin "$root/etc/config/rstream"
  render $c/openwrt/rstream.uci-defaults /usr/bin/rstream |
    install -D -m 0755 /dev/stdin "$root/etc/uci-defaults/90-rstream"
  install -D -m 0644 $c/config.yaml.example "$root/etc/rstream/config.yaml.example"
}

build_board() {
  local board=$1 env="boards/$1/board.env"
  [ -f "$env" ] || { echo "error: no board profile $env" >&2; usage; }
  local BOARD=$board TARGET="" FEATURES="" RUSTFLAGS="" SERVICE="" ROLE="" LABELS="" FS_ROOT="" QEMU=""
  # shellcheck disable=SC1090
  . "$env"
  [ -n "$ROLE" ] && [ -n "$FS_ROOT" ] || { echo "error: $env: ROLE and FS_ROOT are required" >&2; exit 1; }
  local size_args=()
  [ "${SIZE:-0}" = 1 ] && size_args=(--mode size)
  local start=$SECONDS
  ./cross/build.sh --features "$FEATURES" --rustflags "$RUSTFLAGS" "${size_args[@]}" --out "dist/rstream-$board" \
    "$TARGET" >/dev/null

  # The image must execute on the board's CPU model (ARMv6 included: Debian's armhf musl would not).
  # shellcheck disable=SC2086
  if ! out=$($QEMU "dist/rstream-$board" version 2>&1); then
    echo "error: dist/rstream-$board does not run under '$QEMU': $out" >&2
    exit 1
  fi

  local root="dist/rstream-$board.root"
  rm -rf "$root"
  case "$SERVICE" in
    systemd) stage_systemd "$root" ;;
    procd) stage_procd "$root" ;;
    *) echo "error: $env: SERVICE must be systemd or procd, not '$SERVICE'" >&2; exit 1 ;;
  esac
  ./cross/check-services.sh "$root" "$SERVICE" "$board"
  # Files only (no directory entries: extracting over / must not touch the modes of /etc or /usr), reproducible.
  local epoch
  epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
  (cd "$root" && find . -type f | LC_ALL=C sort) |
    tar --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --no-recursion -C "$root" -T - -cf - |
    gzip -9n >"dist/rstream-$board.tar.gz"
  rm -rf "$root"
  (cd dist && sha256sum "rstream-$board" "rstream-$board.tar.gz" >"rstream-$board.sha256")
  printf '%-16s %-32s %-8s %9s bytes  %3ss  runs under %s\n' "$board" "$TARGET" "$SERVICE" \
    "$(stat -c %s "dist/rstream-$board")" $((SECONDS - start)) "$QEMU"
}

[ $# -eq 1 ] || usage
mkdir -p dist
if [ "$1" = --all ]; then
  for b in $(board_names); do build_board "$b"; done
else
  build_board "$1"
fi
