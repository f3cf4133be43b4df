#!/usr/bin/env python3
"""Writes bench/results/gpu_datapath.json, the flat summary of one GPU run, from the
Google Benchmark JSON of gpu_datapath and xts_gpu (both run with repetitions: medians),
and with --hybrid bench/results/hybrid.json from the same run.

    bench/gpu_datapath.py gpu_datapath.json xts_gpu.json > bench/results/gpu_datapath.json
    bench/gpu_datapath.py --hybrid gpu_datapath.json xts_gpu.json > bench/results/hybrid.json

hybrid.json: device, cpu (CPU engine alone, all cores), gpu (GPU alone, best path),
hybrid (both), in GB/s for 64 MiB registered requests, AES-256, 4 KiB sectors (the GPU
and hybrid with the constant-time kernel, the engine's default, and with the table one),
hybrid_small_4k and cpu_small_4k (4 KiB requests from 16 producers).

Keys (GB/s unless named otherwise): device, h2d, d2h (copy engines alone, xts_gpu),
kernel_device (table AES-256, 4 KiB sectors, device-resident, xts_gpu),
engine_registered, engine_slots, engine_copy, engine_device_resident (the engine's paths
at the default slots, 8 of 64 MiB, table AES-256), engine_small_4k (4 KiB requests from 16
producers, cuda), cpu_engine (64 MiB requests, the CPU engine on every core), aes, and
the goal ratios the issue names.
"""
import json
import sys


def medians(path):
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for b in doc["benchmarks"]:
        if b.get("aggregate_name") != "median" or "error_occurred" in b:
            continue
        name = b["run_name"]
        out[name] = b.get("GB/s", b.get("bytes_per_second", 0) / 1e9)
    return doc, out


def hybrid(dp, device):
    get = lambda k: round(dp[k], 2) if k in dp else None
    path = "BM_EnginePath/path:{}/slot_MiB:0/aes:{}/slots:0/min_time:0.500/real_time"
    # The CPU engine with a slot for every core (32 slots of 1 MiB), as hybrid has.
    r = {"device": device,
         "cpu": get("BM_EnginePath/path:4/slot_MiB:1/aes:0/slots:32/min_time:0.500/real_time")}
    for aes, suffix in ((0, ""), (1, "_table")):
        gpu = max(get(path.format(p, aes)) or 0 for p in (0, 1))  # registered or zero-copy
        r["gpu" + suffix] = gpu or None
        r["hybrid" + suffix] = get(path.format(5, aes))
        total = (r["cpu"] or 0) + gpu
        r["hybrid_over_sum" + suffix] = round(r["hybrid" + suffix] / total, 3) \
            if r["hybrid" + suffix] and total else None
    r["hybrid_small_4k"] = get("BM_Small4K/backend:2/min_time:0.500/real_time")
    r["cpu_small_4k"] = get("BM_Small4K/backend:0/min_time:0.500/real_time")
    r["small_4k_ratio"] = round(r["hybrid_small_4k"] / r["cpu_small_4k"], 3) \
        if r["hybrid_small_4k"] and r["cpu_small_4k"] else None
    return r


def main():
    want_hybrid = sys.argv[1] == "--hybrid"
    if want_hybrid:
        del sys.argv[1]
    dp_doc, dp = medians(sys.argv[1])
    _, xg = medians(sys.argv[2])
    get = lambda d, k: round(d[k], 2) if k in d else None
    label = ""
    for b in dp_doc["benchmarks"]:
        if b["run_name"].startswith("BM_EnginePath/path:0") and "label" in b:
            label = b["label"]
    device = label.split(": ", 1)[-1].split(",")[0] if label else ""
    if want_hybrid:
        json.dump(hybrid(dp, device), sys.stdout, indent=2)
        print()
        return
    path = "BM_EnginePath/path:{}/slot_MiB:{}/aes:{}/slots:{}/min_time:0.500/real_time"
    r = {
        "device": device,
        "h2d": get(xg, "copy/h2d/repeats:5/manual_time"),
        "d2h": get(xg, "copy/d2h/repeats:5/manual_time"),
        "kernel_device": get(xg, "device/table/aes256/4096/enc/repeats:5/manual_time"),
        "engine_registered": get(dp, path.format(0, 0, 1, 0)),
        "engine_slots": get(dp, path.format(1, 0, 1, 0)),
        "engine_copy": get(dp, path.format(2, 0, 1, 0)),
        "engine_device_resident": get(dp, path.format(3, 0, 1, 0)),
        "engine_small_4k": get(dp, "BM_Small4K/backend:1/min_time:0.500/real_time"),
        "cpu_engine": get(dp, path.format(4, 1, 0, 32)),
        "cpu_engine_8_slots": get(dp, path.format(4, 1, 0, 0)),
        "cpu_small_4k": get(dp, "BM_Small4K/backend:0/min_time:0.500/real_time"),
        "kernel_one_thread_4k": get(dp, "BM_KernelOneThread/min_time:0.500/real_time"),
        "engine_registered_constant_time": get(dp, path.format(0, 0, 0, 0)),
        "engine_device_resident_constant_time": get(dp, path.format(3, 0, 0, 0)),
        "host_memcpy_16_threads": get(dp, "BM_HostMemcpy/threads:16/min_time:0.500/real_time"),
        "aes": "table",
    }
    bus = min(r["h2d"] or 0, r["d2h"] or 0)
    ratio = lambda a, b: round(a / b, 3) if a and b else None
    r["registered_over_bus"] = ratio(r["engine_registered"], bus)
    r["slots_over_bus"] = ratio(r["engine_slots"], bus)
    r["copy_over_bus"] = ratio(r["engine_copy"], bus)
    r["device_resident_over_kernel"] = ratio(r["engine_device_resident"], r["kernel_device"])
    # Every case of the sweep the defaults were chosen from, by its benchmark name.
    r["sweep"] = {k.split("/min_time")[0]: round(v, 2) for k, v in dp.items()}
    json.dump(r, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
