#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one short run on a machine that may lack every
# build dependency: the binaries are built here (CUDA enabled, Release) and travel with
# the shared libraries they need.
#
#   scripts/gpu_check.sh pack [build-dir]   # here: bundle binaries + libraries into .gpu-bundle/
#   scripts/gpu_check.sh run  OUT-dir       # on the GPU machine, from the repository root
#
# `run` writes one log of every step (OUT-dir/gpu_check.log) and the benchmark JSON into
# OUT-dir; every step has its own timeout so a hung kernel cannot eat the machine's lease.
set -u
bundle=.gpu-bundle

pack() {
  local build=${1:-build}
  rm -rf "$bundle" && mkdir -p "$bundle/bin" "$bundle/lib" || exit 1
  local bins=(tests/cuda/sectorcrypt_cuda_tests tests/engine/engine_tests
              tests/engine/engine_alloc_test tests/engine/engine_fault_tests
              tests/sectorcrypt_tests bench/xts_gpu bench/gpu_datapath
              bench/engine_bench host/cli/sectorcrypt)
  for b in "${bins[@]}"; do cp "$build/$b" "$bundle/bin/" || exit 1; done
  # Every library outside glibc: the GPU machine's image has none of Debian's packages.
  ldd "$bundle"/bin/* | awk '/=> \// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
  du -sh "$bundle"
}

step() {  # step NAME SECONDS COMMAND...: run with a timeout, append to the log
  local name=$1 secs=$2; shift 2
  echo "=== $name ($(date -u +%T)): $*" >>"$out/gpu_check.log"
  timeout "$secs" "$@" >"$out/step.log" 2>&1
  local rc=$?
  cat "$out/step.log" >>"$out/gpu_check.log" && rm "$out/step.log"
  echo "=== $name: exit $rc" | tee -a "$out/gpu_check.log"
}

run() {
  out=$1
  mkdir -p "$out"
  { nvidia-smi -L; grep PRETTY_NAME /etc/os-release; nproc; grep -m1 'model name' /proc/cpuinfo; } 2>&1 |
    tee "$out/gpu_check.log"
  export LD_LIBRARY_PATH=$PWD/$bundle/lib
  local bin=$bundle/bin
  step cuda_tests 120 "$bin/sectorcrypt_cuda_tests"
  step engine_cuda_tests 120 "$bin/engine_tests" --gtest_filter='*Cuda*:*cuda*:*Hybrid*:EngineMultiGpu.*'
  SECTORCRYPT_ALLOC_TRACE=8 step engine_alloc_test 120 "$bin/engine_alloc_test"
  step engine_fault_tests 120 "$bin/engine_fault_tests"
  # The CPU kernels on this host's Intel AVX-512 (Highway's AVX3_SPR target).
  step cpu_kernel_tests 120 "$bin/sectorcrypt_tests" \
    --gtest_filter='CpuKernels*:VaesAvx2*:OracleCrossCheck*:AesBlock*:XtsTweak*:NumaNode*'
  if command -v compute-sanitizer >/dev/null; then
    step memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 9 \
      "$bin/sectorcrypt_cuda_tests" --gtest_filter='CudaLaunch.*:*Random*:*Variants*'
    # DestroyUnregistersWhatIsLeft provokes a driver error on purpose (a second
    # registration of a range), which memcheck would report.
    step memcheck_engine 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
      "$bin/engine_tests" \
      --gtest_filter='RegisteredMemoryCuda.*:DeviceResidentCuda.*:-*DestroyUnregistersWhatIsLeft'
  fi
  step xts_gpu 200 "$bin/xts_gpu" --benchmark_min_time=0.2 \
    --benchmark_out="$out/xts_gpu.json" --benchmark_out_format=json
  step gpu_datapath 240 "$bin/gpu_datapath" --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/gpu_datapath_bench.json" --benchmark_out_format=json
  if [ -s "$out/gpu_datapath_bench.json" ] && [ -s "$out/xts_gpu.json" ]; then
    python3 bench/gpu_datapath.py "$out/gpu_datapath_bench.json" "$out/xts_gpu.json" \
      >"$out/gpu_datapath.json" 2>>"$out/gpu_check.log"
    python3 bench/gpu_datapath.py --hybrid "$out/gpu_datapath_bench.json" "$out/xts_gpu.json" \
      >"$out/hybrid.json" 2>>"$out/gpu_check.log"
  fi
  # Channels on this host's 16 cores and on the GPU: 4 KiB from 16 producers x QD 32
  # against the one-thread kernel (issue 11), and the 2-vCPU VM's rows for comparison.
  step engine_channels 150 "$bin/engine_bench" \
    --benchmark_filter='BM_Channels/mix:(0|3)/|BM_KernelLoop/mix:(0|3)|BM_OpenSSLLoop/mix:0' \
    --benchmark_repetitions=3 --benchmark_out="$out/engine_channels_bench.json" \
    --benchmark_out_format=json
  if [ -s "$out/engine_channels_bench.json" ]; then
    python3 bench/engine_channels.py --from "$out/engine_channels_bench.json" --reps 3 \
      --json "$out/engine_channels_gpu.json" --md "$out/engine_channels_gpu.md" \
      >>"$out/gpu_check.log" 2>&1
  fi
  step compare 150 "$bin/sectorcrypt" compare --batch-sizes 4K,64K,1M,4M,16M,64M \
    --json "$out/compare.json" --plot "$out/compare.svg"
  grep -E '(FAILED|PASSED|SKIPPED|ERROR SUMMARY|exit [0-9])' "$out/gpu_check.log"
  cat "$out/gpu_datapath.json" "$out/hybrid.json" 2>/dev/null
}

case ${1:-} in
  pack) shift; pack "$@" ;;
  run) shift; run "${1:?OUT directory}" ;;
  *) echo "usage: $0 pack [build-dir] | run OUT-dir" >&2; exit 2 ;;
esac
