#!/usr/bin/env python3
"""Before/after of an engine change on a shared machine: two engine_bench binaries (the
commit before, the commit after) run alternately, one repetition of every selected row
per turn, so a slow spell falls on both alike. Reports each row's median req/s, p50 and
p99 latency per binary over the turns, and after/before of the medians.

    bench/engine_ab.py BEFORE_BIN AFTER_BIN [--turns 7] [--filter REGEX] [--json OUT]
                       [--max-other X]

--max-other X leaves out a row's turn (both sides of it) when other processes kept more
than X vCPUs busy during either side (the rows' other_cpus counter), and counts them.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile


def one_turn(binary, filt):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, "--benchmark_filter=" + filt, "--benchmark_out=" + out.name,
                        "--benchmark_out_format=json"], check=True, stdout=subprocess.DEVNULL)
        report = json.load(open(out.name))
    return {b["name"]: b for b in report["benchmarks"]
            if b.get("run_type") == "iteration" and not b.get("error_occurred")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--turns", type=int, default=7)
    ap.add_argument("--filter", default="BM_Channels|BM_SubmitAnyThread")
    ap.add_argument("--json")
    ap.add_argument("--max-other", type=float)
    a = ap.parse_args()
    runs = {"before": {}, "after": {}}
    dropped = {}
    for t in range(a.turns):
        order = ("before", "after") if t % 2 == 0 else ("after", "before")
        got = {side: one_turn(getattr(a, side), a.filter) for side in order}
        for name in set(got["before"]) & set(got["after"]):
            pair = (got["before"][name], got["after"][name])
            if a.max_other is not None and max(b.get("other_cpus", 0) for b in pair) > a.max_other:
                dropped[name] = dropped.get(name, 0) + 1
                continue
            runs["before"].setdefault(name, []).append(pair[0])
            runs["after"].setdefault(name, []).append(pair[1])
        print("turn %d of %d done" % (t + 1, a.turns), file=sys.stderr, flush=True)

    def med(bs, key):
        vals = [b[key] for b in bs if key in b]
        return statistics.median(vals) if vals else float("nan")

    rows = []
    for name in sorted(set(runs["before"]) & set(runs["after"])):
        b, f = runs["before"][name], runs["after"][name]
        rows.append({"name": name, "turns": min(len(b), len(f)), "dropped": dropped.get(name, 0),
                     "before_req_per_s": med(b, "req_per_s"), "after_req_per_s": med(f, "req_per_s"),
                     "before_p50_us": med(b, "p50_us"), "after_p50_us": med(f, "p50_us"),
                     "before_p99_us": med(b, "p99_us"), "after_p99_us": med(f, "p99_us"),
                     "before_other_cpus": med(b, "other_cpus"), "after_other_cpus": med(f, "other_cpus")})
    print("| row | turns (dropped) | req/s before | req/s after | after/before | p99 us before | p99 us after |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| %s | %d (%d) | %.0f | %.0f | %.2fx | %.1f | %.1f |" % (
            r["name"], r["turns"], r["dropped"], r["before_req_per_s"], r["after_req_per_s"],
            r["after_req_per_s"] / r["before_req_per_s"], r["before_p99_us"], r["after_p99_us"]))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"command": " ".join(sys.argv), "rows": rows, "runs": runs}, fh, indent=1)


if __name__ == "__main__":
    main()
