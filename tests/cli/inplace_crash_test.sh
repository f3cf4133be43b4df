#!/usr/bin/env bash
# Kills in-place `sectorcrypt encrypt|decrypt` runs with SIGKILL at random instants, fails
# their writes part-way, tears their resume file at a kill, reruns the same command until
# it completes, and compares the result byte for byte with an uninterrupted run; the same
# for `reencrypt --encrypt` and `--decrypt` with a detached header, for `reencrypt
# --encrypt --reduce-device-size` (the header inside the image, the data moved), and for a
# key change and `--decrypt` of a volume whose header is inside the image.
# Usage: inplace_crash_test.sh SECTORCRYPT FAULT_SHIM [KILLS_PER_MODE] [IMAGE_MIB] [SEED] [ONLY]
# (ONLY=reduce: the --reduce-device-size mode alone; ONLY=attached: the two modes of a
# header inside the image alone, as bench/reencrypt_crash.sh can ask)
# (absolute paths: it runs in a temporary directory)
# Prints one "kills MODE DIR landed=N resumed=N differ=0" line per mode, for the bench.
set -euo pipefail
SC=$1 SHIM=$2 KILLS=${3:-4} MIB=${4:-256} SEED=${5:-$$} ONLY=${6:-}
RANDOM=$SEED
echo "seed $SEED, $KILLS kills per mode, ${MIB} MiB image"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
head -c 64 /dev/urandom > key
head -c 64 /dev/urandom > other.key
head -c $((MIB << 20)) /dev/urandom > plain.img
"$SC" encrypt -d key --no-progress plain.img cipher.img   # out of place: the reference

die() { echo "FAIL: $*" >&2; exit 1; }
same() { cmp -s "$1" "$2" || die "$3: $(cmp -l "$1" "$2" | wc -l) bytes differ"; }

run_to_end() {  # dir, mode, extra...: reruns until the command succeeds (at most 3 tries)
  local dir=$1 mode=$2; shift 2
  for _ in 1 2 3; do
    "$SC" "$dir" --resilience "$mode" -d key --no-progress "$@" w.img w.img 2>>log && return 0
  done
  cat log >&2; die "$dir/$mode did not complete on rerun"
}

# Seconds as a decimal: uniform in [0, $1 ms).
rand_delay() { printf '0.%03d' $(( (RANDOM * 32768 + RANDOM) % $1 )); }
# Runs the command (stderr to ./log), SIGKILLs it after a random delay within $ms, and
# sets rc to its exit status: 137 when the kill landed, 0 when it finished first.
run_and_kill() {
  "$@" 2>>log &
  local pid=$!
  sleep "$(rand_delay "$ms")"
  kill -9 "$pid" 2>/dev/null || true
  rc=0; wait "$pid" || rc=$?
}

