#!/usr/bin/env bash
# Static figures for the CUDA kernels, no GPU needed: ptxas -v (registers, spills, stack,
# shared memory) for every kernel, each kernel's machine-code size in instructions, and
# the per-piece instruction counts of the bitsliced32 cipher from the probe kernels in
# xts_gpu_sass_probe.cu (a piece's cubin .text size less the load/store-only probe's,
# 16 bytes an sm_90 instruction; no disassembler needed).
#
#   bench/xts_gpu_ptxas.sh [nvcc] > bench/results/xts_gpu_ptxas.txt
set -euo pipefail

NVCC=${1:-${NVCC:-/usr/local/cuda/bin/nvcc}}
ARCH=${ARCH:-sm_90}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

FLAGS=(-O3 -DNDEBUG -std=c++20 -arch="$ARCH" -cubin -I"$ROOT" -Xptxas -v)

# Instruction count of each function's .text section in a cubin.
text_sizes() {
  readelf -SW "$1" 2>/dev/null |
    python3 -c 'import sys
for line in sys.stdin:
    f = line.replace("]", "] ").split()
    names = [i for i, x in enumerate(f) if x.startswith(".text.")]
    if names:
        i = names[0]
        print(f[i][6:], int(f[i + 4], 16) // 16)'
}

echo "# xts_gpu_ptxas: $("$NVCC" --version | tail -1), $ARCH, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# command: bench/xts_gpu_ptxas.sh $NVCC"
for cu in xts_table xts_ct xts_bs32; do
  echo
  echo "## kernels/cuda/$cu.cu: ptxas -v"
  "$NVCC" "${FLAGS[@]}" -o "$WORK/$cu.cubin" "$ROOT/kernels/cuda/$cu.cu" 2>&1 |
    grep -E "Compiling entry|stack frame|Used [0-9]+ registers" | sed 's/^ptxas info    : //'
  echo "## kernels/cuda/$cu.cu: machine code per kernel (instructions, static)"
  text_sizes "$WORK/$cu.cubin"
  echo "## kernels/cuda/$cu.cu: spills against the shared-memory (round key) reads"
  python3 "$ROOT/bench/cubin_spills.py" "$WORK/$cu.cubin"
done

echo
echo "## bitsliced32 pieces (bench/xts_gpu_sass_probe.cu): ptxas -v"
"$NVCC" "${FLAGS[@]}" -o "$WORK/probe.cubin" "$ROOT/bench/xts_gpu_sass_probe.cu" 2>&1 |
  grep -E "Compiling entry|stack frame|Used [0-9]+ registers" | sed 's/^ptxas info    : //'
echo "## bitsliced32 pieces: instructions per thread (= per 32 blocks), probe less probe_io"
text_sizes "$WORK/probe.cubin" | awk '
  {n[$1] = $2}
  END {
    io = n["probe_io"]
    split("probe_gather_scatter probe_gather_scatter_512 probe_transpose probe_sub_bytes probe_inv_sub_bytes probe_enc_round probe_enc_round_nokey probe_dec_round", order, " ")
    for (i = 1; i in order; ++i) printf "%-24s %6d\n", order[i], n[order[i]] - io
    printf "constant_time, per round per 2 blocks (probe less probe_ct_pair_io, which also adds a key):\n"
    printf "%-24s %6d\n", "probe_ct_pair_enc_round", n["probe_ct_pair_enc_round"] - n["probe_ct_pair_io"] + 8
    printf "%-24s %6d\n", "probe_ct_pair_dec_round", n["probe_ct_pair_dec_round"] - n["probe_ct_pair_io"] + 8
  }'
