#!/usr/bin/python3
"""Pools runs of bench/nbdkit_fio.py: for every repetition, each server's result over the
unencrypted server's and over nbdkit's luks filter's in the same repetition (run back to
back, so drift on a shared machine cancels), then the median of those ratios over every
repetition of every run given, with the smallest and largest.

Usage: bench/nbdkit_pool.py RUN.json [RUN.json ...]"""
import json
import statistics
import sys

NONE = "nbdkit file (no encryption)"
LUKS = "nbdkit luks filter (LUKS1)"


def main():
    ratios = {}  # (workload, server) -> [(vs none, vs luks)]
    for path in sys.argv[1:]:
        with open(path) as fh:
            doc = json.load(fh)
        for workload, servers in doc["all"].items():
            for i in range(len(servers[NONE])):
                for server, values in servers.items():
                    ratios.setdefault((workload, server), []).append(
                        (values[i] / servers[NONE][i], values[i] / servers[LUKS][i]))
    print("| workload | server | reps | median x none (min-max) | median x luks |")
    print("| --- | --- | --- | --- | --- |")
    for (workload, server), r in sorted(ratios.items()):
        if server == NONE:
            continue
        vs_none = [x[0] for x in r]
        print("| %s | %s | %d | %.2f (%.2f-%.2f) | %.2f |" % (
            workload, server, len(r), statistics.median(vs_none), min(vs_none), max(vs_none),
            statistics.median(x[1] for x in r)))


if __name__ == "__main__":
    main()
