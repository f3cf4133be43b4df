#!/usr/bin/env python3
"""The timing scripts' report (bench/reencrypt_speed.sh, bench/reencrypt_reduce_speed.sh):
a log of "label milliseconds" lines becomes a markdown table of medians, then throughput
ratios, each given as "TEXT=A/B" (labels) and printed as "- TEXT: Nx", N the throughput
of A over that of B (the median time of B over that of A; the same bytes either way).

Usage: bench/timings_table.py LOG IMAGE_MIB [TEXT=A/B ...]
"""
import statistics
import sys


def main():
    log, mib, ratios = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    times = {}
    for line in open(log):
        label, ms = line.split()
        times.setdefault(label, []).append(int(ms))
    med = {k: statistics.median(v) for k, v in times.items()}
    print("| run | n | median ms | MiB/s | all ms |\n| --- | --- | --- | --- | --- |")
    for k, v in times.items():
        print(f"| {k} | {len(v)} | {med[k]:.0f} | {mib * 1000 / med[k]:.0f} | {' '.join(map(str, v))} |")
    print()
    for r in ratios:
        text, pair = r.rsplit("=", 1)
        a, b = pair.split("/")
        print(f"- {text}: {med[b] / med[a]:.2f}x")


if __name__ == "__main__":
    main()
