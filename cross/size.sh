#!/usr/bin/env bash
# Builds static, stripped release images and prints a size table (target × feature set × build → bytes);
# exits non-zero when a budgeted row is over its budget.
#
#   cross/size.sh            budgeted rows + the other shipped variants (32-bit ARM, device+operator, size modes)
#   cross/size.sh --quick    only the two budgeted rows (cold ≈ 7.5 min on 2 busy cores, 4.7 of them for x86_64)
#   cross/size.sh --device   only the aarch64 device row: what .ci/run checks, right after `make test-cross`
#                            built that very image (so it costs seconds)
# Figures and build times: README "Boards and image sizes".
#
# Budgets (DESIGN: "firmware images", issue 7), stripped and static:
#   device on aarch64-unknown-linux-musl (stable)  ≤ 1.5 MiB (aim ≤ 1.2 MiB)
#   default features on x86_64-unknown-linux-musl  ≤ 8 MiB
set -euo pipefail
cd "$(dirname "$0")/.."

MIB=1048576
DEVICE_BUDGET=$((3 * MIB / 2)) DEVICE_AIM=$((6 * MIB / 5)) FULL_BUDGET=$((8 * MIB))

set_=full
case "${1:-}" in
  "") ;;
  --quick) set_=quick ;;
  --device) set_=device ;;
  *) echo "usage: $0 [--quick|--device]" >&2; exit 2 ;;
esac
if [ "$set_" = full ]; then ./cross/install-deps.sh musl zig >/dev/null; else ./cross/install-deps.sh musl >/dev/null; fi

# rows: target|features|mode (cross/build.sh --mode)|budget bytes (0: none)
rows=("aarch64-unknown-linux-musl|device|stable|$DEVICE_BUDGET")
[ "$set_" = device ] || rows=("x86_64-unknown-linux-musl|default|stable|$FULL_BUDGET" "${rows[@]}")
if [ "$set_" = full ]; then
  rows+=(
    "x86_64-unknown-linux-musl|device|stable|0"
    "aarch64-unknown-linux-musl|device,operator|stable|0"
    "aarch64-unknown-linux-musl|device|size|0"
    "aarch64-unknown-linux-musl|device|size-abort|0"
    "armv7-unknown-linux-musleabihf|device|size|0"
    "arm-unknown-linux-musleabihf|device|size|0"
  )
fi

report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
for row in "${rows[@]}"; do
  IFS='|' read -r target features mode budget <<<"$row"
  args=(--features "$features" --mode "$mode")
  start=$SECONDS
  bin=$(./cross/build.sh "${args[@]}" "$target")
  secs=$((SECONDS - start))
  bytes=$(stat -c %s "$bin")
  kind=$(file -b "$bin")
  case "$kind" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) echo "error: $bin is not static: $kind" >&2; status=1 ;;
  esac
  verdict="-"
  if [ "$budget" -gt 0 ]; then
    verdict="ok <= $((budget / 1024)) KiB"
    if [ "$bytes" -gt "$budget" ]; then
      verdict="OVER $((budget / 1024)) KiB"
      status=1
    elif [ "$features" = device ] && [ "$bytes" -gt "$DEVICE_AIM" ]; then
      verdict="ok, over the $((DEVICE_AIM / 1024)) KiB aim"
    fi
  fi
  printf '| %-30s | %-15s | %-10s | %9d | %7d | %-26s | %4ss |\n' \
    "$target" "$features" "$mode" "$bytes" $((bytes / 1024)) "$verdict" "$secs" >>"$report"
done

printf '| %-30s | %-15s | %-10s | %9s | %7s | %-26s | %5s |\n' target features build bytes KiB budget build
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "--------------------------------" "-----------------" "------------" \
  "-----------" "---------" "----------------------------" "-------"
cat "$report"
if [ "$status" -ne 0 ]; then
  echo "size: a budget is exceeded or an image is not static; see cross/README.md for cargo bloat" >&2
fi
exit "$status"
