#!/usr/bin/env bash
# `sectorcrypt reencrypt` against the real cryptsetup 2.6.1 on regular files (no
# device-mapper or loop device here): cryptsetup reencrypt works offline on a file with a
# detached --header (--decrypt needs --force-offline-reencrypt), and with the header inside
# the image made by --encrypt --reduce-device-size (its --decrypt then exports the header
# to a --header file it creates and moves the data back), and with the header inside an
# image luksFormat made (a key change in place; --decrypt only with --header NEWFILE, the
# data moved to byte 0). What sectorcrypt makes, cryptsetup reads (luksDump, the volume
# key) and decrypts back to the original; what cryptsetup makes, sectorcrypt decrypts.
# Usage: reencrypt_cryptsetup_test.sh SECTORCRYPT FAULT_SHIM (absolute paths)
set -euo pipefail
SC=$1 SHIM=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
die() { echo "FAIL: $*" >&2; exit 1; }
FAST=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)
CS_FAST=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)
printf 'correct horse battery staple' > pass
printf 'wrong' > wrong.pass
head -c 64 /dev/urandom > vk
head -c $((16 << 20)) /dev/urandom > plain.img

# 1. sectorcrypt --encrypt, with the volume key given: the data is what plain-mode
#    encryption with that key gives, cryptsetup dumps that key, and decrypts the volume.
for ss in 512 4096; do
  cp plain.img a.img
  rm -f a.hdr
  "$SC" reencrypt --encrypt --header a.hdr -d pass --volume-key-file vk --sector-size $ss \
    "${FAST[@]}" --no-progress a.img
  [[ -e a.hdr && ! -e a.hdr.sectorcrypt-new && ! -e .a.img.sectorcrypt-resume ]] || die "files left: $(ls -a)"
  "$SC" encrypt -d vk --sector-size $ss --no-progress plain.img want.img
  cmp -s a.img want.img || die "sector $ss: data differs from plain-mode encryption with the key"
  dump=$(cryptsetup luksDump a.hdr)
  grep -q "cipher: aes-xts-plain64" <<<"$dump" || die "luksDump: no aes-xts-plain64: $dump"
  grep -q "sector: $ss \[bytes\]" <<<"$dump" || die "luksDump: sector size is not $ss: $dump"
  grep -q "offset: 0 \[bytes\]" <<<"$dump" || die "luksDump: data offset is not 0: $dump"
  cryptsetup luksDump a.hdr --dump-volume-key --volume-key-file dumped.vk --key-file pass -q >/dev/null
  cmp -s dumped.vk vk || die "cryptsetup unlocks another volume key"
  rm -f dumped.vk
  # A change of volume key (neither --encrypt nor --decrypt), in one pass.
  head -c 64 /dev/urandom > vk2
  "$SC" reencrypt --header a.hdr -d pass --volume-key-file vk2 "${FAST[@]}" --no-progress a.img
  [[ ! -e a.hdr.sectorcrypt-new && ! -e .a.img.sectorcrypt-resume ]] || die "key change left files: $(ls -a)"
  "$SC" encrypt -d vk2 --sector-size $ss --no-progress plain.img want2.img
  cmp -s a.img want2.img || die "sector $ss: key change: data differs from encryption with the new key"
  cryptsetup luksDump a.hdr --dump-volume-key --volume-key-file dumped.vk --key-file pass -q >/dev/null
  cmp -s dumped.vk vk2 || die "after the key change cryptsetup unlocks another volume key"
  rm -f dumped.vk
  grep -q "sector: $ss \[bytes\]" <<<"$(cryptsetup luksDump a.hdr)" || die "key change lost the sector size"
  cryptsetup reencrypt --decrypt --header a.hdr --key-file pass -q --force-offline-reencrypt a.img
  cmp -s a.img plain.img || die "sector $ss: cryptsetup reencrypt --decrypt did not give the original"
  echo "sector $ss: cryptsetup decrypts what sectorcrypt encrypted and re-keyed"
done

# 2. A random volume key and an argon2id keyslot (cheap parameters: the test is about the
#    format, and it also runs under the sanitizers): still cryptsetup's.
cp plain.img b.img
"$SC" reencrypt --encrypt --header b.hdr -d pass --no-progress --pbkdf argon2id \
  --pbkdf-force-iterations 4 b.img
