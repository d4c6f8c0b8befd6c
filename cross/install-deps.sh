#!/usr/bin/env bash
# Installs what builds, tests and the demo need on a fresh Debian machine. Idempotent; safe to re-run.
#   install-deps.sh host      — Debian packages for tests and the demo (curl, python3 for the demo origin, rclone)
set -uo pipefail
want=()
need() { dpkg -s "$1" >/dev/null 2>&1 || want+=("$1"); }
case "${1:-host}" in
  host)
    need curl; need ca-certificates; need python3; need procps
    need rclone  # WebDAV interoperability test (tests/webdav_rclone.rs)
    ;;
  *) echo "usage: $0 host" >&2; exit 2 ;;
esac
if [ ${#want[@]} -gt 0 ]; then
  echo "installing: ${want[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  # One foreign-architecture index may be mid-sync; the amd64 indexes still work, so do not abort on update.
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${want[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
exit 0
