#!/usr/bin/env bash
# Device agent memory: resident set of `rstream webtty server` idle and with N concurrent exec sessions.
# A benchmark-style check (not a unit test): prints the figures and where the memory is, and exits non-zero
# when a budget is exceeded.
#
#   cross/rss.sh                      x86_64 musl release device image, native, through a host engine
#   RSS_MODE=local cross/rss.sh       the server's local listener instead (--listen, no TLS, no engine)
#   RSS_ARCH=aarch64 cross/rss.sh     the aarch64 image under qemu-aarch64-static: qemu's translator and code
#                                     cache are counted too, so figures are inflated and budgets not enforced
#   RSS_SESSIONS=32                   concurrent exec sessions (default 32)
#   RSS_BUILD=size                    the image in another cross/build.sh mode (default stable; size is what the
#                                     32-bit boards ship): shows how much of the idle figure is the image itself
#
# Budgets (issue 7; static musl release image): idle ≤ 2 MiB, 32 exec sessions ≤ 8 MiB.
# Engine mode is the deployment: the agent holds a TLS control channel to the engine; each session is a proxy
# leg (its own TLS connection) carrying a WebSocket, a child process group and its pipes. The sessions are opened
# by the host operator (`rstream webtty exec … -- sleep 600`) and held until the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE_BUDGET_KIB=2048 BUSY_BUDGET_KIB=8192
sessions=${RSS_SESSIONS:-32}
mode=${RSS_MODE:-engine}
arch=${RSS_ARCH:-x86_64}
case "$arch" in
  x86_64) target=x86_64-unknown-linux-musl runner=() enforce=1 ;;
  aarch64) target=aarch64-unknown-linux-musl runner=(qemu-aarch64-static) enforce=0 ;;
  *) echo "error: RSS_ARCH must be x86_64 or aarch64" >&2; exit 2 ;;
esac
case "$mode" in engine|local) ;; *) echo "error: RSS_MODE must be engine or local" >&2; exit 2 ;; esac
./cross/install-deps.sh host musl $([ "$arch" = aarch64 ] && echo qemu) >/dev/null

build_mode=${RSS_BUILD:-stable}
[ "$build_mode" = stable ] || ./cross/install-deps.sh zig >/dev/null
image=$(./cross/build.sh --features device --mode "$build_mode" "$target")
cargo build --quiet # the host engine and operator
host=target/debug/rstream

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for WHAT SECONDS COMMAND…: polls COMMAND every 50 ms until it succeeds, or fails naming WHAT.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "error: timed out waiting for $what" >&2
      tail -n 20 "$work"/*.log >&2 || true
      exit 1
    fi
    sleep 0.05
  done
}
has_line() { grep -q "$2" "$1" 2>/dev/null; }

mkdir -p "$work/files"
if [ "$mode" = engine ]; then
  export RSTREAM_CONFIG="$work/operator.yaml"
  "$host" engine serve --listen 127.0.0.1:0 --state-dir "$work/engine" >"$work/engine.log" 2>&1 &
  pids+=($!)
  wait_for "the engine's operator context" 30 has_line "$RSTREAM_CONFIG" "name: local"
  engine_addr=$("$host" context show local -o json | sed -n 's/.*"engine":"\([^"]*\)".*/\1/p')
  "$host" engine token --state-dir "$work/engine" --permissions tunnels.tunnels.create-delete >"$work/device-token"
  RSTREAM_CONFIG="$work/device.yaml" "$host" context create device --engine "$engine_addr" \
    --token-file "$work/device-token" --engine-tls-ca-file "$work/engine/ca.pem" --default >/dev/null
  RSTREAM_CONFIG="$work/device.yaml" "${runner[@]}" "$image" webtty server --rstream --no-publish --name rss \
    --fs-root "$work/files" --max-sessions "$sessions" 2>"$work/server.log" &
  server=$!
  pids+=("$server")
  wait_for "the server to come online" 60 has_line "$work/server.log" "online as rstrm://rss"
  url=rstrm://rss auth=()
