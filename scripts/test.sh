#!/usr/bin/env bash
# Builds vigil and runs every test: style check; unit, integration and end-to-end tests (the
# .deb installed in a systemd-nspawn test-bed); then the unit and integration tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer. Ends with ctest's summary.
# Usage (as root on a fresh Debian 12 / Ubuntu 22.04+ machine):  scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
# debhelper/dpkg-dev/lintian build the .deb; the test-bed installs its own host packages.
vigil_install_deps debhelper dpkg-dev lintian

# etcd for the fleet tests (tests/integration/fleet_test.cpp): Debian's etcd-server, unpacked
# into a cache directory and run from there, never installed (its package starts etcd on the host).
VIGIL_TEST_ETCD="$(vigil_unpack etcd-server)/usr/bin/etcd"
export VIGIL_TEST_ETCD

jobs=$(nproc)

echo "==> clang-format check"
git ls-files -- '*.cpp' '*.h' | xargs clang-format --dry-run --Werror

echo "==> build (RelWithDebInfo) and test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_E2E=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 300

echo "==> build with ASan+UBSan and test"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVIGIL_SANITIZE=ON -DVIGIL_E2E=OFF >/dev/null
cmake --build build-asan -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 600

# Every fuzzer for 10 s on its seeds (tests/fuzz): a few minutes with the clang build. Longer
# runs: bench/fuzz.sh [SECONDS].
echo "==> fuzzers (short)"
bench/fuzz.sh 10