cryptsetup luksDump b.hdr | grep -q "PBKDF:      argon2id" || die "no argon2id keyslot"
cmp -s b.img plain.img && die "b.img was not encrypted"
cryptsetup reencrypt --decrypt --header b.hdr --key-file pass -q --force-offline-reencrypt b.img
cmp -s b.img plain.img || die "random key: cryptsetup did not decrypt to the original"

# 3. cryptsetup --encrypt, sectorcrypt --decrypt, with --progress-json in cryptsetup's names.
cp plain.img c.img
cryptsetup reencrypt --encrypt --type luks2 "${CS_FAST[@]}" --header c.hdr --key-file pass -q c.img
cmp -s c.img plain.img && die "cryptsetup did not encrypt"
"$SC" reencrypt --decrypt --header c.hdr -d wrong.pass --no-progress c.img 2>err && die "a wrong passphrase was accepted"
grep -qi "passphrase\|key" err || die "wrong passphrase: $(cat err)"
"$SC" reencrypt --decrypt --header c.hdr -d pass --progress-json c.img > progress.json 2>/dev/null
cmp -s c.img plain.img || die "sectorcrypt did not decrypt what cryptsetup encrypted"
tail -1 progress.json | python3 -c '
import json, sys
p = json.loads(sys.stdin.read())
for k in ("device", "device_bytes", "device_size", "speed", "eta_ms", "time_ms"):
    assert k in p, k
assert p["device_bytes"] == p["device_size"] == str(16 << 20), p
' || die "--progress-json: $(cat progress.json)"
echo "sectorcrypt decrypts what cryptsetup encrypted"

# 4. Refusals, each before any data is written.
cp plain.img d.img
"$SC" reencrypt --encrypt --header a.hdr -d pass --no-progress d.img 2>err && die "overwrote a header"
grep -q "exists; not overwriting" err || die "existing header: $(cat err)"
cmp -s d.img plain.img || die "a refused --encrypt wrote data"
"$SC" reencrypt --decrypt -d pass d.img 2>err && die "--decrypt without --header ran"
grep -q -- "--header FILE is needed" err || die "no header: $(cat err)"
"$SC" reencrypt --encrypt --decrypt --header x -d pass d.img 2>err && die "both directions ran"
grep -q "exclude each other" err || die "both: $(cat err)"
"$SC" reencrypt --decrypt --header missing.hdr -d pass d.img 2>err && die "a missing header was accepted"
grep -q "missing.hdr" err || die "missing header not named: $(cat err)"
cmp -s d.img plain.img || die "a refused run wrote data"
# 5. An interrupted --decrypt is not taken for a finished run by another action: a key
#    change is refused and the header, the data and the resume file stay; --decrypt resumes.
cp plain.img e.img
"$SC" reencrypt --encrypt --header e.hdr -d pass "${FAST[@]}" --no-progress e.img
cp e.hdr e.hdr.saved
rc=0
SECTORCRYPT_TEST_FAULT_PATH=/e.img SECTORCRYPT_TEST_FAULT_AFTER=$((8 << 20)) \
  SECTORCRYPT_TEST_FAULT_ACTION=kill LD_PRELOAD="$SHIM" \
  "$SC" reencrypt --decrypt --header e.hdr -d pass --no-progress e.img 2>/dev/null || rc=$?
(( rc == 137 )) && [[ -s .e.img.sectorcrypt-resume ]] || die "the --decrypt kill did not land ($rc)"
cp e.img e.half
"$SC" reencrypt --header e.hdr -d pass "${FAST[@]}" --no-progress e.img 2>err && die "re-keyed a half-decrypted volume"
grep -q "belongs to an interrupted decryption" err || die "key change after an interrupted --decrypt: $(cat err)"
cmp -s e.hdr e.hdr.saved && cmp -s e.img e.half && [[ -s .e.img.sectorcrypt-resume && ! -e e.hdr.sectorcrypt-new ]] ||
  die "the refused key change changed something"
"$SC" reencrypt --encrypt --header e.hdr -d pass "${FAST[@]}" --no-progress e.img 2>err && die "--encrypt ran on a half-decrypted volume"
grep -q "belongs to an interrupted decryption" err || die "--encrypt after an interrupted --decrypt: $(cat err)"
cmp -s e.hdr e.hdr.saved && cmp -s e.img e.half && [[ ! -e e.hdr.sectorcrypt-new ]] || die "the refused --encrypt changed something"
"$SC" reencrypt --decrypt --header e.hdr -d pass --no-progress e.img 2>/dev/null
cmp -s e.img plain.img || die "the resumed --decrypt did not give the original"
[[ ! -e .e.img.sectorcrypt-resume ]] || die "the resumed --decrypt left its resume file"
echo "an interrupted --decrypt is resumed, not overridden"

