#!/usr/bin/env bash
# Checks the service files staged for a board before they ship:
#   systemd: `systemd-analyze verify` accepts the unit (and its drop-in); the unit runs the image's binary as
#            `rstream`, and ExecStart expanded with the shipped /etc/default/rstream (and with a site's own settings)
#            is the expected `webtty server` command line with the labels and WebDAV root of boards/BOARD/board.env;
#            that root is writable in the sandbox.
#   procd:   the init script parses as POSIX sh and, run against stubbed OpenWrt helpers (config_*, procd_*) and the
#            shipped /etc/config/rstream, starts `rstream webtty server --rstream … --fs-root FS_ROOT` with the
#            board's labels as user rstream with RSTREAM_CONFIG set.
#
#   cross/check-services.sh ROOT systemd|procd BOARD     (ROOT: the staged root filesystem overlay)
set -euo pipefail
root=$1 service=$2 board=$3
fail() { echo "error: $board $service: $*" >&2; exit 1; }

# The board's profile: what the service files must carry (ROLE, LABELS, FS_ROOT).
ROLE="" LABELS="" FS_ROOT=""
# shellcheck disable=SC1090
. "$(dirname "$0")/../boards/$board/board.env"
label_args=""
for l in $LABELS; do label_args+="${label_args:+ }--label $l"; done

# expand_exec UNIT ENVFILE: the unit's ExecStart= as systemd would run it with ENVFILE loaded (its Environment=
# lines first, overridden by the file): ${VAR} (anywhere in a word) stays in one word, a word $VAR splits at
# whitespace, %H is the host name.
expand_exec() {
  local unit=$1 envfile=$2 line key value word out=()
  declare -A env=()
  while IFS= read -r line; do
    line=${line#Environment=} line=${line#\"} line=${line%\"}
    env[${line%%=*}]=${line#*=}
  done < <(grep '^Environment=' "$unit")
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*} value=${line#*=}
    env[$key]=$value
  done <"$envfile"
  # shellcheck disable=SC2013
  for word in $(sed -n 's/^ExecStart=//p' "$unit"); do
    case "$word" in
      '$'[A-Z]*) key=${word#?}; [ -z "${env[$key]-}" ] || out+=(${env[$key]}) ;;
      *)
        while [[ $word =~ \$\{([A-Za-z0-9_]+)\} ]]; do
          key=${BASH_REMATCH[1]}
          word=${word/"\${$key}"/"${env[$key]-}"}
        done
        out+=("${word//%H/testhost}")
        ;;
    esac
  done
  echo "${out[*]}"
}

check_systemd() {
  local unit="$root/etc/systemd/system/rstream.service" defaults="$root/etc/default/rstream"
  local dropin="$root/etc/systemd/system/rstream.service.d/fs-root.conf"
  [ -f "$unit" ] && [ -f "$defaults" ] || fail "missing $unit or $defaults"
  [ -x "$root/usr/local/bin/rstream" ] || fail "missing $root/usr/local/bin/rstream"
  for line in User=rstream NoNewPrivileges=yes ProtectSystem=strict StateDirectory=rstream Restart=always \
    Environment=RSTREAM_CONFIG=/etc/rstream/config.yaml EnvironmentFile=-/etc/default/rstream \
    "RSTREAM_FS_ROOT=$FS_ROOT" "RSTREAM_LABELS=$label_args"; do
    grep -qxF -- "$line" "$unit" "$defaults" || fail "unit or /etc/default/rstream lacks $line"
  done
  # The command line the board's config produces, with the shipped defaults and with a site's own.
  local want="/usr/local/bin/rstream webtty server --rstream --no-publish --name testhost --label role=$ROLE"
  want+=" --label board=$board${label_args:+ $label_args} --fs-root $FS_ROOT"
  local got tmp
  got=$(expand_exec "$unit" "$defaults")
  [ "$got" = "$want" ] || fail "ExecStart runs '$got', not '$want'"
  tmp=$(mktemp -d)
  printf '%s\n' RSTREAM_ROLE=greenhouse 'RSTREAM_LABELS=--label site=berlin --label floor=2' \
    RSTREAM_FS_ROOT=/var/lib/rstream/share 'RSTREAM_ARGS=--fs-read-only --max-sessions 8' >"$tmp/site"
  got=$(expand_exec "$unit" "$tmp/site")
  want="/usr/local/bin/rstream webtty server --rstream --no-publish --name testhost --label role=greenhouse"
  want+=" --label board=$board --label site=berlin --label floor=2 --fs-root /var/lib/rstream/share"
  want+=" --fs-read-only --max-sessions 8"
  [ "$got" = "$want" ] || { rm -rf "$tmp"; fail "with site settings ExecStart runs '$got', not '$want'"; }
  # The WebDAV root is writable in the sandbox: below the StateDirectory, or named by the shipped drop-in.
  case "$FS_ROOT/" in
    /var/lib/rstream/*) [ ! -e "$dropin" ] || fail "unexpected $dropin for $FS_ROOT" ;;
    *) grep -qxF "ReadWritePaths=$FS_ROOT" "$dropin" 2>/dev/null || fail "$dropin lacks ReadWritePaths=$FS_ROOT" ;;
  esac
  grep -q '^u rstream ' "$root/etc/sysusers.d/rstream.conf" || fail "sysusers.d does not create user rstream"
  if command -v systemd-analyze >/dev/null; then
    # verify resolves ExecStart on this host: point it at the staged binary (drop-ins come along).
    sed "s|^ExecStart=/usr/local/bin/rstream|ExecStart=$(realpath "$root/usr/local/bin/rstream")|" "$unit" >"$tmp/rstream.service"
    [ ! -d "$unit.d" ] || cp -r "$unit.d" "$tmp/"
    local out
    out=$(systemd-analyze verify "$tmp/rstream.service" 2>&1) || { rm -rf "$tmp"; fail "systemd-analyze verify: $out"; }
    [ -z "$out" ] || { rm -rf "$tmp"; fail "systemd-analyze verify warned: $out"; }
  fi
  rm -rf "$tmp"
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
  echo "$got" | grep -q "^command=/usr/bin/rstream webtty server --rstream --name testhost --label role=.* --label board=$board --fs-root $FS_ROOT$" ||
    fail "unexpected procd command: $got"
  for l in $LABELS; do
    echo "$got" | grep -qxF -- "command+=--label $l" || fail "procd instance lacks label $l: $got"
  done
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
