#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, clang + libFuzzer, in build-fuzz/) and runs each for long:
#   scripts/fuzz.sh              10 minutes per target
#   scripts/fuzz.sh 3600         an hour per target
#   scripts/fuzz.sh -runs=10000000 [target...]   a number of inputs per target (any libFuzzer option)
# Targets run one after the other; FUZZ_PARALLEL=2 runs two at a time. What each finds stays in
# fuzz-out/<target>/ (corpus/ grows from run to run, crashes/ holds findings, log the output).
# Prints executions, time and coverage per target; exits non-zero if any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=-max_total_time=600
if [ $# -gt 0 ]; then
  case $1 in
    -*) limit=$1 ;;
    *[!0-9]* | '') echo "usage: $0 [seconds | -runs=N | -libFuzzer_option] [target...]" >&2; exit 2 ;;
    *) limit=-max_total_time=$1 ;;
  esac
  shift
fi

scripts/install-deps.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTWINS_FUZZ=ON \
  -DTWINS_TESTS=OFF -DTWINS_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_body_fuzzer merge_fuzzer topic_fuzzer rest_path_fuzzer config_series_fuzzer)
parallel=${FUZZ_PARALLEL:-1}
out=fuzz-out
mkdir -p "$out"
failed=0
running=0
for target in "${targets[@]}"; do
  fuzz/run_fuzzer.sh "build-fuzz/fuzz/$target" "$out/$target" "$limit" >"$out/$target.summary" 2>&1 &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
for target in "${targets[@]}"; do head -n 1 "$out/$target.summary"; done
if [ $failed -ne 0 ]; then
  echo "findings: see fuzz-out/<target>/crashes/ and fuzz-out/<target>.summary" >&2
  exit 1
fi