# 6. --reduce-device-size: the header inside the image. cryptsetup 2.6.1 puts the data
#    segment at SIZE/2 (the header's room, its keyslots area filling it) and moves the data
#    there; the volume's first (size - SIZE) bytes are the original's. sectorcrypt lays it
#    out the same, cryptsetup reads it and moves it back; and the other way round.
for spec in "32M 32M 512" "2048S 1M 4096" "8MiB 8M 512"; do
  read -r size bytes ss <<<"$spec"
  bytes=$(( $(numfmt --from=iec "$bytes") ))
  room=$((bytes / 2))
  keep=$(( (40 << 20) - bytes ))  # the image: 40 MiB
  head -c $((40 << 20)) /dev/urandom > r.orig
  cp r.orig r.img
  "$SC" reencrypt --encrypt --reduce-device-size "$size" --sector-size "$ss" -d pass \
    --volume-key-file vk "${FAST[@]}" --no-progress r.img
  [[ ! -e .r.img.sectorcrypt-resume && ! -e .r.img.sectorcrypt-new-header ]] || die "reduce $size: files left: $(ls -a)"
  dump=$(cryptsetup luksDump r.img)
  grep -q "offset: $room \[bytes\]" <<<"$dump" || die "reduce $size: data offset is not $room: $dump"
  grep -q "length: (whole device)" <<<"$dump" || die "reduce $size: not a whole-device segment: $dump"
  grep -q "Keyslots area:[[:space:]]*$((room - 32768)) \[bytes\]" <<<"$dump" || die "reduce $size: keyslots area is not room - 32 KiB: $dump"
  grep -q "sector: $ss \[bytes\]" <<<"$dump" || die "reduce $size: sector size is not $ss: $dump"
  cryptsetup luksDump r.img --dump-volume-key --volume-key-file dumped.vk --key-file pass -q >/dev/null
  cmp -s dumped.vk vk || die "reduce $size: cryptsetup unlocks another volume key"
  rm -f dumped.vk
  head -c $(( (40 << 20) - room )) r.orig > r.part
  "$SC" encrypt -d vk --sector-size "$ss" --no-progress r.part r.want
  cmp -s -i "$room:0" r.img r.want || die "reduce $size: the data area differs from encryption with the key"
  "$SC" decrypt --type luks2 -d pass --no-progress r.img r.dec
  cmp -s -n "$keep" r.dec r.orig || die "reduce $size: sectorcrypt's own decrypt differs"
  rm -f r.hdr
  cryptsetup reencrypt --decrypt --header r.hdr --key-file pass -q --force-offline-reencrypt r.img
  cmp -s -n "$keep" r.img r.orig || die "reduce $size: cryptsetup reencrypt --decrypt did not give the original"
  echo "reduce $size sector $ss: cryptsetup reads and decrypts sectorcrypt's in-image header"
done
# cryptsetup's own --reduce-device-size result, decrypted by sectorcrypt.
head -c $((24 << 20)) /dev/urandom > r.orig
cp r.orig r.img
cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 8M "${CS_FAST[@]}" --key-file pass -q \
  --force-offline-reencrypt r.img
grep -q "offset: $((4 << 20)) \[bytes\]" <<<"$(cryptsetup luksDump r.img)" || die "cryptsetup's data offset is not SIZE/2"
"$SC" decrypt --type luks2 -d pass --no-progress r.img r.dec
cmp -s -n $((16 << 20)) r.dec r.orig || die "sectorcrypt did not decrypt cryptsetup's --reduce-device-size volume"
echo "sectorcrypt decrypts cryptsetup's in-image header"
# With --header as well, cryptsetup 2.6.1 only sizes the detached header by SIZE (keyslots
# area SIZE - 32 KiB) and encrypts the data where it is: sectorcrypt does the same.
cp plain.img g.img
rm -f g.hdr
"$SC" reencrypt --encrypt --header g.hdr --reduce-device-size 8M -d pass --volume-key-file vk \
  "${FAST[@]}" --no-progress g.img
