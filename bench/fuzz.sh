#!/usr/bin/env bash
# Runs vigil's libFuzzer fuzzers (tests/fuzz) for SECONDS each, one after the other, and prints a
# table: executions, exec/s, coverage, corpus growth, and crashes (0, or the saved input). Exits
# non-zero if any fuzzer crashed (a crash, leak, UB, failed invariant, timeout or out-of-memory).
#
# Usage: bench/fuzz.sh [SECONDS=300] [NAME...]     e.g. bench/fuzz.sh 60 ip journal
# Builds build-fuzz with clang++ (-DVIGIL_FUZZ=ON: ASan+UBSan, coverage). Each fuzzer starts from
# a copy of tests/fuzz/corpus/NAME in a scratch folder (the committed seeds never change), with
# tests/fuzz/NAME.dict (json.dict for the JSON ones) as its dictionary. Reproduce a crash with
#   build-fuzz/tests/fuzz/fuzz_NAME CRASH-FILE
# Environment: VIGIL_FUZZ_JOBS (build jobs, default 2), CXX_FUZZ (default clang++),
# VIGIL_FUZZ_TMPDIR (where the fuzzers write the state files they load; default /dev/shm when
# it is a writable tmpfs, since the outbox and timeline loaders fsync on every input).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-300}
shift || true
all=(config ip journal prefilter control timeline outbox blocks ledger)
names=("$@")
((${#names[@]} > 0)) || names=("${all[@]}")
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: bench/fuzz.sh [SECONDS] [NAME...]   (NAME: ${all[*]})" >&2
  exit 2
fi

source scripts/deps.sh
vigil_install_deps

echo "==> build build-fuzz (clang++, libFuzzer, ASan+UBSan)"
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER="${CXX_FUZZ:-clang++}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_FUZZ=ON -DVIGIL_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "${VIGIL_FUZZ_JOBS:-2}" --target vigil_fuzzers >/dev/null

work=$(mktemp -d /tmp/vigil-fuzz-run.XXXXXX)
base=${VIGIL_FUZZ_TMPDIR:-}
if [[ -z $base ]]; then
  if [[ -w /dev/shm ]] && [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
    base=/dev/shm
  else
    base=$work
  fi
fi
# The fuzzers' own scratch folders (a crashed one cannot remove its own) go with the run.
state=$(mktemp -d "$base/vigil-fuzz-state.XXXXXX")
trap 'rm -rf "$state"' EXIT
# A sanitizer report is a crash: libFuzzer saves the input. Leaks are reported too.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The fuzzers of JSON input share one dictionary.
dict_of() {
  case $1 in
    control | timeline | outbox | blocks | ledger) echo tests/fuzz/json.dict ;;
    *) [[ -f tests/fuzz/$1.dict ]] && echo "tests/fuzz/$1.dict" || true ;;
  esac
}

# stat NAME LOG: a value of -print_final_stats=1.
stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -n1; }

rows=()
failed=0
for name in "${names[@]}"; do
  bin=build-fuzz/tests/fuzz/fuzz_$name
  if [[ ! -x $bin ]]; then
    echo "vigil: no fuzzer '$name' (have: ${all[*]})" >&2
    exit 2
  fi
  corpus=$work/corpus/$name
  artifacts=$work/artifacts/$name
  mkdir -p "$corpus" "$artifacts"
  cp -r "tests/fuzz/corpus/$name/." "$corpus/"
  seeds=$(find "$corpus" -type f | wc -l)
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
    -artifact_prefix="$artifacts/")
  dict=$(dict_of "$name")
  [[ -n $dict ]] && args+=(-dict="$dict")
  log=$work/$name.log
  echo "==> fuzz_$name for ${seconds}s ($seeds seeds${dict:+, $dict})"
  rc=0
  TMPDIR=$state "$bin" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(stat_of number_of_executed_units "$log")
  rate=$(stat_of average_exec_per_sec "$log")
  added=$(stat_of new_units_added "$log")
  cov_start=$(sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' "$log" | tail -n1)
  cov_end=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$log" | tail -n1)
  size=$(find "$corpus" -type f | wc -l)
  crash=$(find "$artifacts" -type f | head -n1)
  if [[ -n $crash ]]; then
    failed=1
    # The report (sanitizer or invariant) next to the input, for the record.
    cp "$log" "$crash.log"
    echo "    CRASH: $crash (log: $crash.log)"
    grep -m1 -E "what\(\)|runtime error|fuzz invariant failed|ERROR: |timeout after" "$log" | sed 's/^/    /' || true
  elif ((rc != 0)); then
    failed=1
    crash="exit $rc, no artifact: $log"
    echo "    FAILED: $crash"
  else
    crash=0
  fi
  rows+=("$(printf '%-16s %12s %8s %13s %14s  %s' "fuzz_$name" "${execs:-?}" "${rate:-?}" \
    "${cov_start:-?}->${cov_end:-?}" "$seeds->$size (+${added:-?})" "$crash")")
done

echo
printf '%-16s %12s %8s %13s %14s  %s\n' fuzzer executions exec/s coverage corpus crashes
for row in "${rows[@]}"; do echo "$row"; done
if ((failed)); then
  echo "fuzz: crashes kept in $work" >&2
  exit 1
fi
rm -rf "$work"
