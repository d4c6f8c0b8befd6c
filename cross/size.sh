#!/usr/bin/env bash
# Builds static, stripped release images and prints a size table (target × feature set × build → bytes);
# exits non-zero when a budgeted row is over its budget.
#
#   cross/size.sh           budgeted rows + the other shipped variants (32-bit ARM, device+operator, size modes)
#   cross/size.sh --quick   only the budgeted rows (what CI checks)
#
# Budgets (DESIGN: "firmware images", issue 7), stripped and static:
#   device on aarch64-unknown-linux-musl (stable)  ≤ 1.5 MiB (aim ≤ 1.2 MiB)
#   default features on x86_64-unknown-linux-musl  ≤ 8 MiB
set -euo pipefail
cd "$(dirname "$0")/.."

MIB=1048576
DEVICE_BUDGET=$((3 * MIB / 2)) DEVICE_AIM=$((6 * MIB / 5)) FULL_BUDGET=$((8 * MIB))

quick=0
[ "${1:-}" = --quick ] && quick=1

# rows: target|features|mode (cross/build.sh --mode)|budget bytes (0: none)
rows=(
  "x86_64-unknown-linux-musl|default|stable|$FULL_BUDGET"
  "aarch64-unknown-linux-musl|device|stable|$DEVICE_BUDGET"
)
if [ "$quick" = 0 ]; then
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
