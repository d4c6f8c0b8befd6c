#!/usr/bin/env python3
"""Reads one `wrk --latency` report and prints `metric<TAB>value` lines: req/s, p50 ms, p99 ms, MB/s.

A run with socket errors or non-2xx answers prints `error` for req/s instead, so a broken tunnel can never
show up as a fast one.
"""
import re
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
SIZES = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}


def millis(text):
    """'1.23ms' -> 1.23; '850.00us' -> 0.85."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def main(path):
    report = open(path, encoding="utf-8", errors="replace").read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", report)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", report)
    p50 = re.search(r"^\s+50%\s+(\S+)", report, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", report, re.M)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    # wrk counts a peer's close after `Connection: close` as a read error: those are not failures.
    connect, _read, write, timeout = (int(n) for n in errors.groups()) if errors else (0, 0, 0, 0)
    broken = not rps or non2xx or connect + write + timeout > 0
    print(f"req/s\t{'error' if broken else f'{float(rps.group(1)):.0f}'}")
    if p50 and p99:
        print(f"p50 ms\t{millis(p50.group(1)):.2f}")
        print(f"p99 ms\t{millis(p99.group(1)):.2f}")
    if transfer:
        print(f"MB/s\t{float(transfer.group(1)) * SIZES[transfer.group(2)]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
