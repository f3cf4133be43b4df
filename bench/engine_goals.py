#!/usr/bin/env python3
"""Issue 5's goals from an engine_bench JSON file: ratios of medians taken in one run.

    engine_goals.py engine_bench.json [stream8g.json]

The run should keep every repetition (--benchmark_repetitions=N without
--benchmark_report_aggregates_only) and interleave them
(--benchmark_enable_random_interleaving=true), so slow spells of a shared machine fall
on the engine and on the kernel alike. Each figure is the median over repetitions of
bytes_per_second; the spread (lowest..highest repetition) is printed beside it.
Exit status 0 whether or not a goal is met: this reports, the README judges.
"""
import json
import statistics
import sys

ENGINE_2T_CACHE = "BM_Engine/backend:0/threads:2/sector:4096/slots:16/slot_KiB:256/buf_KiB:4096/real_time"
KERNEL_1T_CACHE = "BM_KernelDirect/sector:4096/buf_KiB:4096/real_time"
ENGINE_1T_STREAM = "BM_Engine/backend:0/threads:1/sector:4096/slots:16/slot_KiB:1024/buf_KiB:65536/real_time"
KERNEL_1T_STREAM = "BM_KernelDirect/sector:4096/buf_KiB:65536/real_time"
LATENCY = "BM_Latency4K/backend:0/real_time"
STREAM = "BM_Stream8GiB/backend:0/iterations:1/real_time"


def repetitions(benchmarks, name, field):
    vals = [b[field] for b in benchmarks
            if b.get("run_name") == name and b.get("run_type") == "iteration" and field in b]
    if not vals:
        sys.exit(f"engine_goals: no repetitions of {name} ({field}) in the file")
    return vals


def describe(vals, scale=1.0):
    return (f"median {statistics.median(vals) * scale:.2f} "
            f"({min(vals) * scale:.2f}..{max(vals) * scale:.2f}, n={len(vals)})")


def ratio(benchmarks, num, den, goal, op, what):
    n = repetitions(benchmarks, num, "bytes_per_second")
    d = repetitions(benchmarks, den, "bytes_per_second")
    r = statistics.median(n) / statistics.median(d)
    met = r >= goal if op == ">=" else r <= goal
    print(f"{what}: {r:.3f}x (goal {op} {goal}x: {'met' if met else 'NOT met'})")
    print(f"    engine GB/s {describe(n, 1e-9)}")
    print(f"    kernel GB/s {describe(d, 1e-9)}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        benchmarks = json.load(f)["benchmarks"]
    ratio(benchmarks, ENGINE_2T_CACHE, KERNEL_1T_CACHE, 1.8, ">=",
          "2 threads, 4 KiB sectors, 4 MiB in cache, vs the 1-thread kernel")
    ratio(benchmarks, ENGINE_1T_STREAM, KERNEL_1T_STREAM, 0.9, ">=",
          "1 thread, 64 MiB, vs the kernel called directly (overhead <= 10%)")
    p99 = repetitions(benchmarks, LATENCY, "p99_us")
    p50 = repetitions(benchmarks, LATENCY, "p50_us")
    print(f"4 KiB crypt_sync at idle: p50 us {describe(p50)}; p99 us {describe(p99)} "
          f"(goal p99 <= 50: {'met' if statistics.median(p99) <= 50 else 'NOT met'})")
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            stream = json.load(f)["benchmarks"]
        rss = repetitions(stream, STREAM, "peak_rss_MiB")[0]
        gbs = repetitions(stream, STREAM, "bytes_per_second")[0] * 1e-9
        print(f"8 GiB through a 64 MiB pool: peak RSS {rss:.1f} MiB, {gbs:.1f} GB/s "
              f"(goal <= 96 MiB: {'met' if rss <= 96 else 'NOT met'})")


if __name__ == "__main__":
    main()