# `reencrypt --encrypt --reduce-device-size 32M` (volume key given): the data moves by 16 MiB
# (the header's room, as cryptsetup's) from the end backward while it is encrypted, and the
# header is copied in at the end. The header's salts and UUID are random, so the result is
# checked as: the data area equal to plain-mode encryption of the first (size - 16 MiB)
# bytes with the key, and cryptsetup unlocking that very key from the header in the image.
reduce_mode() {
  local room=$((16 << 20)) landed=0 midway=0 resumed=0 trials=0 rc pid ms start
  printf 'passphrase' > pass
  head -c $(( (MIB << 20) - room )) plain.img > part.img
  "$SC" encrypt -d key --no-progress part.img want_area.img
  local reenc=("$SC" reencrypt --encrypt --reduce-device-size 32M --volume-key-file key -d pass
               --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --no-progress)
  done_ok() {  # the finished result: no state files, the data area and the header right
    [[ ! -e .w.img.sectorcrypt-resume && ! -e .w.img.sectorcrypt-new-header ]] &&
      cmp -s -i "$room:0" w.img want_area.img &&
      cryptsetup luksDump --dump-volume-key --volume-key-file got.vk --key-file pass -q w.img \
        >/dev/null 2>&1 && cmp -s got.vk key && rm -f got.vk
  }
  cp plain.img w.img
  start=$(date +%s%N)
  "${reenc[@]}" w.img
  ms=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
  (( ms < 999 )) || ms=999
  done_ok || die "reduce uninterrupted: wrong result"
  grep -q "offset: $room \[bytes\]" <<<"$(cryptsetup luksDump w.img)" || die "reduce: data offset is not $room"
  while (( landed < KILLS || midway == 0 )); do
    (( ++trials <= KILLS * 4 + 10 )) || die "reduce: $landed of $KILLS kills landed, $midway mid-shift"
    cp plain.img w.img
    rm -f got.vk
    : > log
    while :; do
      run_and_kill "${reenc[@]}" w.img
      if (( rc == 0 )); then break; fi
      (( rc == 137 )) || { cat log >&2; die "reduce exited $rc"; }
      # Killed after the last file went: done (a rerun would refuse the LUKS image).
      if done_ok; then break; fi
      landed=$((landed + 1))
      if [[ -s .w.img.sectorcrypt-resume ]]; then resumed=$((resumed + 1)); fi
      # The header is written only once the whole area is moved and recorded as such.
      if head -c 6 w.img | cmp -s - <(printf 'LUKS\272\276') && ! cmp -s -i "$room:0" w.img want_area.img; then
        die "reduce: the header is in the image before the data is moved"
      fi
      if ! cmp -s w.img plain.img; then midway=$((midway + 1)); fi
    done
    done_ok || { cat log >&2; die "reduce after kills (trial $trials): wrong result"; }
  done
  (( midway > 0 )) || die "reduce: no kill landed in the middle of the shift"
  echo "kills reencrypt-datashift encrypt landed=$landed with_resume_file=$resumed midway=$midway trials=$trials differ=0"

  # Faults at chosen places: a kill tearing the header's copy into the image (after every
  # data byte is written), a write failing in the middle of the shift, and the resume file
  # torn by a kill at a random byte of a record.
  local area=$(( (MIB << 20) - room )) fault after path action
  for fault in header eio resume; do
    cp plain.img w.img
    : > log
    case $fault in
      header) after=$(( area + (RANDOM * 32768 + RANDOM) % room )) path=/w.img action=kill ;;
      eio) after=$(( (RANDOM * 32768 + RANDOM) % area )) path=/w.img action=eio ;;
      # The records: a 16-byte mark, then one header per zone and one for completion (no
      # payload; 168 bytes each today). Counted at 160 so that the kill lands inside the
      # records, never past the last byte written (the run would then just succeed).
      resume) after=$(( 16 + (RANDOM * 32768 + RANDOM) % ((area / room + 1) * 160) )) path=/.w.img.sectorcrypt-resume action=kill ;;
    esac
    rc=0
    SECTORCRYPT_TEST_FAULT_PATH=$path SECTORCRYPT_TEST_FAULT_AFTER=$after \
      SECTORCRYPT_TEST_FAULT_ACTION=$action SECTORCRYPT_TEST_FAULT_GRAIN=1 LD_PRELOAD="$SHIM" \
      "${reenc[@]}" w.img 2>err || rc=$?
    if [[ $action == kill ]]; then
      (( rc == 137 )) || die "reduce $fault fault at $after: exited $rc, not killed: $(cat err)"
    else
      (( rc == 1 )) && grep -q "run the same command again to resume" err ||
        die "reduce $fault fault at $after: exit $rc: $(cat err)"
    fi
    "${reenc[@]}" w.img 2>>log || { cat log >&2; die "reduce: the rerun after the $fault fault failed"; }
    done_ok || die "reduce $fault fault at byte $after: wrong result after the rerun"
    echo "reduce fault $fault at byte $after: resumed, differ=0"
  done
}
if [[ $ONLY == reduce ]]; then reduce_mode; echo "PASS"; exit 0; fi

