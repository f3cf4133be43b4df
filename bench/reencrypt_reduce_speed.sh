#!/usr/bin/env bash
# Speed of `reencrypt --encrypt --reduce-device-size` (the header inside the image, the data
# moved while it is encrypted) against cryptsetup's own on the same file, alternating:
# sectorcrypt (datashift: zones of SIZE/2, two syncs each) and `cryptsetup reencrypt
# --encrypt --reduce-device-size --force-offline-reencrypt` (its datashift resilience).
# Both keyslots pbkdf2 with 1000 iterations, so the PBKDF is not timed. Every run starts
# from a fresh copy with dirty pages synced; times include the final sync. Prints a
# markdown table and the ratio; raw times to bench/results/reencrypt_reduce_speed.log.
# Usage: bench/reencrypt_reduce_speed.sh [BUILD_DIR] [IMAGE_MIB] [REPS] [SIZE] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
SC=$(realpath "${1:-build}")/host/cli/sectorcrypt MIB=${2:-1024} REPS=${3:-3} SIZE=${4:-32M}
W=$(mktemp -d "${5:-/tmp}/reduce-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
LOG=bench/results/reencrypt_reduce_speed.log
: > "$LOG"
printf 'bench passphrase' > "$W/pass"
head -c $((MIB << 20)) /dev/urandom > "$W/src.img"

timed() {  # label, command...: appends "label ms" to the log
  local label=$1; shift
  cp "$W/src.img" "$W/w.img"; rm -f "$W"/.w.img.sectorcrypt-* "$W"/LUKS2-temp-*; sync
  local s e
  s=$(date +%s%N)
  (cd "$W" && "$@") >/dev/null 2>&1 || { echo "FAILED: $label: $*" >&2; exit 1; }
  sync "$W/w.img"
  e=$(date +%s%N)
  echo "$label $(( (e - s) / 1000000 ))" | tee -a "$LOG" >&2
}
for ((i = 0; i < REPS; i++)); do
  timed reduce_sectorcrypt "$SC" reencrypt --encrypt --reduce-device-size "$SIZE" -d pass \
    --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --no-progress w.img
  timed reduce_cryptsetup cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size "$SIZE" \
    --key-file pass --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --force-offline-reencrypt -q w.img
done

bench/timings_table.py "$LOG" "$MIB" \
  "sectorcrypt / cryptsetup --reduce-device-size throughput=reduce_sectorcrypt/reduce_cryptsetup"
