#!/usr/bin/python3
"""fio through nbdkit, in one run: the file plugin with no filter (no encryption), with the
sectorcrypt filter (plain and LUKS2), and with nbdkit's own luks filter on a LUKS1 image of
the same size. fio's nbd engine over a Unix socket, 4 jobs (4 connections) x iodepth 32:
4 KiB random read, 4 KiB random write, 1 MiB sequential read. Each repetition runs every
server on one workload back to back (rotating the order), so drift on a shared machine
hits all of them alike; the report gives medians and ratios.

Usage: bench/nbdkit_fio.py FILTER_SO [--reps N] [--runtime S] [--size-mib M]
                           [--json OUT.json] [--md OUT.md] [--filter-args ...]
Needs nbdkit, fio, cryptsetup on PATH (scripts/setup.sh installs them)."""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = [
    ("randread-4k", ["--rw=randread", "--bs=4k"], "iops"),
    ("randwrite-4k", ["--rw=randwrite", "--bs=4k"], "iops"),
    ("seqread-1m", ["--rw=read", "--bs=1m"], "bw"),
]
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "-q", "--batch-mode"]


def sh(*args):
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def make_images(d, size):
    """Equal data sizes; the LUKS headers come on top."""
    data = size << 20
    key = os.path.join(d, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(64))
    pw = os.path.join(d, "pass")
    with open(pw, "wb") as f:
        f.write(b"benchmark passphrase")
    images = {}
    for name, extra in (("none", 0), ("plain", 0), ("luks2", 16 << 20), ("luks1", 16 << 20)):
        path = os.path.join(d, name + ".img")
        with open(path, "wb") as f:  # allocated, not sparse
            chunk = os.urandom(1 << 20)
            for _ in range((data + extra) >> 20):
                f.write(chunk)
        images[name] = path
    sh("cryptsetup", "luksFormat", "--type", "luks2", "--cipher", "aes-xts-plain64",
       "--key-size", "512", "--sector-size", "4096", "--offset", "32768", "--key-file", pw,
       *FAST_KDF, images["luks2"])
    sh("cryptsetup", "luksFormat", "--type", "luks1", "--cipher", "aes-xts-plain64",
       "--key-size", "512", "--align-payload", "32768", "--key-file", pw, *FAST_KDF,
       images["luks1"])
    return images, key, pw


def servers(filter_so, images, key, pw, filter_args):
    f = "--filter=" + filter_so
    return {
        "nbdkit file (no encryption)": ["file", images["none"]],
        "sectorcrypt plain (512-byte sectors)": [f, "file", images["plain"], "key-file=" + key]
        + filter_args,
        "sectorcrypt LUKS2 (4096-byte sectors)": [f, "file", images["luks2"],
                                                  "passphrase=+" + pw] + filter_args,
        "nbdkit luks filter (LUKS1)": ["--filter=luks", "file", images["luks1"],
                                       "passphrase=+" + pw],
    }


def run_fio(server_args, workload_args, runtime, d):
    sock = os.path.join(d, "bench.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    srv = subprocess.Popen(["nbdkit", "-f", "-U", sock, "--exit-with-parent"] + server_args,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            if srv.poll() is not None:
                raise RuntimeError("nbdkit exited: " + srv.stderr.read().decode())
            time.sleep(0.01)
        out = os.path.join(d, "fio.json")
        cmd = ["fio", "--name=bench", "--ioengine=nbd", "--uri=nbd+unix:///?socket=" + sock,
               "--numjobs=4", "--iodepth=32", "--group_reporting=1", "--time_based=1",
               "--runtime=%d" % runtime, "--ramp_time=1", "--output-format=json",
               "--output=" + out] + workload_args
        subprocess.run(cmd, check=True, capture_output=True)
        with open(out) as fh:
            return json.load(fh)
    finally:
        srv.terminate()
        srv.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("filter_so")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--json", default="bench/results/nbdkit_fio.json")
    ap.add_argument("--md", default="")
    ap.add_argument("--filter-args", nargs="*", default=[])
    ap.add_argument("--only", default="", help="run only the workloads whose name has this")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="sectorcrypt-nbdbench-")
    try:
        images, key, pw = make_images(d, a.size_mib)
        srvs = servers(os.path.abspath(a.filter_so), images, key, pw, a.filter_args)
        names = list(srvs)
        global WORKLOADS
        WORKLOADS = [w for w in WORKLOADS if a.only in w[0]]
        results = {w[0]: {n: [] for n in names} for w in WORKLOADS}
        raw = []
        for rep in range(a.reps):
            for wi, (wname, wargs, metric) in enumerate(WORKLOADS):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for n in order:
                    j = run_fio(srvs[n], wargs, a.runtime, d)
                    job = j["jobs"][0]
                    side = job["write" if "write" in wname else "read"]
                    value = side["iops"] if metric == "iops" else side["bw_bytes"] / 1e9
                    results[wname][n].append(value)
                    raw.append({"rep": rep, "workload": wname, "server": n, "metric": metric,
                                "value": value, "fio": j})
                    print("rep %d %-13s %-40s %12.1f %s" % (rep, wname, n, value,
                          "IOPS" if metric == "iops" else "GB/s"), flush=True)
        summary = {w: {n: statistics.median(v) for n, v in per.items()} for w, per in results.items()}
        doc = {"command": " ".join(sys.argv), "machine": {"cpus": os.cpu_count(),
               "uname": " ".join(platform.uname()), "cpu": cpu_model()},
               "medians": summary, "all": results, "runs": raw}
        with open(a.json, "w") as fh:
            json.dump(doc, fh, indent=1)
        if a.md:
            print_table(summary, names)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def print_table(summary, names):
    base, peer = names[0], names[-1]
    print("\n| server | 4 KiB randread IOPS | 4 KiB randwrite IOPS | 1 MiB seqread GB/s |")
    print("| --- | --- | --- | --- |")
    for n in names:
        cells = []
        for w, _, metric in WORKLOADS:
            v = summary[w][n]
            txt = "%.0fk" % (v / 1000) if metric == "iops" else "%.2f" % v
            if n != base:
                txt += " (%.2fx none, %.2fx luks)" % (v / summary[w][base], v / summary[w][peer])
            cells.append(txt)
        print("| %s | %s |" % (n, " | ".join(cells)))


if __name__ == "__main__":
    main()