# A volume with its header inside the image (made by `--encrypt --reduce-device-size 32M`
# with the volume key given: data at 16 MiB): a key change without --header (to
# other.key), and `--decrypt --header w.hdr`, which exports the header and moves the data
# down to byte 0. Checked as: the key change's data area equal to plain-mode encryption of
# the volume's plaintext with the new key, cryptsetup unlocking the new key from the header
# in the image, the volume's UUID kept; the decryption's first (size - 16 MiB) bytes equal
# to the volume's plaintext, w.hdr left with no keyslot. After every kill: the new header
# never in the image before the data is all rewritten, w.hdr never at its name before the
# data is all moved.
attached_mode() {
  local room=$((16 << 20)) area=$(( (MIB << 20) - (16 << 20) )) rc ms start kind
  printf 'passphrase' > pass
  head -c "$area" plain.img > part.img
  "$SC" encrypt -d key --no-progress part.img in_key.area
  "$SC" encrypt -d other.key --no-progress part.img in_other.area
  cp plain.img luks.img
  "$SC" reencrypt --encrypt --reduce-device-size 32M --volume-key-file key -d pass \
    --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --no-progress luks.img
  cmp -s -i "$room:0" luks.img in_key.area || die "attached: the source volume is wrong"
  local uuid
  uuid=$(cryptsetup luksUUID luks.img)
  head -c "$room" luks.img > luks.head
  for kind in change decrypt; do
    local reenc=("$SC" reencrypt -d pass --no-progress)
    if [[ $kind == change ]]; then
      reenc+=(--volume-key-file other.key --pbkdf pbkdf2 --pbkdf-force-iterations 1000)
    else
      reenc+=(--decrypt --header w.hdr)
    fi
    fresh() { cp luks.img w.img; rm -f w.hdr w.hdr.sectorcrypt-export got.vk; }
    done_ok() {  # the finished result, no state files left
      [[ ! -e .w.img.sectorcrypt-resume && ! -e .w.img.sectorcrypt-new-header &&
         ! -e w.hdr.sectorcrypt-export ]] || return 1
      if [[ $kind == change ]]; then
        cmp -s -i "$room:0" w.img in_other.area &&
          [[ $(cryptsetup luksUUID w.img) == "$uuid" ]] &&
          cryptsetup luksDump --dump-volume-key --volume-key-file got.vk --key-file pass -q w.img \
            >/dev/null 2>&1 && cmp -s got.vk other.key && rm -f got.vk
      else
        cmp -s -n "$area" w.img part.img && [[ -e w.hdr ]] &&
          ! grep -q '^  [0-9]*: luks2' <<<"$(cryptsetup luksDump w.hdr)"
      fi
    }
    # What must never be seen after a kill: the final header before the final data.
    check_order() {
      if [[ $kind == change ]]; then
        if ! cmp -s -n "$room" w.img luks.head && ! cmp -s -i "$room:0" w.img in_other.area; then
          die "attached change: the new header is in the image before the data is rewritten"
        fi
      elif [[ -e w.hdr ]] && ! cmp -s -n "$area" w.img part.img; then
        die "attached decrypt: w.hdr is at its name before the data is moved"
      fi
    }
    fresh
    start=$(date +%s%N)
    "${reenc[@]}" w.img 2>>log || { cat log >&2; die "attached $kind uninterrupted failed"; }
    ms=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
    (( ms < 999 )) || ms=999
    done_ok || die "attached $kind uninterrupted: wrong result"
    local landed=0 midway=0 resumed=0 trials=0
    while (( landed < KILLS || midway == 0 )); do
      (( ++trials <= KILLS * 4 + 10 )) || die "attached $kind: $landed of $KILLS kills landed, $midway midway"
      fresh
      : > log
      while :; do
        run_and_kill "${reenc[@]}" w.img
        if (( rc == 0 )); then break; fi
        (( rc == 137 )) || { cat log >&2; die "attached $kind exited $rc"; }
        # Killed after the last file went: done (a rerun would find nothing to do).
        if done_ok; then break; fi
        landed=$((landed + 1))
        if [[ -s .w.img.sectorcrypt-resume ]]; then resumed=$((resumed + 1)); fi
        check_order
        if ! cmp -s w.img luks.img; then midway=$((midway + 1)); fi
      done
      done_ok || { cat log >&2; die "attached $kind after kills (trial $trials): wrong result"; }
    done
    (( midway > 0 )) || die "attached $kind: no kill landed in the middle"
    echo "kills reencrypt-attached $kind landed=$landed with_resume_file=$resumed midway=$midway trials=$trials differ=0"

    # Faults at chosen places. change: a kill tearing the new header's copy into the image
    # (after every data byte is written), a write failing in the middle of the rewrite.
    # decrypt: a kill tearing the export, a write failing in the middle of the move, the
    # resume file torn at a random byte of its records (168 bytes each, counted at 160), a
    # kill inside libcryptsetup's removal of the export's keyslot (after the room copied:
    # the keyslot area's wipe, 258048 bytes, then two 16 KiB header copies, O_DIRECT).
    # Checksum resilience assumes whole-sector writes (as cryptsetup's): the change's failed
    # write is cut on a page boundary, and so is libcryptsetup's (O_DIRECT); the rest are
    # cut at any byte.
    local fault after path action faults grain
    if [[ $kind == change ]]; then faults="header eio"; else faults="export eio resume keyslot"; fi
    for fault in $faults; do
      fresh
      : > log
      grain=1
      [[ $kind == change && $fault == eio || $fault == keyslot ]] && grain=4096
      case $fault in
        header) after=$(( area + (RANDOM * 32768 + RANDOM) % room )) path=/w.img action=kill ;;
        eio) after=$(( (RANDOM * 32768 + RANDOM) % area )) path=/w.img action=eio ;;
        export) after=$(( (RANDOM * 32768 + RANDOM) % room )) path=/w.hdr.sectorcrypt-export action=kill ;;
        resume) after=$(( 16 + (RANDOM * 32768 + RANDOM) % ((area / room + 1) * 160) )) path=/.w.img.sectorcrypt-resume action=kill ;;
        keyslot) after=$(( room + (RANDOM * 32768 + RANDOM) % (258048 + 32768) )) path=/w.hdr.sectorcrypt-export action=kill ;;
      esac
      rc=0
      SECTORCRYPT_TEST_FAULT_PATH=$path SECTORCRYPT_TEST_FAULT_AFTER=$after \
        SECTORCRYPT_TEST_FAULT_ACTION=$action SECTORCRYPT_TEST_FAULT_GRAIN=$grain LD_PRELOAD="$SHIM" \
        "${reenc[@]}" w.img 2>err || rc=$?
      if [[ $action == kill ]]; then
        (( rc == 137 )) || die "attached $kind $fault fault at $after: exited $rc, not killed: $(cat err)"
        check_order
      else
        (( rc == 1 )) && grep -q "run the same command again to resume" err ||
          die "attached $kind $fault fault at $after: exit $rc: $(cat err)"
      fi
      "${reenc[@]}" w.img 2>>log || { cat log >&2; die "attached $kind: the rerun after the $fault fault failed"; }
      done_ok || die "attached $kind $fault fault at byte $after: wrong result after the rerun"
      echo "attached $kind fault $fault at byte $after: resumed, differ=0"
    done
  done
}
if [[ $ONLY == attached ]]; then attached_mode; echo "PASS"; exit 0; fi

