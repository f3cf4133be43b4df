#!/usr/bin/env python3
"""Issue 11's figures: many producers of small random requests through channels, against
OpenSSL and the kernel on one thread, in one engine_bench run.

    bench/engine_channels.py build/bench/engine_bench [--reps 5] \
        [--json bench/results/engine_channels.json] [--md bench/results/engine_channels.md]
    bench/engine_channels.py --from run.json ...   (summarise an existing run)

Takes the median of each benchmark over the repetitions, then the ratios the goals name
(channels over OpenSSL or the kernel, both from the same run). The repetitions of all rows
are interleaved (--benchmark_enable_random_interleaving), as for engine_goals.py: on this
shared VM a slow spell then falls on the channels and on their baseline alike, rather
than on whichever rows happened to run during it. The spread column is (highest - lowest
repetition) / median of req/s: a row whose spread is as large as its margin over a goal
has not shown the goal met. The "other" column is the median (and highest) other_cpus of
the row's repetitions: how many vCPUs the rest of the machine kept busy meanwhile; with
--max-other X, repetitions above X are left out of the medians (and counted).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

FILTER = "BM_Channels|BM_SubmitAnyThread|BM_SyncAnyThread|BM_OpenSSLLoop|BM_KernelLoop"  # and BM_KernelLoopThreads
MIXES = {"0": "512 B-4 KiB", "1": "4-64 KiB", "2": "64 KiB", "3": "4 KiB"}


def run(binary, reps, out, filt):
    cmd = [binary, "--benchmark_filter=" + filt, "--benchmark_repetitions=%d" % reps,
           "--benchmark_enable_random_interleaving=true",
           "--benchmark_out=" + out, "--benchmark_out_format=json"]
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return " ".join(cmd)


def medians(report, max_other=None):
    runs = {}
    dropped = {}
    for b in report["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        if max_other is not None and b.get("other_cpus", 0) > max_other:
            dropped[b["run_name"]] = dropped.get(b["run_name"], 0) + 1
            continue
        runs.setdefault(b["run_name"], []).append(b)
    out = {}
    for name, bs in runs.items():
        rps = [b["req_per_s"] for b in bs]
        other = [b.get("other_cpus", 0) for b in bs]
        out[name] = {
            "reps": len(bs),
            "dropped_reps": dropped.get(name, 0),
            "other_cpus": statistics.median(other),
            "other_cpus_max": max(other),
            "req_per_s": statistics.median(rps),
            "spread": (max(rps) - min(rps)) / statistics.median(rps),
            "GB_per_s": statistics.median(b["bytes_per_second"] for b in bs) / 1e9,
            "p50_us": statistics.median(b.get("p50_us", 0) for b in bs),
            "p99_us": statistics.median(b.get("p99_us", 0) for b in bs),
        }
        if "inline_share" in bs[0]:
            out[name]["inline_share"] = statistics.median(b["inline_share"] for b in bs)
    return out


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d vCPUs (nproc), %s" % (model, len(os.sched_getaffinity(0)), platform.platform())


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def source_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], check=True,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               check=True, capture_output=True, text=True).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?")
    ap.add_argument("--from", dest="src")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--md")
    ap.add_argument("--filter", default=FILTER, help="benchmark filter (default: every row)")
    ap.add_argument("--max-other", type=float,
                    help="leave out repetitions during which other processes kept more than "
                         "this many vCPUs busy (counter other_cpus)")
    a = ap.parse_args()
    load_before = load_average()
    if a.src:
        command = "(from %s)" % a.src
        report = json.load(open(a.src))
    else:
        if not a.binary:
            ap.error("give the engine_bench binary or --from")
        base = a.json[:-len(".json")] if a.json and a.json.endswith(".json") else (a.json or "engine_channels")
        raw = base + "_raw.json"
        command = run(a.binary, a.reps, raw, a.filter)
        report = json.load(open(raw))
    m = medians(report, a.max_other)
    counts = {}
    for b in report["benchmarks"]:
        if b.get("run_type") == "iteration" and not b.get("error_occurred"):
            counts[b["run_name"]] = counts.get(b["run_name"], 0) + 1

    def get(name, key):
        return m.get(name, {}).get(key)

    openssl = {x: get("BM_OpenSSLLoop/mix:%s/real_time" % x, "req_per_s") for x in MIXES}
    kernel = {x: get("BM_KernelLoop/mix:%s/real_time" % x, "GB_per_s") for x in MIXES}
    rows = []
    for name, v in sorted(m.items()):
        parts = dict(p.split(":", 1) for p in name.split("/")[1:] if ":" in p)
        mix = parts.get("mix")
        row = dict(v, name=name)
        if mix is not None and openssl.get(mix):
            row["vs_openssl_1t"] = v["req_per_s"] / openssl[mix]
        if mix is not None and kernel.get(mix):
            row["vs_kernel_1t"] = v["GB_per_s"] / kernel[mix]
        rows.append(row)

    def goal(text, value, target, higher=True):
        met = None if value is None else (value >= target if higher else value <= target)
        return {"goal": text, "value": value, "target": target, "met": met}

    def ratio(name, key, base):
        v = get(name, key)
        return None if v is None or not base else v / base

    goals = [
        goal("4 KiB mix, 4 producers x QD 16 through channels, over one OpenSSL thread",
             ratio("BM_Channels/mix:0/producers:4/qd:16/backend:0/real_time", "req_per_s", openssl["0"]), 2.0),
        goal("4 KiB mix, 2 producers x QD 32 through channels, over one OpenSSL thread",
             ratio("BM_Channels/mix:0/producers:2/qd:32/backend:0/real_time", "req_per_s", openssl["0"]), 2.0),
        goal("4 KiB mix, one producer at QD 1: p99 latency (us)",
             get("BM_Channels/mix:0/producers:1/qd:1/backend:0/real_time", "p99_us"), 10.0, higher=False),
        goal("64 KiB requests, 2 producers through channels, over the one-thread kernel",
             ratio("BM_Channels/mix:2/producers:2/qd:16/backend:0/real_time", "GB_per_s", kernel["2"]), 1.7),
    ]
    # What two vCPUs allow: the bare kernel on 2 threads over 1, and the channels against it.
    two = ratio("BM_KernelLoopThreads/mix:2/real_time/threads:2", "GB_per_s", kernel["2"])
    chan2 = ratio("BM_Channels/mix:2/producers:2/qd:16/backend:0/real_time", "GB_per_s", kernel["2"])
    ceilings = []
    if two is not None:
        ceilings.append({
            "what": "64 KiB: the kernel alone on 2 threads over 1 thread (the VM's ceiling for the goal)",
            "kernel_2t_over_1t": two,
            "channels_share_of_ceiling": None if chan2 is None else chan2 / two,
        })
    gpu = ratio("BM_Channels/mix:3/producers:16/qd:32/backend:1/real_time", "GB_per_s", kernel["3"])
    if gpu is not None:  # only where a GPU ran the row
        goals.append(goal("GPU host: 4 KiB from 16 producers x QD 32 through channels on the "
                          "cuda backend, over the one-thread kernel", gpu, 8.0))
    result = {
        "command": command,
        "commit": source_commit(),
        "load_average": {"before": load_before, "after": load_average()},
        "machine": machine(),
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "medians": rows,
        "goals": goals,
        "ceilings": ceilings,
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    lines = [
        "# Channels: many producers of small random requests (issue 11)",
        "",
        "- Machine: %s" % result["machine"],
        "- Date: %s; load average (1/5/15 min) %s before, %s after" % (
            result["date"], result["load_average"]["before"], result["load_average"]["after"]),
        "- Source: commit %s" % result["commit"],
        "- Command: `%s`, summarised by `bench/engine_channels.py`" % command,
        "- Requests: random among 5 AES-256 keys, encrypt or decrypt, random sector numbers, half "
        "in place, 512-byte sectors; mix 0 = 512 B-4 KiB, mix 1 = 4-64 KiB, mix 2 = 64 KiB. "
        "Latency: submit to reaped (OpenSSL, kernel: the call). Medians of %d repetitions; "
        "ratios within the run." % max(counts.values(), default=0),
    ]
    lost = sorted(n for n in counts if n not in m)
    busiest = max((v["other_cpus_max"] for v in m.values()), default=0)
    if a.max_other is not None:
        lines.append("- Repetitions during which other processes kept more than %.2f vCPUs busy "
                     "are left out (column reps)%s." % (a.max_other, "; every one of %s" % ", ".join(lost) if lost else ""))
    if busiest > 0.25:
        lines.append("- **Warning**: other processes kept up to %.2f vCPUs busy during some "
                     "repetitions (column other); two-producer rows lose the most from that." % busiest)
    lines += [
        "",
        "| benchmark | reps | other | req/s | spread | GB/s | p50 us | p99 us | vs OpenSSL 1 thread | vs kernel 1 thread | inline |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append("| %s | %d | %.2f (%.2f) | %.0f | %.0f%% | %.2f | %.2f | %.2f | %s | %s | %s |" % (
            r["name"].replace("/real_time", ""), r["reps"], r["other_cpus"], r["other_cpus_max"],
            r["req_per_s"], 100 * r["spread"], r["GB_per_s"], r["p50_us"],
            r["p99_us"], "%.2fx" % r["vs_openssl_1t"] if "vs_openssl_1t" in r else "",
            "%.2fx" % r["vs_kernel_1t"] if "vs_kernel_1t" in r else "",
            "%.0f%%" % (100 * r["inline_share"]) if "inline_share" in r else ""))
    lines += ["", "| goal | result | target | |", "| --- | --- | --- | --- |"]
    for g in goals:
        value = "n/a" if g["value"] is None else "%.2f" % g["value"]
        verdict = "no data (row missing or every repetition left out)" if g["met"] is None else (
            "met" if g["met"] else "**not met**")
        lines.append("| %s | %s | %s %.1f | %s |" % (g["goal"], value, ">=" if "p99" not in g["goal"] else "<=",
                                                     g["target"], verdict))
    for c in ceilings:
        lines += ["", "%s: %.2fx in this run%s." % (
            c["what"], c["kernel_2t_over_1t"],
            "" if c["channels_share_of_ceiling"] is None else
            "; 2 producers through channels reached %.0f%% of it" % (100 * c["channels_share_of_ceiling"]))]
    text = "\n".join(lines) + "\n"
    if a.md:
        with open(a.md, "w") as f:
            f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
