#!/usr/bin/env bash
# The fault campaign of tests/testbed/faults.sh (docs/RELIABILITY.md) at full length, as a
# benchmark: CI runs the same cases shorter (the central outage 90 s). Every case runs even if
# one fails; the RESULT line of each is printed at the end, ready for RELIABILITY.md.
#
# Usage: bench/faults.sh [DEBDIR] [CASE...]
#   DEBDIR  where the .deb is, or is built (default /tmp/vigil-faults-deb)
# Environment, with this script's defaults (faults.sh's own defaults are CI's):
#   FAULT_ROUNDS=100  kill -9 rounds          FAULT_LINES=300     journal lines under churn
#   FAULT_OUTAGE=600  central outage, seconds FAULT_FLOOD=1000000 distinct flood addresses
# Needs root (systemd-nspawn, network namespaces); touches nothing outside the test-bed.
# About 40 minutes with the defaults on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-/tmp/vigil-faults-deb}
shift || true
export FAULT_ROUNDS=${FAULT_ROUNDS:-100} FAULT_LINES=${FAULT_LINES:-300}
export FAULT_OUTAGE=${FAULT_OUTAGE:-600} FAULT_FLOOD=${FAULT_FLOOD:-1000000}

source scripts/deps.sh
vigil_install_deps
if ! compgen -G "$deb/vigil_*.deb" >/dev/null; then
  echo "==> build the .deb into $deb and the test-bed root file system"
  bash tests/testbed/e2e.sh setup "$deb"
fi
echo "==> build the sample app (build-bench)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j "$(nproc)" --target vigil-sample-app >/dev/null
support=$(dirname "$(find build-bench -name vigil-sample-app -type f -perm -u+x | head -n 1)")

cases=("$@")
if ((${#cases[@]} == 0)); then
  read -r -a cases <<<"$(sed -n '/^FAULT_CASES=(/,/)/p' tests/testbed/faults.sh | tr -d '()\n' |
    sed 's/^FAULT_CASES=//')"
fi
log=$(mktemp /tmp/vigil-faults-bench.XXXXXX.log)
failed=()
for c in "${cases[@]}"; do
  echo "==> $c ($(date -u +%H:%M:%S))"
  if ! bash tests/testbed/faults.sh "$c" "$deb" "$support" 2>&1 | tee -a "$log"; then
    failed+=("$c")
  fi
done
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, FAULT_ROUNDS=$FAULT_ROUNDS FAULT_LINES=$FAULT_LINES" \
  "FAULT_OUTAGE=$FAULT_OUTAGE FAULT_FLOOD=$FAULT_FLOOD (full log: $log)"
grep '^RESULT ' "$log" || true
if ((${#failed[@]} > 0)); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
