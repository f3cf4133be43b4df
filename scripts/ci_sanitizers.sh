#!/usr/bin/env bash
# The test suite under sanitizers (issue 7), each in a tree of its own, without CUDA
# (no GPU to run it on, and nvcc does not build with -fsanitize), at -O1 with gcc:
#   asan   AddressSanitizer + UndefinedBehaviorSanitizer, any report fails the test
#   tsan   ThreadSanitizer
# Usage: scripts/ci_sanitizers.sh [asan|tsan|all]   (BUILD_PREFIX, JOBS to override)
#
# Everything not listed below runs in both stages, with the arguments of the normal build:
# among it the channel path (issue 11), in engine_tests' EngineChannel.* and in the stress
# tests stress_channels, stress_channels_fallback and stress_channels_workers (64
# producers on channels of their own beside the copy-path producers, the last with every
# channel request on the workers' lock-free intake; bounded by --seconds, so no shorter
# runs are needed here: under TSan they simply do fewer requests in the same time).
#
# Left out under sanitizers, and why:
#   label interposed_malloc  engine_alloc_test, engine_alloc_fi_test: they replace
#                            malloc/free/new, which the sanitizers' own allocators own
#   cli.CliCrypt.StreamsOneGibInBoundedMemory: 1 GiB through the CLI, minutes under ASan;
#                            the same code path is streamed by the smaller CLI tests
#   EngineBadConfig.RequireLockedMemoryNamesTheLimit: the sanitizer runtimes replace
#                            mlock() with a no-op that succeeds, so the limit never bites
#   cli.inplace_crash, cli.reencrypt_cryptsetup
#                            LD_PRELOAD an uninstrumented write-fault shim, which ASan
#                            refuses to load ahead of its runtime, and kills 256 MiB runs at
#                            instants sized for an optimized build
#   install.*                builds a consumer program against the installed library
#                            without the sanitizer runtime, which then refuses to start
#   nbdkit.*                 the filter is dlopen'ed by the system's uninstrumented nbdkit,
#                            which cannot load a module built with a sanitizer runtime; the
#                            filter's data path and option code run under the sanitizers in
#                            nbdkit_unit_tests, and host/luks2 in luks2.*
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
PREFIX=${BUILD_PREFIX:-build-}
JOBS=${JOBS:-$(nproc)}
EXCLUDE='StreamsOneGibInBoundedMemory|RequireLockedMemoryNamesTheLimit|^install\.|^nbdkit\.|^cli\.inplace_crash$|^cli\.reencrypt_cryptsetup$'

run() {  # name, sanitizer flags, [compile-only flags]
  local name=$1 flags=$2 compile_only=${3:-}
  local dir=${PREFIX}${name}
  local common="-O1 -g -fno-omit-frame-pointer ${flags} ${compile_only}"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSECTORCRYPT_ENABLE_CUDA=OFF -DSECTORCRYPT_BUILD_BENCH=OFF \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="${common}" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${common}" \
    -DCMAKE_EXE_LINKER_FLAGS="${flags}" -DCMAKE_SHARED_LINKER_FLAGS="${flags}"
  cmake --build "$dir" -j "$JOBS"
  # Sanitizers slow everything down: generous per-test time, the heavy ones left out.
  ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout 600 \
    -LE interposed_malloc -E "$EXCLUDE"
}

if [[ $MODE == asan || $MODE == all ]]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run asan "-fsanitize=address,undefined -fno-sanitize-recover=all"
fi
if [[ $MODE == tsan || $MODE == all ]]; then
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  # TSan needs the old mmap layout on kernels with high ASLR entropy.
  # -Wno-tsan: gcc warns that TSan does not model atomic_thread_fence. The engine's fences
  # order its wake-up hand-shakes (a store, a fence, a load on each side: engine/
  # completion.cc, channel_intake.cc), not data; data is handed over by acquire/release
  # atomics and mutexes, which TSan does model, so it still sees every data race.
  run tsan "-fsanitize=thread" "-Wno-tsan"
fi
