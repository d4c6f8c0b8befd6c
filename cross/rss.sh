#!/usr/bin/env bash
# Device agent memory: resident set of `rstream webtty server` idle and with 32 concurrent exec sessions.
# A benchmark-style check (not a unit test): prints the figures and where they come from, and exits non-zero
# when a budget is exceeded.
#
#   cross/rss.sh                 x86_64 musl release device image, native
#   RSS_ARCH=aarch64 cross/rss.sh   the aarch64 image under qemu-aarch64-static (qemu's own translator and
#                                   code cache are counted too: figures are inflated, budgets not enforced)
#   RSS_SESSIONS=32              concurrent exec sessions (default 32)
#
# Budgets (issue 7; static musl, stripped): idle ≤ 2 MiB, 32 exec sessions ≤ 8 MiB.
# The sessions are opened by the host operator (`rstream webtty exec … -- sleep 600`) against the server's local
# listener; each holds a WebSocket, a child process group and its pipes until the client goes away.
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE_BUDGET_KIB=2048 BUSY_BUDGET_KIB=8192
sessions=${RSS_SESSIONS:-32}
arch=${RSS_ARCH:-x86_64}
case "$arch" in
  x86_64) target=x86_64-unknown-linux-musl runner=() enforce=1 ;;
  aarch64) target=aarch64-unknown-linux-musl runner=(qemu-aarch64-static) enforce=0 ;;
  *) echo "error: RSS_ARCH must be x86_64 or aarch64" >&2; exit 2 ;;
esac
./cross/install-deps.sh host musl $([ "$arch" = aarch64 ] && echo qemu) >/dev/null

image=$(./cross/build.sh --features device "$target")
cargo build --quiet # the host operator that opens the sessions
operator=target/debug/rstream

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

printf 'rss-token\n' >"$work/token"
mkdir -p "$work/files"
"${runner[@]}" "$image" webtty server --listen 127.0.0.1:0 --auth-token-file "$work/token" --fs-root "$work/files" \
  --max-sessions "$sessions" 2>"$work/server.log" &
server=$!
pids+=("$server")

# wait_for WHAT SECONDS COMMAND…: polls COMMAND every 50 ms until it succeeds, or fails naming WHAT.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "error: timed out waiting for $what" >&2; cat "$work/server.log" >&2; exit 1; }
    sleep 0.05
  done
}
listening() { grep -q 'listening on ws://' "$work/server.log"; }
wait_for "the server to listen" 30 listening
addr=$(sed -n 's|.*listening on ws://\([^/]*\)/.*|\1|p' "$work/server.log" | head -n 1)

# kib FIELD: a field of /proc/<server>/status in KiB.
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$server/status"; }
children() { ps -o pid= --ppid "$server" | wc -l; }

# Idle: give the executor a moment to settle into its wait (no sessions, nothing to do).
idle_ready() { [ "$(kib VmRSS)" -gt 0 ]; }
wait_for "the server's /proc entry" 5 idle_ready
exec_probe() { "$operator" webtty exec --url "ws://$addr" --auth-token-file "$work/token" -o json -- true >/dev/null; }
exec_probe # one session first, so lazily initialised state (process reaper, signal pipe) counts as idle
sleep 0.5
idle_rss=$(kib VmRSS)
idle_threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$server/status")

for _ in $(seq "$sessions"); do
  "$operator" webtty exec --url "ws://$addr" --auth-token-file "$work/token" --no-stdin -o json -- sleep 600 \
    >/dev/null 2>>"$work/clients.log" &
  pids+=($!)
done
all_running() { [ "$(children)" -ge "$sessions" ]; }
wait_for "$sessions sessions to run" 60 all_running
sleep 0.5
busy_rss=$(kib VmRSS)
busy_hwm=$(kib VmHWM)
busy_threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$server/status")

echo "rstream webtty server ($target, $(stat -c %s "$image") bytes${runner:+, under ${runner[*]}})"
printf '  %-34s %6s KiB  (budget %s KiB)  threads %s\n' "idle" "$idle_rss" "$IDLE_BUDGET_KIB" "$idle_threads"
printf '  %-34s %6s KiB  (budget %s KiB)  threads %s  peak %s KiB\n' "$sessions concurrent exec sessions" \
  "$busy_rss" "$BUSY_BUDGET_KIB" "$busy_threads" "$busy_hwm"
printf '  %-34s %6s KiB\n' "per session" $(((busy_rss - idle_rss) / sessions))
echo "  where the resident memory is (smaps, busy):"
awk '
  /^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) }
  /^Rss:/ { rss[name] += $2 }
  END { for (n in rss) if (rss[n] > 0) printf "    %-40s %6d KiB\n", n, rss[n] }
' "/proc/$server/smaps" | sort -k2 -nr | head -8
grep -E '^(Anonymous|Private_Dirty|Shared_Clean|Private_Clean):' "/proc/$server/smaps_rollup" | sed 's/^/    /'

status=0
if [ "$enforce" = 1 ]; then
  [ "$idle_rss" -le "$IDLE_BUDGET_KIB" ] || { echo "rss: idle over budget" >&2; status=1; }
  [ "$busy_rss" -le "$BUSY_BUDGET_KIB" ] || { echo "rss: $sessions sessions over budget" >&2; status=1; }
fi
exit "$status"
