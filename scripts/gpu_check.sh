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
              bench/xts_gpu bench/engine_bench host/cli/sectorcrypt)
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
  { nvidia-smi -L; grep PRETTY_NAME /etc/os-release; nproc; } 2>&1 | tee "$out/gpu_check.log"
  export LD_LIBRARY_PATH=$PWD/$bundle/lib
  local bin=$bundle/bin
  step cuda_tests 120 "$bin/sectorcrypt_cuda_tests"
  step engine_cuda_tests 120 "$bin/engine_tests" --gtest_filter='*Cuda*:*cuda*'
  SECTORCRYPT_ALLOC_TRACE=8 step engine_alloc_test 120 "$bin/engine_alloc_test"
  step engine_fault_tests 120 "$bin/engine_fault_tests"
  if command -v compute-sanitizer >/dev/null; then
    step memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 9 \
      "$bin/sectorcrypt_cuda_tests" --gtest_filter='CudaLaunch.*:*Random*:*Variants*'
  fi
  step xts_gpu 200 "$bin/xts_gpu" --benchmark_min_time=0.2 \
    --benchmark_out="$out/xts_gpu.json" --benchmark_out_format=json
  step engine_bench 150 "$bin/engine_bench" \
    --benchmark_filter='BM_Engine/backend:(0|1)/threads:(1|2|4)/sector:4096/slots:16/slot_KiB:1024/buf_KiB:65536|BM_EngineQueued/backend:1|BM_Latency4K/backend:(0|1)' \
    --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_counters_tabular=true \
    --benchmark_out="$out/engine_bench_gpu.json" --benchmark_out_format=json
  step compare 90 "$bin/sectorcrypt" compare --json "$out/compare.json" --plot "$out/compare.svg"
  grep -E '(FAILED|PASSED|SKIPPED|ERROR SUMMARY)' "$out/gpu_check.log"
}

case ${1:-} in
  pack) shift; pack "$@" ;;
  run) shift; run "${1:?OUT directory}" ;;
  *) echo "usage: $0 pack [build-dir] | run OUT-dir" >&2; exit 2 ;;
esac
