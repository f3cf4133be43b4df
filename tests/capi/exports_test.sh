#!/usr/bin/env bash
# libsectorcrypt.so exports the public API and nothing else: every symbol `nm -D` lists
# as defined is a sectorcrypt_* C function or a member of the installed C++ API; every
# function sectorcrypt.h declares is there; and the library carries neither the
# known-answer readers (test code) nor the source tree's path to their vectors.
# Usage: exports_test.sh LIBRARY HEADER
set -euo pipefail
lib=$1
header=$2

# Demangled, without the @@VERSION suffix; the version node itself (type A) left out.
symbols=$(nm -D --defined-only -C "$lib" | awk '$2 != "A"' | cut -d' ' -f3- | sed 's/@@*SECTORCRYPT_.*$//')
[[ -n $symbols ]] || { echo "FAIL: nm -D lists nothing for $lib"; exit 1; }

public_c='^sectorcrypt_[a-z0-9_]+$'
public_cxx='^sectorcrypt::(Engine::[a-z~]|Channel::[a-z]|backend_kind_name\(|LatencyHistogram::|Status::|errc_name\(|validate_format\(|iv_sequence_for\(|validate_sector_run\(|XtsKey::|aes_expand_encrypt_key\(|aes_make_decrypt_key\()'
internal=$(grep -Ev "$public_c" <<<"$symbols" | grep -Ev "$public_cxx" || true)
if [[ -n $internal ]]; then
  echo "FAIL: internal symbols exported by $lib:"
  echo "$internal"
  exit 1
fi

# Every function the header declares (static inline wrappers excepted) is exported.
declared=$(grep -E '^[a-z].*[ *]sectorcrypt_[a-z0-9_]+\(' "$header" | grep -Ev '^(static|typedef)' |
  sed -E 's/^.*[ *](sectorcrypt_[a-z0-9_]+)\(.*$/\1/' | sort -u)
count=$(wc -l <<<"$declared")
if (( count < 30 )); then
  echo "FAIL: found only $count function declarations in $header"
  exit 1
fi
missing=$(comm -23 <(echo "$declared") <(grep -E "$public_c" <<<"$symbols" | sort -u))
if [[ -n $missing ]]; then
  echo "FAIL: declared in $(basename "$header") but not exported:"
  echo "$missing"
  exit 1
fi

# The C++ channel API of engine.h (its members are not Engine's, so the map names them).
for member in 'sectorcrypt::Channel::submit(' 'sectorcrypt::Channel::poll(' \
              'sectorcrypt::Channel::wait(' 'sectorcrypt::Channel::completion_fd(' \
              'sectorcrypt::Engine::open_channel(' 'sectorcrypt::Engine::close_channel('; do
  grep -qF "$member" <<<"$symbols" || { echo "FAIL: $member is not exported by $lib"; exit 1; }
done

if grep -q -a 'tests/data/vectors' "$lib"; then
  echo "FAIL: $lib embeds the path of tests/data/vectors"
  exit 1
fi
echo "ok: $(wc -l <<<"$symbols") symbols exported, $count C functions declared and exported"
