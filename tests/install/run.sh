#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds the example programs against
# it both ways (CMake find_package and pkg-config) and runs them.
# Usage: run.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d /tmp/sectorcrypt-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
vectors=$src/tests/data/vectors/ieee1619-2007.txt

echo "== cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/sectorcrypt"
"$prefix/bin/sectorcrypt" --version

echo "== man pages: sectorcrypt.h(3) and one per call, each rendering without warnings"
mandir=$prefix/share/man
calls=$(grep -oE 'sectorcrypt_[a-z0-9_]+\(' "$prefix/include/sectorcrypt.h" | tr -d '(' | sort -u)
test "$(wc -l <<<"$calls")" -ge 30
for page in sectorcrypt.h $calls; do
  file=$mandir/man3/$page.3
  test -f "$file" || { echo "no man page for $page in $mandir/man3"; exit 1; }
  warnings=$(cd "$mandir" && groff -man -Tutf8 -ww -z -s "man3/$page.3" 2>&1)
  [[ -z $warnings ]] || { echo "$page.3: $warnings"; exit 1; }
  if ! grep -q '^\.so ' "$file"; then
    for section in NAME SYNOPSIS DESCRIPTION 'RETURN VALUE' 'THREAD SAFETY' ERRORS; do
      grep -q "^\.SH $section" "$file" || { echo "$page.3 has no $section"; exit 1; }
    done
  fi
done

echo "== find_package(sectorcrypt)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$src/tests/install/c_example" -B "$work/build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/c_example" "$vectors"
"$work/build/cxx_example"

echo "== pkg-config sectorcrypt"
export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name sectorcrypt.pc)")
libdir=$(pkg-config --variable=libdir sectorcrypt)
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -pedantic -Werror "$src/tests/install/c_example/example.c" \
  -o "$work/c_example_pc" $(pkg-config --cflags --libs sectorcrypt) -Wl,-rpath,"$libdir"
"$work/c_example_pc" "$vectors"
# shellcheck disable=SC2046
c++ -std=c++20 -Wall -Wextra -Werror "$src/tests/install/c_example/example_cxx.cc" \
  -o "$work/cxx_example_pc" $(pkg-config --cflags --libs sectorcrypt) -Wl,-rpath,"$libdir"
"$work/cxx_example_pc"

# The nbdkit filter (built when nbdkit-plugin-dev is installed): installed into nbdkit's
# filter directory under the prefix, and loadable from there by the real nbdkit.
if [ -e "$build/host/nbdkit/nbdkit-sectorcrypt-filter.so" ]; then
  echo "== nbdkit filter"
  filterdir=$(pkg-config --variable=filterdir nbdkit)
  so=$prefix/${filterdir#"$(pkg-config --variable=prefix nbdkit)"/}/nbdkit-sectorcrypt-filter.so
  test -f "$so"
  head -c 64 /dev/urandom > "$work/key"
  size=$(nbdkit -U - --filter="$so" memory 1M key-file="$work/key" --run 'nbdinfo --size "$uri"')
  test "$size" = 1048576
fi
echo "install test: ok"
