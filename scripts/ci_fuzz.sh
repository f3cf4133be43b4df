#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in their own tree (everything instrumented for
# coverage, ASan+UBSan) and runs each for a bounded time from its committed seed corpus.
# Usage: scripts/ci_fuzz.sh [seconds per fuzzer, default 45]   (BUILD_DIR, JOBS to override)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-45}
DIR=${BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-$(nproc)}
CC_=$(command -v clang-14 || command -v clang)
CXX_=$(command -v clang++-14 || command -v clang++)
FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CC_" -DCMAKE_CXX_COMPILER="$CXX_" \
  -DSECTORCRYPT_ENABLE_CUDA=OFF -DSECTORCRYPT_BUILD_TESTS=OFF -DSECTORCRYPT_BUILD_BENCH=OFF \
  -DSECTORCRYPT_BUILD_FUZZERS=ON \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="$FLAGS" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$FLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
cmake --build "$DIR" -j "$JOBS" --target fuzz_cli_parsing fuzz_cli_argv fuzz_engine
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for f in fuzz_cli_parsing fuzz_cli_argv fuzz_engine; do
  # New inputs go to a scratch copy; the committed corpus stays as it is.
  work=$(mktemp -d)
  cp tests/fuzz/corpus/$f/* "$work"/
  echo "== $f: ${SECONDS_EACH} s"
  rc=0
  "$DIR/tests/fuzz/$f" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=20 \
    -artifact_prefix="$DIR/" -print_final_stats=1 "$work" > "$DIR/$f.log" 2>&1 || rc=$?
  rm -rf "$work"
  if [[ $rc -ne 0 ]]; then
    tail -n 60 "$DIR/$f.log"
    echo "$f failed (exit $rc); the input is in $DIR/crash-*" >&2
    exit "$rc"
  fi
  grep -E "DONE|stat::" "$DIR/$f.log"
done
