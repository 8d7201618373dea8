#!/usr/bin/env bash
# Installs everything vigil needs to build, test and demo, from Debian/Ubuntu packages only.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again (apt-get is idempotent).
set -euo pipefail

# The fuzzers (tests/fuzz, bench/fuzz.sh) are built with clang++, whose -fsanitize=fuzzer links
# the runtime of its own LLVM version N: libfuzzer-N-dev, and libclang-rt-N-dev (only recommended
# by clang-N, and recommends are not installed here). N is the major version of the installed
# clang, else of the one the `clang` package would install; 14 on Debian 12 and Ubuntu 22.04.
vigil_clang_major() {
  local v
  v=$(clang -dumpversion 2>/dev/null || true)
  if [[ -z $v ]]; then
    v=$(apt-cache depends clang 2>/dev/null | sed -n 's/^ *Depends: clang-\([0-9][0-9]*\)$/\1/p' |
      head -n1 || true)
  fi
  v=${v%%.*}
  echo "${v:-14}"
}
VIGIL_CLANG_MAJOR=$(vigil_clang_major)

VIGIL_BUILD_DEPS=(
  build-essential       # g++, make; dpkg-buildpackage also requires it for the .deb
  cmake pkg-config git
  libboost-dev          # Asio (header-only)
  libcurl4-openssl-dev  # HTTP probe (curl multi)
  libsystemd-dev        # sd_notify, journal, sd-bus
  libtomlplusplus-dev   # config
  libre2-dev            # linear-time regexes
  nlohmann-json3-dev    # JSON: incident timelines, control socket
  libssl-dev            # HMAC-SHA256 signatures of webhook pages (libcrypto)
  libgtest-dev libgmock-dev
  clang-format          # style check
  clang "libfuzzer-$VIGIL_CLANG_MAJOR-dev" "libclang-rt-$VIGIL_CLANG_MAJOR-dev"  # the fuzzers
  openssl               # the TLS integration test makes a self-signed certificate and server
  curl                  # the demo drives the sample app with it
  procps                # ps/pkill in scripts
  python3               # the paging tests' capture server (tests/support/capture_server.py)
)

vigil_install_deps() {
  local missing=()
  local p
  for p in "${VIGIL_BUILD_DEPS[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "vigil: missing packages: ${missing[*]}; run as root so they can be installed" >&2
    exit 1
  fi
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A Debian package unpacked into a cache directory, never installed: for programs the tests and
# benchmarks run but the host must not get as a service (etcd-server's package would start etcd
# on the host; monit's would start monit). Downloaded once. Prints the unpacked root.
# Usage: root=$(vigil_unpack PACKAGE [CACHE_DIR])
vigil_unpack() {
  local package=$1 cache=${2:-/var/cache/vigil-test/packages}
  local root="$cache/$package"
  mkdir -p "$cache"
  if [[ ! -d "$root/usr/bin" ]]; then
    (cd "$cache" && apt-get download "$package" >/dev/null 2>&1) || {
      apt-get update -qq && (cd "$cache" && apt-get download "$package" >/dev/null)
    }
    rm -rf "$root"
    dpkg-deb -x "$(ls "$cache/${package}"_*.deb | head -n 1)" "$root"
  fi
  echo "$root"
}