[[ $(stat -c %s g.hdr) == $((8 << 20)) ]] || die "--header with --reduce-device-size 8M: header is $(stat -c %s g.hdr) bytes"
dump=$(cryptsetup luksDump g.hdr)
grep -q "offset: 0 \[bytes\]" <<<"$dump" && grep -q "Keyslots area:[[:space:]]*$(( (8 << 20) - 32768 )) \[bytes\]" <<<"$dump" ||
  die "--header with --reduce-device-size: not cryptsetup's layout: $dump"
"$SC" encrypt -d vk --no-progress plain.img want.img
cmp -s g.img want.img || die "--header with --reduce-device-size: the data is not encrypted in place"
cryptsetup reencrypt --decrypt --header g.hdr --key-file pass -q --force-offline-reencrypt g.img
cmp -s g.img plain.img || die "--header with --reduce-device-size: cryptsetup did not decrypt it"
echo "--header with --reduce-device-size: a detached header of SIZE, as cryptsetup's"
# Bad --reduce-device-size: one clear error each, nothing written.
cp plain.img f.img
bad() {  # expected-text, args...
  local want=$1; shift
  "$SC" reencrypt -d pass --no-progress "$@" f.img 2>err && die "accepted: $*"
  grep -q -- "$want" err || die "$*: $(cat err)"
  cmp -s f.img plain.img || die "a refused run wrote data: $*"
  [[ ! -e .f.img.sectorcrypt-resume && ! -e .f.img.sectorcrypt-new-header ]] || die "a refused run left files: $*"
}
bad "multiple of 8 KiB" --encrypt --reduce-device-size 1052672
bad "multiple of 8 KiB" --encrypt --reduce-device-size 12345
bad "too small for a LUKS2 header" --encrypt --reduce-device-size 512K
bad "too small for a LUKS2 header" --encrypt --reduce-device-size 568K
# The smallest SIZE is cryptsetup's: 576K for a 512-bit key works for both, 568K for neither.
head -c $((4 << 20)) /dev/urandom > m.img
cp m.img m2.img
cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 568K "${CS_FAST[@]}" --key-file pass -q m2.img \
  >/dev/null 2>&1 && die "cryptsetup took 568K: the minimum here is not cryptsetup's"
cp m.img m2.img
cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 576K "${CS_FAST[@]}" --key-file pass -q m2.img 2>/dev/null
"$SC" reencrypt --encrypt --reduce-device-size 576K -d pass "${FAST[@]}" --no-progress m.img 2>/dev/null
layout() { cryptsetup luksDump "$1" | grep -E 'offset:|Keyslots area|Area length'; }
[[ "$(layout m.img)" == "$(layout m2.img)" ]] ||
  die "576K: the layout differs from cryptsetup's: $(layout m.img) / $(layout m2.img)"
bad "is not larger than --reduce-device-size" --encrypt --reduce-device-size 16M
bad "is not larger than --reduce-device-size" --encrypt --reduce-device-size 32M
bad "at most 1 GiB" --encrypt --reduce-device-size 2G
bad "is for --encrypt" --decrypt --reduce-device-size 32M
bad "is for --encrypt" --header a.hdr --reduce-device-size 32M
bad "is not a size" --encrypt --reduce-device-size 32X
# An interrupted shift is that command's to finish: a detached-header run is refused.
cp plain.img f2.img
rc=0
SECTORCRYPT_TEST_FAULT_PATH=/f2.img SECTORCRYPT_TEST_FAULT_AFTER=$((3 << 20)) \
  SECTORCRYPT_TEST_FAULT_ACTION=kill LD_PRELOAD="$SHIM" \
  "$SC" reencrypt --encrypt --reduce-device-size 2M -d pass "${FAST[@]}" --no-progress f2.img 2>/dev/null || rc=$?
