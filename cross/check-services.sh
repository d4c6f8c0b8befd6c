#!/usr/bin/env bash
# Checks the service files staged for a board before they ship:
#   systemd: `systemd-analyze verify` accepts the unit, and the unit runs the image's binary as `rstream` with
#            the expected `webtty server` command line.
#   procd:   the init script parses as POSIX sh and, run against stubbed OpenWrt helpers (config_*, procd_*) and the
#            shipped /etc/config/rstream, starts `rstream webtty server --rstream … --fs-root …` as user rstream
#            with RSTREAM_CONFIG set.
#
#   cross/check-services.sh ROOT systemd|procd BOARD     (ROOT: the staged root filesystem overlay)
set -euo pipefail
root=$1 service=$2 board=$3
fail() { echo "error: $board $service: $*" >&2; exit 1; }

check_systemd() {
  local unit="$root/etc/systemd/system/rstream.service"
  [ -f "$unit" ] || fail "missing $unit"
  [ -x "$root/usr/local/bin/rstream" ] || fail "missing $root/usr/local/bin/rstream"
  grep -q "^ExecStart=/usr/local/bin/rstream webtty server --rstream --no-publish --name %H .*--label board=$board .*--fs-root /var/lib/rstream/files" "$unit" ||
    fail "unexpected ExecStart: $(grep ^ExecStart "$unit")"
  for line in User=rstream NoNewPrivileges=yes ProtectSystem=strict ReadWritePaths=/var/lib/rstream/files \
    Restart=always Environment=RSTREAM_CONFIG=/etc/rstream/config.yaml; do
    grep -qx "$line" "$unit" || fail "unit lacks $line"
  done
  grep -q '^u rstream ' "$root/etc/sysusers.d/rstream.conf" || fail "sysusers.d does not create user rstream"
  if command -v systemd-analyze >/dev/null; then
    # verify resolves ExecStart on this host: point it at the staged binary.
    local tmp
    tmp=$(mktemp -d)
    sed "s|^ExecStart=/usr/local/bin/rstream|ExecStart=$(realpath "$root/usr/local/bin/rstream")|" "$unit" >"$tmp/rstream.service"
    local out
    out=$(systemd-analyze verify "$tmp/rstream.service" 2>&1) || { rm -rf "$tmp"; fail "systemd-analyze verify: $out"; }
    rm -rf "$tmp"
    [ -z "$out" ] || fail "systemd-analyze verify warned: $out"
  fi
}

check_procd() {
  local init="$root/etc/init.d/rstream" uci="$root/etc/config/rstream"
  [ -x "$init" ] && [ -f "$uci" ] && [ -x "$root/usr/bin/rstream" ] || fail "missing init script, UCI file or binary"
  sh -n "$init" || fail "init script does not parse"
  sh -n "$root/etc/uci-defaults/90-rstream" || fail "uci-defaults script does not parse"
  local got
  got=$(sh -c '
    set -e
    uci=$1 init=$2
    # Stubbed OpenWrt helpers: UCI options come from the shipped /etc/config/rstream.
    uci_value() { sed -n "s/^[[:space:]]*option $1 '"'"'\(.*\)'"'"'/\1/p" "$uci" | head -n 1; }
    config_load() { :; }
    config_get() {
      v=$(uci_value "$3"); [ -n "$v" ] || v=$4
      # The engine config must exist for the service to start: stand in with an existing, non-empty file.
      [ "$3" != config ] || v=$uci
      eval "$1=\$v"
    }
    config_get_bool() { config_get "$@"; eval "case \$$1 in 1|on|true|yes|enabled) $1=1;; *) $1=0;; esac"; }
    config_list_foreach() { sed -n "s/^[[:space:]]*list $2 '"'"'\(.*\)'"'"'/\1/p" "$uci" | while read -r v; do "$3" "$v"; done; }
    procd_open_instance() { :; }
    procd_close_instance() { :; }
    procd_set_param() { k=$1; shift; echo "$k=$*"; }
    procd_append_param() { k=$1; shift; echo "$k+=$*"; }
    mkdir() { :; }; chown() { :; }; chmod() { :; }
    cat() { echo testhost; }
    . "$init"
    start_service
  ' sh "$uci" "$init" 2>&1 | sed "s|$uci|CONFIG|") || fail "start_service failed: $got"
  echo "$got" | grep -q "^command=/usr/bin/rstream webtty server --rstream --name testhost --label role=.* --label board=$board --fs-root /srv/rstream/files$" ||
    fail "unexpected procd command: $got"
  for want in "command+=--no-publish" "user=rstream" "group=rstream" "no_new_privs=1" "respawn=3600 5 0"; do
    echo "$got" | grep -qx -- "$want" || fail "procd instance lacks '$want': $got"
  done
  echo "$got" | grep -q '^env=RSTREAM_CONFIG=' || fail "procd instance does not set RSTREAM_CONFIG: $got"
}

case "$service" in
  systemd) check_systemd ;;
  procd) check_procd ;;
  *) fail "unknown service kind" ;;
esac