else
  printf 'rss-token\n' >"$work/token"
  "${runner[@]}" "$image" webtty server --listen 127.0.0.1:0 --auth-token-file "$work/token" \
    --fs-root "$work/files" --max-sessions "$sessions" 2>"$work/server.log" &
  server=$!
  pids+=("$server")
  wait_for "the server to listen" 30 has_line "$work/server.log" "listening on ws://"
  url="ws://$(sed -n 's|.*listening on ws://\([^/]*\)/.*|\1|p' "$work/server.log" | head -n 1)"
  auth=(--auth-token-file "$work/token")
fi

# kib FIELD: a field of /proc/<server>/status, in KiB (Threads: a count).
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$server/status"; }
children() { ps -o pid= --ppid "$server" | wc -l; }
exec_once() { "$host" webtty exec --url "$url" "${auth[@]}" --no-stdin -o json -- "$@"; }

# One session first, so lazily created state (process reaper, signal pipe, DNS) counts as idle, not per session.
exec_once true >/dev/null
no_children() { [ "$(children)" -eq 0 ]; }
wait_for "the first session to end" 30 no_children
idle_rss=$(kib VmRSS) idle_threads=$(kib Threads)
cp "/proc/$server/smaps" "$work/smaps.idle"
idle_anon=$(awk '/^Anonymous:/ { t += $2 } END { print t }' "$work/smaps.idle")

for _ in $(seq "$sessions"); do
  exec_once sleep 600 >/dev/null 2>>"$work/clients.log" &
  pids+=($!)
done
all_running() { [ "$(children)" -ge "$sessions" ]; }
wait_for "$sessions sessions to run" 120 all_running
busy_rss=$(kib VmRSS) busy_hwm=$(kib VmHWM) busy_threads=$(kib Threads)

echo "rstream webtty server: $target $build_mode image ($(stat -c %s "$image") bytes), $mode mode${runner:+, under ${runner[*]}}"
printf '  %-30s %6s KiB  (budget %s KiB)  threads %s  anonymous %s KiB\n' "idle" "$idle_rss" "$IDLE_BUDGET_KIB" \
  "$idle_threads" "$idle_anon"
printf '  %-30s %6s KiB  (budget %s KiB)  threads %s  peak %s KiB\n' "$sessions concurrent exec sessions" \
  "$busy_rss" "$BUSY_BUDGET_KIB" "$busy_threads" "$busy_hwm"
printf '  %-30s %6s KiB\n' "per session" $(((busy_rss - idle_rss) / sessions))
# by_mapping SMAPS: resident KiB per mapping (the image's own segments by permission), largest first.
by_mapping() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6); sub(".*/", "", name); if ($6 ~ /^\//) name = name " " $2 }
    /^Rss:/ { rss[name] += $2 }
    /^Anonymous:/ { anon[name] += $2 }
    END { for (n in rss) if (rss[n] > 0) printf "%6d KiB  %-22s (anonymous %d KiB)\n", rss[n], n, anon[n] }
  ' "$1" | sort -nr | head -10 | sed 's/^/    /'
}
echo "  resident memory by mapping, idle (/proc/PID/smaps):"
by_mapping "$work/smaps.idle"
echo "  resident memory by mapping, with $sessions sessions:"
by_mapping "/proc/$server/smaps"
grep -E '^(Anonymous|Private_Dirty|Private_Clean|Shared_Clean):' "/proc/$server/smaps_rollup" | sed 's/^/    /'

status=0
if [ "$enforce" = 1 ]; then
  [ "$idle_rss" -le "$IDLE_BUDGET_KIB" ] || { echo "rss: idle over the ${IDLE_BUDGET_KIB} KiB budget" >&2; status=1; }
  [ "$busy_rss" -le "$BUSY_BUDGET_KIB" ] || { echo "rss: $sessions sessions over the ${BUSY_BUDGET_KIB} KiB budget" >&2; status=1; }
fi
exit "$status"