(( rc == 137 )) && [[ -s .f2.img.sectorcrypt-resume && -s .f2.img.sectorcrypt-new-header ]] || die "the shift kill did not land ($rc)"
cp f2.img f2.half
"$SC" reencrypt --encrypt --header f2.hdr -d pass "${FAST[@]}" --no-progress f2.img 2>err && die "a detached --encrypt ran over a half-done shift"
grep -q "belongs to an interrupted --encrypt --reduce-device-size" err || die "detached over a shift: $(cat err)"
"$SC" reencrypt --encrypt --reduce-device-size 4M -d pass "${FAST[@]}" --no-progress f2.img 2>err && die "another SIZE resumed the shift"
grep -q "with --reduce-device-size 2097152 bytes" err || die "another SIZE: $(cat err)"
cmp -s f2.img f2.half && [[ ! -e f2.hdr && ! -e f2.hdr.sectorcrypt-new ]] || die "a refused rerun changed something"
"$SC" reencrypt --encrypt --reduce-device-size 2M -d pass "${FAST[@]}" --no-progress f2.img 2>/dev/null
"$SC" decrypt --type luks2 -d pass --no-progress f2.img f2.dec
cmp -s -n $(( (16 << 20) - (2 << 20) )) f2.dec plain.img || die "the resumed shift did not give the original"
echo "bad --reduce-device-size refused"

# 7. The header inside an image that luksFormat made (data at 16 MiB), holding known data.
#    sectorcrypt changes its key in place (UUID kept) and cryptsetup opens the result and
#    decrypts it; sectorcrypt --decrypt --header NEWFILE moves the plain data to byte 0 as
#    cryptsetup 2.6.1's own does, leaving NEWFILE with no keyslot.
state_left() { ls -a | grep -E 'sectorcrypt-(resume|new-header|export)' || true; }
for ss in 512 4096; do
  head -c $((20 << 20)) /dev/urandom > l.plain
  head -c $((36 << 20)) /dev/zero > l.img
  cryptsetup luksFormat --type luks2 --sector-size $ss "${CS_FAST[@]}" --key-file pass -q l.img
  grep -q "offset: $((16 << 20)) \[bytes\]" <<<"$(cryptsetup luksDump l.img)" || die "luksFormat: data not at 16 MiB"
  rm -f l.vk
  cryptsetup luksDump l.img --dump-volume-key --volume-key-file l.vk --key-file pass -q >/dev/null
  "$SC" encrypt -d l.vk --sector-size $ss --no-progress l.plain l.area
  dd if=l.area of=l.img bs=1M seek=16 conv=notrunc status=none
  uuid=$(cryptsetup luksUUID l.img)
  cp l.img l.formatted
  # cryptsetup 2.6.1 itself: no --decrypt of it without --header.
  cryptsetup reencrypt --decrypt --key-file pass -q --force-offline-reencrypt l.img 2>err && die "cryptsetup decrypted without --header"
  grep -q "LUKS2 decryption requires --header option" err || die "cryptsetup without --header: $(cat err)"
  cmp -s l.img l.formatted || die "cryptsetup's refusal wrote"

  head -c 64 /dev/urandom > l.vk2
  "$SC" reencrypt -d pass --volume-key-file l.vk2 "${FAST[@]}" --no-progress l.img
  [[ -z $(state_left) ]] || die "in-image key change left files: $(state_left)"
  dump=$(cryptsetup luksDump l.img)
  grep -q "offset: $((16 << 20)) \[bytes\]" <<<"$dump" && grep -q "sector: $ss \[bytes\]" <<<"$dump" ||
    die "in-image key change: not the layout it had: $dump"
  [[ $(cryptsetup luksUUID l.img) == "$uuid" ]] || die "in-image key change: the UUID changed"
  cryptsetup luksDump l.img --dump-volume-key --volume-key-file dumped.vk --key-file pass -q >/dev/null
  cmp -s dumped.vk l.vk2 || die "in-image key change: cryptsetup unlocks another volume key"
  rm -f dumped.vk
  "$SC" encrypt -d l.vk2 --sector-size $ss --no-progress l.plain l.want
  cmp -s -i $((16 << 20)):0 l.img l.want || die "in-image key change: data differs from encryption with the new key"
  cp l.img l2.img
  rm -f l2.hdr
  cryptsetup reencrypt --decrypt --header l2.hdr --key-file pass -q --force-offline-reencrypt l2.img
  cmp -s -n $((20 << 20)) l2.img l.plain || die "cryptsetup's --decrypt of the re-keyed volume did not give the original"

  rm -f l.hdr
  "$SC" reencrypt --decrypt --header l.hdr -d pass --no-progress l.img 2>/dev/null
  [[ -z $(state_left) ]] || die "in-image --decrypt left files: $(state_left)"
  cmp -s -n $((20 << 20)) l.img l.plain || die "sectorcrypt --decrypt did not move the original to byte 0"
  cmp -s -n $((20 << 20)) l.img l2.img || die "sectorcrypt's and cryptsetup's --decrypt differ"
  [[ $(stat -c %s l.hdr) == $((16 << 20)) ]] || die "the exported header is not the 16 MiB before the data"
  dump=$(cryptsetup luksDump l.hdr)
  grep -q '^  [0-9]*: luks2' <<<"$dump" && die "the exported header still has a keyslot: $dump"
  "$SC" reencrypt --decrypt --header l.hdr -d pass --no-progress l.img 2>err && die "a rerun decrypted again"
  grep -q "has no keyslot" err || die "rerun on the exported header: $(cat err)"
  cmp -s -n $((20 << 20)) l.img l.plain || die "the refused rerun wrote"
  echo "sector $ss: a luksFormat volume re-keyed and decrypted in place, as cryptsetup does"
