#!/usr/bin/env python3
"""Renders bench/run.sh's measurements (scenario, subject, metric, value) as Markdown tables with ratios.

Each scenario gets one table: a row per subject, a column per metric, and for the first metric the ratio
rstream / subject (higher is better for rates, lower for latency, memory and size). With --append the tables
are also added to a results file under a heading with the date, the machine and the commit.
"""
import argparse
import datetime
import os
import platform
from collections import OrderedDict

LOWER_IS_BETTER = ("ms", "RSS", "KiB")


def load(path):
    scenarios = OrderedDict()
    with open(path, encoding="utf-8") as f:
        for line in f:
            scenario, subject, metric, value = line.rstrip("\n").split("\t")
            rows = scenarios.setdefault(scenario, OrderedDict())
            rows.setdefault(subject, OrderedDict())[metric] = value
    return scenarios


def number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def ratio_note(ours, theirs, metric):
    """'1.42× better' style text comparing rstream's value with a peer's for one metric."""
    a, b = number(ours), number(theirs)
    if a is None or b is None or a == 0 or b == 0:
        return "—"
    lower = any(word in metric for word in LOWER_IS_BETTER)
    return f"{(b / a if lower else a / b):.2f}×"


def table(scenario, rows):
    metrics = list(OrderedDict.fromkeys(m for r in rows.values() for m in r))
    ours_key = next((s for s in rows if s == "rstream"), next((s for s in rows if s.startswith("rstream")), None))
    lead = metrics[0]
    head = f"| {scenario} | " + " | ".join(metrics) + f" | rstream vs it ({lead}) |"
    out = [head, "|" + "---|" * (len(metrics) + 2)]
    for subject, values in rows.items():
        cells = [values.get(m, "") for m in metrics]
        vs = ""
        if ours_key is not None and subject != ours_key:
            vs = ratio_note(rows[ours_key].get(lead), values.get(lead), lead)
        out.append(f"| {subject} | " + " | ".join(cells) + f" | {vs} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--commit", default="?")
    ap.add_argument("--append")
    args = ap.parse_args()
    body = "\n\n".join(table(s, rows) for s, rows in load(args.results).items())
    note = ("Ratios: rstream ÷ peer for rates (>1 = rstream faster), peer ÷ rstream for latency, memory and "
            "size (>1 = rstream smaller). Same run, same machine, loopback.")
    print(body + "\n\n" + note)
    if args.append:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        heading = f"## {stamp} — commit {args.commit} — {os.cpu_count()} × {cpu}, {platform.release()}"
        new = not os.path.exists(args.append)
        with open(args.append, "a", encoding="utf-8") as f:
            if new:
                f.write("# Benchmark history (`make bench`)\n\nEach entry is one run of bench/run.sh; compare "
                        "ratios within an entry, not absolute numbers across entries.\n\n")
            f.write(f"{heading}\n\n{body}\n\n{note}\n\n")


if __name__ == "__main__":
    main()
