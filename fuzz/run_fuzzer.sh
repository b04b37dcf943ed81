#!/usr/bin/env bash
# run_fuzzer.sh [--fresh] FUZZER OUT [libFuzzer options...]
# Runs one fuzz target from its seeds (fuzz/corpus/<target>/, never written to) with its
# dictionary (fuzz/dict/<target>.dict) if any. New inputs go to OUT/corpus, findings to
# OUT/crashes/, the output to OUT/log; --fresh empties OUT first. Prints one line: executions,
# time, speed, coverage, findings. Exits non-zero on any finding.
set -uo pipefail
fresh=0
if [ "${1:-}" = --fresh ]; then fresh=1; shift; fi
fuzzer=$1 out=$2
shift 2
name=$(basename "$fuzzer")
here=$(cd "$(dirname "$0")" && pwd)

[ $fresh -eq 1 ] && rm -rf "$out"
mkdir -p "$out/corpus" "$out/crashes"
dict=()
[ -f "$here/dict/$name.dict" ] && dict=(-dict="$here/dict/$name.dict")

UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
  "$fuzzer" -timeout=10 -print_final_stats=1 -artifact_prefix="$out/crashes/" "${dict[@]}" "$@" \
  "$out/corpus" "$here/corpus/$name" >"$out/log" 2>&1
status=$?

stat() { sed -n "s/^stat::$1: *//p" "$out/log" | tail -1; }
execs=$(stat number_of_executed_units)
speed=$(stat average_exec_per_sec)
seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out/log" | tail -1)
coverage=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$out/log" | tail -1)
findings=$(find "$out/crashes" -type f | wc -l)
echo "$name: ${execs:-?} executions in ${seconds:-?} s (${speed:-?}/s), ${coverage:-no coverage line}," \
  "corpus $(find "$out/corpus" -type f | wc -l) new inputs, findings: $findings (exit $status)"
if [ $status -ne 0 ] || [ "$findings" -ne 0 ]; then
  tail -n 60 "$out/log"
  echo "$name: findings in $out/crashes/, output in $out/log"
  exit 1
fi
