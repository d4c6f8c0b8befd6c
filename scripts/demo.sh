#!/usr/bin/env bash
# The walkthrough on loopback. Filled in as features land.
set -euo pipefail
bin=${1:-target/release/rstream}
"$bin" version