for dir in encrypt decrypt; do
  if [[ $dir == encrypt ]]; then src=plain.img want=cipher.img; else src=cipher.img want=plain.img; fi
  for mode in checksum journal; do
    # How long an uninterrupted run takes here, so the kills spread over all of it.
    cp "$src" w.img
    start=$(date +%s%N)
    "$SC" "$dir" --resilience "$mode" -d key --no-progress w.img w.img
    ms=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
    (( ms < 999 )) || ms=999
    same w.img "$want" "$dir/$mode uninterrupted"
    [[ ! -e .w.img.sectorcrypt-resume ]] || die "$dir/$mode: a completed run left its resume file"

    landed=0 resumed=0 midway=0 trials=0
    while (( landed < KILLS || midway == 0 )); do
      (( ++trials <= KILLS * 4 + 10 )) || die "$dir/$mode: $landed of $KILLS kills landed, $midway mid-rewrite"
      cp "$src" w.img
      : > log
      # A kill at a random instant, then the rerun killed again at a random instant while it
      # still runs, until a run completes.
      while :; do
        run_and_kill "$SC" "$dir" --resilience "$mode" -d key --no-progress w.img w.img
        if (( rc == 0 )); then break; fi
        (( rc == 137 )) || { cat log >&2; die "$dir/$mode exited $rc"; }
        # Killed after it removed its resume file, on the way out: the work is done (a
        # rerun now would rewrite the area twice, as any second run of the command would).
        if [[ ! -e .w.img.sectorcrypt-resume ]] && cmp -s w.img "$want"; then break; fi
        landed=$((landed + 1))
        if [[ -s .w.img.sectorcrypt-resume ]]; then resumed=$((resumed + 1)); fi
        # Killed with part of the area rewritten: it matches neither the source nor the result.
        if ! cmp -s w.img "$src" && ! cmp -s w.img "$want"; then midway=$((midway + 1)); fi
      done
      same w.img "$want" "$dir/$mode after kills (trial $trials)"
      [[ ! -e .w.img.sectorcrypt-resume ]] || die "$dir/$mode: the resume file stayed"
    done
    (( midway > 0 )) || die "$dir/$mode: no kill landed in the middle of the rewrite"
    echo "kills $mode $dir landed=$landed with_resume_file=$resumed midway=$midway trials=$trials differ=0"
  done
done

