#!/usr/bin/env bash
# Shared by scripts/demo.sh and bench/run.sh (source it): a temp work dir whose background processes are stopped
# when the script exits, polling with a deadline, and free loopback ports.
#   start_work TAG          $work = a fresh temp dir; on exit every pid in $pids is killed and $work removed
#   wait_for SECONDS WHAT COMMAND...   polls COMMAND (output discarded) until it succeeds, or exits 1 naming WHAT
#   free_port               prints a free TCP port on 127.0.0.1

start_work() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/rstream-$1.XXXXXX")
  pids=()
  trap stop_work EXIT
}

stop_work() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "$(basename "$0"): timed out waiting for $what" >&2
      exit 1
    fi
    sleep 0.1
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