done
# cryptsetup's own key change of such a volume (offline); sectorcrypt decrypts the result
# (cryptsetup 2.6.1 itself fails on it: "Failed to initialize LUKS2 reencryption in metadata").
cp l.formatted l.img
cryptsetup reencrypt "${CS_FAST[@]}" --key-file pass -q --force-offline-reencrypt l.img
cmp -s l.img l.formatted && die "cryptsetup did not change the key"
rm -f l.hdr
"$SC" reencrypt --decrypt --header l.hdr -d pass --no-progress l.img 2>/dev/null
cmp -s -n $((20 << 20)) l.img l.plain || die "sectorcrypt did not decrypt cryptsetup's re-keyed volume"
echo "sectorcrypt decrypts a volume cryptsetup re-keyed in place"
# Volumes with the data moved up for their header: sectorcrypt's and cryptsetup's
# --reduce-device-size, decrypted in place by sectorcrypt; the original comes back at
# byte 0: the first size - SIZE/2 bytes that sectorcrypt's volume holds, or the first
# size - SIZE of cryptsetup's (the rest of its volume is left over from its move).
for maker in sectorcrypt cryptsetup; do
  head -c $((24 << 20)) /dev/urandom > u.orig
  cp u.orig u.img
  keep=$((20 << 20))
  if [[ $maker == sectorcrypt ]]; then
    "$SC" reencrypt --encrypt --reduce-device-size 8M -d pass "${FAST[@]}" --no-progress u.img
  else
    keep=$((16 << 20))
    cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 8M "${CS_FAST[@]}" --key-file pass -q \
      --force-offline-reencrypt u.img
  fi
  rm -f u.hdr
  "$SC" reencrypt --decrypt --header u.hdr -d pass --no-progress u.img 2>/dev/null
  cmp -s -n $keep u.img u.orig || die "--decrypt of $maker's --reduce-device-size did not give the original"
  [[ -z $(state_left) ]] || die "--decrypt of $maker's volume left files: $(state_left)"
  echo "sectorcrypt --decrypt undoes $maker's --reduce-device-size"
done
# An interrupted in-image key change is that command's to finish: --decrypt is refused and
# nothing changes; the key change resumes.
cp l.formatted v.img
rc=0
SECTORCRYPT_TEST_FAULT_PATH=/v.img SECTORCRYPT_TEST_FAULT_AFTER=$((8 << 20)) \
  SECTORCRYPT_TEST_FAULT_ACTION=kill LD_PRELOAD="$SHIM" \
  "$SC" reencrypt -d pass --volume-key-file l.vk2 "${FAST[@]}" --no-progress v.img 2>/dev/null || rc=$?
(( rc == 137 )) && [[ -s .v.img.sectorcrypt-resume ]] || die "the in-image key change kill did not land ($rc)"
cp v.img v.half
"$SC" reencrypt --decrypt --header v.hdr -d pass --no-progress v.img 2>err && die "--decrypt ran over a half-done key change"
grep -q "belongs to an interrupted key change" err || die "--decrypt over a key change: $(cat err)"
cmp -s v.img v.half && [[ ! -e v.hdr && ! -e v.hdr.sectorcrypt-export ]] || die "the refused --decrypt changed something"
"$SC" reencrypt -d pass --volume-key-file l.vk2 "${FAST[@]}" --no-progress v.img 2>/dev/null
"$SC" decrypt --type luks2 -d pass --no-progress v.img v.dec
cmp -s v.dec l.plain || die "the resumed in-image key change lost data"
echo "an interrupted in-image key change is resumed, not overridden"
echo "PASS"