# `reencrypt --encrypt` (a new detached LUKS2 header; the volume key given, so the result
# must equal the plain-mode reference) and `--decrypt` of it, killed and rerun the same way.
# A change of key (decrypt with the old, encrypt with `other.key`) too.
printf 'passphrase' > pass
"$SC" encrypt -d other.key --no-progress plain.img cipher2.img
for dir in encrypt change decrypt; do
  case $dir in
    encrypt) src=plain.img want=cipher.img reenc=("$SC" reencrypt --encrypt --volume-key-file key) ;;
    change) src=cipher.img want=cipher2.img reenc=("$SC" reencrypt --volume-key-file other.key) ;;
    decrypt) src=cipher2.img want=plain.img reenc=("$SC" reencrypt --decrypt) ;;
  esac
  reenc+=(--header w.hdr -d pass --no-progress)
  [[ $dir == decrypt ]] || reenc+=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)
  # How long an uninterrupted run of this command takes here, so the kills spread over
  # all of it (the in-place modes' timing left too few kills inside the rewrite).
  cp "$src" w.img
  if [[ $dir == encrypt ]]; then rm -f w.hdr; else cp enc.hdr w.hdr; fi
  rm -f w.hdr.sectorcrypt-new
  start=$(date +%s%N)
  "${reenc[@]}" w.img 2>>log || { cat log >&2; die "reencrypt $dir uninterrupted failed"; }
  ms=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
  (( ms < 999 )) || ms=999
  same w.img "$want" "reencrypt $dir uninterrupted"
  landed=0 midway=0 trials=0
  while (( landed < KILLS || midway == 0 )); do
    (( ++trials <= KILLS * 4 + 10 )) || die "reencrypt $dir: $landed of $KILLS kills landed, $midway mid-rewrite"
    cp "$src" w.img
    if [[ $dir == encrypt ]]; then rm -f w.hdr; else cp enc.hdr w.hdr; fi
    rm -f w.hdr.sectorcrypt-new
    while :; do
      run_and_kill "${reenc[@]}" w.img
      if (( rc == 0 )); then break; fi
      (( rc == 137 )) || { cat log >&2; die "reencrypt $dir exited $rc"; }
      landed=$((landed + 1))
      if [[ $dir != decrypt && -e w.hdr && ! -e w.hdr.sectorcrypt-new && -e .w.img.sectorcrypt-resume ]] &&
         ! cmp -s w.img "$want"; then
        die "reencrypt $dir: the new header is in place before the data is rewritten"
      fi
      if [[ ! -e .w.img.sectorcrypt-resume ]] && cmp -s w.img "$want" && [[ ! -e w.hdr.sectorcrypt-new ]]; then break; fi
      if ! cmp -s w.img "$src" && ! cmp -s w.img "$want"; then midway=$((midway + 1)); fi
    done
    same w.img "$want" "reencrypt $dir after kills (trial $trials)"
    [[ ! -e .w.img.sectorcrypt-resume && ! -e w.hdr.sectorcrypt-new ]] || die "reencrypt $dir left files"
  done
  cp w.hdr enc.hdr  # the next direction starts from this header
  (( midway > 0 )) || die "reencrypt $dir: no kill landed in the middle of the rewrite"
  echo "kills reencrypt-checksum $dir landed=$landed midway=$midway trials=$trials differ=0"
done
reduce_mode
attached_mode

# Writes to the target fail part-way (a failing disk, a full disk): the run stops with an
# error naming the range and the resume file; the rerun finishes; nothing differs.
for mode in checksum journal; do
  for action in eio enospc; do
    cp plain.img w.img
    after=$(( ((RANDOM * 32768 + RANDOM) % (MIB << 20)) ))
    rc=0
    SECTORCRYPT_TEST_FAULT_PATH=/w.img SECTORCRYPT_TEST_FAULT_AFTER=$after \
      SECTORCRYPT_TEST_FAULT_ACTION=$action LD_PRELOAD="$SHIM" \
      "$SC" encrypt --resilience "$mode" -d key --no-progress w.img w.img 2>err || rc=$?
    (( rc == 1 )) || die "$mode/$action: exit $rc after a failed write, not 1"
    grep -q "write failed" err || die "$mode/$action: no 'write failed' in: $(cat err)"
    grep -q "run the same command again to resume" err || die "$mode/$action: not told how to resume: $(cat err)"
    [[ -s .w.img.sectorcrypt-resume ]] || die "$mode/$action: no resume file after the failure"
    : > log
    run_to_end encrypt "$mode"
    same w.img cipher.img "$mode/$action after the write failure and a rerun"
    echo "write fault $mode $action at byte $after: resumed, differ=0"
  done
