#!/usr/bin/env bash
# Installs everything sectorcrypt builds, tests and benchmarks with, from Debian packages.
#
# Idempotent and quick when all is present (one dpkg query, no network). Works as root or
# through sudo. Debian 12 ships Highway 1.0.3, which lacks the AES inverse rounds the
# decrypt kernels need, so libhwy-dev/libhwy1t64 (1.2) come from the Debian 13 suite,
# pinned so that no other package is ever taken from it. The mirror is the one this
# machine's Debian sources already use.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev libgcrypt20-dev
  clang libclang-rt-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  groff-base
  libxxhash-dev
  libcryptsetup-dev cryptsetup-bin
  nbdkit nbdkit-plugin-dev libnbd-bin python3-libnbd fio
)
HWY_PACKAGES=(libhwy-dev libhwy1t64)
HWY_MIN=1.2

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

installed() {  # true when every named package is installed
  local missing
  missing=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null \
            | awk '$2 != "ii" {print $1}' | wc -l)
  [ "$missing" -eq 0 ] && [ "$(dpkg-query -W "$@" 2>/dev/null | wc -l)" -eq "$#" ]
}

hwy_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' libhwy-dev 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge "$HWY_MIN"
}

if installed "${PACKAGES[@]}" && hwy_ok; then
  echo "setup: all packages present (libhwy-dev $(dpkg-query -W -f='${Version}' libhwy-dev))"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# The mirror this machine already uses for Debian (deb822 or one-line format).
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '/^URIs:/ {print $2}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' "$f"
  done
}

if ! hwy_ok; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = "bookworm" ]; then
    mirror=$(debian_mirror | grep -v -- '-security' | grep -m1 '/debian/\?$' || true)
    if [ -z "$mirror" ]; then
      echo "setup: no Debian mirror found in /etc/apt/sources.list*; cannot add trixie for libhwy" >&2
      exit 1
    fi
    "${SUDO[@]}" tee /etc/apt/sources.list.d/sectorcrypt-trixie.sources >/dev/null <<SRC
# Added by sectorcrypt scripts/setup.sh: only libhwy (Highway >= 1.2) is taken from here.
Types: deb
URIs: ${mirror}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    "${SUDO[@]}" tee /etc/apt/preferences.d/sectorcrypt-trixie >/dev/null <<'PIN'
# sectorcrypt: never take anything from trixie except Highway.
Package: *
Pin: release n=trixie
Pin-Priority: -1

Package: libhwy-dev libhwy1t64
Pin: release n=trixie
Pin-Priority: 990
PIN
  fi
fi

"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" "${HWY_PACKAGES[@]}"

if ! hwy_ok; then
  echo "setup: libhwy-dev >= $HWY_MIN is required, found $(dpkg-query -W -f='${Version}' libhwy-dev 2>/dev/null || echo none)" >&2
  exit 1
fi
echo "setup: done (libhwy-dev $(dpkg-query -W -f='${Version}' libhwy-dev))"
