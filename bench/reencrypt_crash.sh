#!/usr/bin/env bash
# The crash test at bench scale: >= 50 SIGKILLs at random instants per mode (in-place
# encrypt/decrypt with checksum and journal resilience, reencrypt --encrypt/--decrypt,
# reencrypt --encrypt --reduce-device-size, a key change and --decrypt of a volume whose
# header is inside the image), each run resumed and compared byte for byte.
# Writes bench/results/reencrypt_kills.log (ONLY=reduce: the --reduce-device-size mode
# alone, to bench/results/reencrypt_kills_reduce.log; ONLY=attached: the two modes of a
# header inside the image, to bench/results/reencrypt_kills_attached.log).
# Usage: bench/reencrypt_crash.sh [BUILD_DIR] [KILLS] [IMAGE_MIB] [ONLY]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(realpath "${1:-build}") KILLS=${2:-50} MIB=${3:-256} ONLY=${4:-}
OUT=bench/results/reencrypt_kills${ONLY:+_$ONLY}.log
{
  echo "# bench/reencrypt_crash.sh $BUILD $KILLS $MIB $ONLY"
  echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# git $(git rev-parse --short HEAD)"
  tests/cli/inplace_crash_test.sh "$BUILD/host/cli/sectorcrypt" \
    "$BUILD/tests/cli/libwrite_fault_shim.so" "$KILLS" "$MIB" "$RANDOM" $ONLY 2>&1 | grep -v ' Killed '
} | tee "$OUT"