done

# The resume file itself torn by a kill in the middle of writing a record (any byte, not
# only pages: a journal slot is checksummed as a whole), and a resume file write that fails.
for mode in checksum journal; do
  if [[ $mode == journal ]]; then slot=$((64 << 20)); else slot=$((4 << 20)); fi  # payload per slot
  for _ in 1 2 3; do  # three tears at random bytes
    cp plain.img w.img
    after=$(( (RANDOM * 32768 + RANDOM) % (slot * 3) ))
    rc=0
    SECTORCRYPT_TEST_FAULT_PATH=/.w.img.sectorcrypt-resume SECTORCRYPT_TEST_FAULT_AFTER=$after \
      SECTORCRYPT_TEST_FAULT_ACTION=kill SECTORCRYPT_TEST_FAULT_GRAIN=1 LD_PRELOAD="$SHIM" \
      "$SC" encrypt --resilience "$mode" -d key --no-progress w.img w.img 2>/dev/null || rc=$?
    (( rc == 137 )) || die "$mode: torn-journal run exited $rc, not killed"
    : > log
    run_to_end encrypt "$mode"
    same w.img cipher.img "$mode: resume file torn at byte $after"
    echo "torn resume file $mode at byte $after: differ=0"
  done
  cp plain.img w.img
  rc=0
  SECTORCRYPT_TEST_FAULT_PATH=/.w.img.sectorcrypt-resume SECTORCRYPT_TEST_FAULT_AFTER=$((slot * 2)) \
    SECTORCRYPT_TEST_FAULT_ACTION=enospc LD_PRELOAD="$SHIM" \
    "$SC" encrypt --resilience "$mode" -d key --no-progress w.img w.img 2>err || rc=$?
  (( rc == 1 )) && grep -q "cannot write the resume file" err || die "$mode: resume file ENOSPC: exit $rc: $(cat err)"
  run_to_end encrypt "$mode"
  same w.img cipher.img "$mode: resume file full"
done

# A rerun that is not the same command is refused before it writes anything.
cp plain.img w.img
rc=0
SECTORCRYPT_TEST_FAULT_PATH=/w.img SECTORCRYPT_TEST_FAULT_AFTER=$(( (MIB << 20) / 2 + 12345 )) \
  SECTORCRYPT_TEST_FAULT_ACTION=kill LD_PRELOAD="$SHIM" \
  "$SC" encrypt -d key --no-progress w.img w.img 2>/dev/null || rc=$?
(( rc == 137 )) && [[ -s .w.img.sectorcrypt-resume ]] || die "the half-way kill did not land ($rc)"
cp w.img before.img
"$SC" encrypt -d other.key --no-progress w.img w.img 2>err && die "another key was accepted"
grep -q "another key" err || die "wrong key: $(cat err)"
"$SC" decrypt -d key --no-progress w.img w.img 2>err && die "the other direction was accepted"
grep -q "belongs to another run: its direction" err || die "wrong direction: $(cat err)"
"$SC" encrypt --resilience journal -d key --no-progress w.img w.img 2>err && die "another mode was accepted"
grep -q "belongs to another run: its --resilience mode" err || die "wrong mode: $(cat err)"
same w.img before.img "a refused rerun wrote to the target"
# The target replaced (say, restored from a backup) while its resume file stayed.
cp plain.img w.img
"$SC" encrypt -d key --no-progress w.img w.img 2>err && die "resumed onto a replaced target"
grep -q "does not hold what the interrupted run wrote" err || die "replaced target: $(cat err)"
same w.img plain.img "a refused resume wrote to a replaced target"
cp before.img w.img
"$SC" encrypt -d key --no-progress w.img w.img 2>/dev/null
same w.img cipher.img "resume after refused reruns"
echo "mismatched reruns refused"

# Not a resume file: a --journal naming some other file is never overwritten.
cp plain.img w.img
echo "precious" > notes.txt
"$SC" encrypt --journal notes.txt -d key --no-progress w.img w.img 2>err && die "overwrote notes.txt"
grep -q "is not a sectorcrypt resume file" err || die "foreign journal: $(cat err)"
[[ $(cat notes.txt) == precious ]] || die "notes.txt changed"
same w.img plain.img "a refused foreign --journal touched the target"
echo "PASS"
