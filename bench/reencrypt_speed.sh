#!/usr/bin/env bash
# Speed of resumable in-place rewrites and of LUKS2 conversion, peers in the same run:
#  1. in-place `sectorcrypt encrypt` of an IMAGE_MIB file, --resilience none / checksum /
#     journal, alternating, REPS times each;
#  2. `sectorcrypt reencrypt --encrypt --header` (checksum resilience) against
#     `cryptsetup reencrypt --encrypt --header` (its default resilience) on the same file,
#     alternating; then a change of volume key the same way (cryptsetup offline). Both keyslots use pbkdf2 with 1000 iterations, so the PBKDF is not timed.
# Every run starts from a fresh copy with dirty pages synced; times include the final
# flush. Prints medians and ratios as markdown; raw times to bench/results/reencrypt_speed.log.
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

python3 - "$LOG" "$MIB" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    times.setdefault(k, []).append(int(v))
mib = int(sys.argv[2])
med = {k: statistics.median(v) for k, v in times.items()}
print(f"| run | n | median ms | MiB/s | all ms |\n| --- | --- | --- | --- | --- |")
for k, v in times.items():
    print(f"| {k} | {len(v)} | {med[k]:.0f} | {mib * 1000 / med[k]:.0f} | {' '.join(map(str, v))} |")
print()
print(f"- checksum / none throughput: {med['inplace_none'] / med['inplace_checksum']:.2f}x")
print(f"- journal / none throughput: {med['inplace_none'] / med['inplace_journal']:.2f}x")
print(f"- sectorcrypt reencrypt --encrypt / cryptsetup reencrypt --encrypt throughput: "
      f"{med['reencrypt_cryptsetup'] / med['reencrypt_sectorcrypt']:.1f}x")
print(f"- sectorcrypt key change / cryptsetup key change throughput: "
      f"{med['rekey_cryptsetup'] / med['rekey_sectorcrypt']:.1f}x")
PY
