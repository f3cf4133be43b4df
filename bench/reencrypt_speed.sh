#!/usr/bin/env bash
# Speed of resumable in-place rewrites and of LUKS2 conversion, peers in the same run:
#  1. in-place `sectorcrypt encrypt` of an IMAGE_MIB file, --resilience none / checksum /
#     journal, alternating, REPS times each;
#  2. `sectorcrypt reencrypt --encrypt --header` (checksum resilience) against
#     `cryptsetup reencrypt --encrypt --header` (its default resilience) on the same file,
#     alternating; then a change of volume key the same way (cryptsetup offline). Both keyslots use pbkdf2 with 1000 iterations, so the PBKDF is not timed.
# Every run starts from a fresh copy with dirty pages synced; times include the final
# flush. Beside them, the disk's own floor: fio writing the same IMAGE_MIB to the file with
# O_DIRECT at queue depth 32 and a final fsync, timed by fio itself (its setup left out),
# the least time any tool that rewrites the file and flushes it can take here (no read,
# no crypt). Prints medians and ratios as markdown; raw times to
# bench/results/reencrypt_speed.log.
# Usage: bench/reencrypt_speed.sh [BUILD_DIR] [IMAGE_MIB] [REPS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
SC=$(realpath "${1:-build}")/host/cli/sectorcrypt MIB=${2:-1024} REPS=${3:-5}
W=$(mktemp -d "${4:-/tmp}/reencrypt-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
LOG=bench/results/reencrypt_speed.log
: > "$LOG"
head -c 64 /dev/urandom > "$W/key"
printf 'bench passphrase' > "$W/pass"
head -c $((MIB << 20)) /dev/urandom > "$W/src.img"

timed() {  # label, command...: appends "label ms" to the log
  local label=$1; shift
  cp "$W/src.img" "$W/w.img"; rm -f "$W/w.hdr" "$W/.w.img.sectorcrypt-resume"; sync
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "FAILED: $label: $*" >&2; exit 1; }
  sync "$W/w.img"
  e=$(date +%s%N)
  echo "$label $(( (e - s) / 1000000 ))" | tee -a "$LOG" >&2
}

for ((i = 0; i < REPS; i++)); do
  for mode in none checksum journal; do
    timed "inplace_$mode" "$SC" encrypt --resilience "$mode" -d "$W/key" --no-progress "$W/w.img" "$W/w.img"
  done
  cp "$W/src.img" "$W/w.img"; sync
  fio --name=floor --filename="$W/w.img" --rw=write --bs=1M --iodepth=32 --ioengine=io_uring \
    --direct=1 --size="${MIB}M" --end_fsync=1 --output-format=json |
    python3 -c 'import json, sys; print("disk_write_floor", json.load(sys.stdin)["jobs"][0]["job_runtime"])' |
    tee -a "$LOG" >&2
done
# A volume to re-key: encrypted with a known key and header, copied for every run.
"$SC" encrypt -d "$W/key" --no-progress "$W/src.img" "$W/enc.img"
cp "$W/src.img" "$W/w.img"
"$SC" reencrypt --encrypt --header "$W/enc.hdr" -d "$W/pass" --volume-key-file "$W/key" \
  --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --no-progress "$W/w.img"
timed_rekey() {  # label, command...
  local label=$1; shift
  cp "$W/enc.img" "$W/w.img"; cp "$W/enc.hdr" "$W/w.hdr"; rm -f "$W/w.hdr.sectorcrypt-new"; sync
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "FAILED: $label: $*" >&2; exit 1; }
  sync "$W/w.img"
  e=$(date +%s%N)
  echo "$label $(( (e - s) / 1000000 ))" | tee -a "$LOG" >&2
}
for ((i = 0; i < (REPS + 1) / 2; i++)); do
  timed_rekey rekey_sectorcrypt "$SC" reencrypt --header "$W/w.hdr" -d "$W/pass" \
    --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --no-progress "$W/w.img"
  timed_rekey rekey_cryptsetup cryptsetup reencrypt --header "$W/w.hdr" --key-file "$W/pass" \
    --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --force-offline-reencrypt -q "$W/w.img"
done

for ((i = 0; i < (REPS + 1) / 2; i++)); do
  timed reencrypt_sectorcrypt "$SC" reencrypt --encrypt --header "$W/w.hdr" -d "$W/pass" \
    --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --no-progress "$W/w.img"
  timed reencrypt_cryptsetup cryptsetup reencrypt --encrypt --type luks2 --header "$W/w.hdr" \
    --key-file "$W/pass" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q "$W/w.img"
done

bench/timings_table.py "$LOG" "$MIB" \
  "checksum / none throughput=inplace_checksum/inplace_none" \
  "journal / none throughput=inplace_journal/inplace_none" \
  "sectorcrypt reencrypt --encrypt / cryptsetup reencrypt --encrypt throughput=reencrypt_sectorcrypt/reencrypt_cryptsetup" \
  "disk write floor / cryptsetup reencrypt --encrypt (the most any rewrite reaches here) throughput=disk_write_floor/reencrypt_cryptsetup" \
  "sectorcrypt reencrypt --encrypt / disk write floor throughput=reencrypt_sectorcrypt/disk_write_floor" \
  "sectorcrypt key change / cryptsetup key change throughput=rekey_sectorcrypt/rekey_cryptsetup"
