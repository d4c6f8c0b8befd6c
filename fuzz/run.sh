#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target for FUZZ_SECONDS (default 60) each, starting from the hand-made
# seeds in fuzz/seeds/<target> (read only) and growing fuzz/corpus/<target> (ignored by git). Installs the
# nightly toolchain and cargo-fuzz when missing. Exits non-zero if any target finds a crash, a hang or a leak;
# the offending input is left in fuzz/artifacts/<target>/ (replay: cargo +nightly fuzz run <target> <file>).
#
# Usage: fuzz/run.sh [target...]   (default: all targets in fuzz/Cargo.toml)
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "=== fuzz $target for ${seconds}s"
    # -timeout: a single input running this long is a hang, reported like a crash.
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1; then
        failed+=("$target")
    fi
done
# The webdav_path target builds its fixture tree under the temp directory, one per process.
rm -rf "${TMPDIR:-/tmp}"/rstream-fuzz-webdav-path-*

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
