#!/usr/bin/env bash
# make fuzz: build the two fuzz targets and run them side by side for SECONDS (default 60; 0: no
# fuzzing, only the merge); merge the inputs that found new coverage into tests/fuzz/corpus/VARIANT;
# crashes go to build/fuzz/crashes/. Exit status 1 if anything crashed.
#
#   FUZZ_MINIMIZE=1   rebuild each corpus as the smallest set covering what corpus and new inputs do
#   FUZZ_NICE=N       niceness of the fuzzers (default 10: a long CPU job)
#   FUZZ_ARGS=...     more libFuzzer flags
#   FUZZ_SECURE=1     fuzz strata in secure mode (STRATA_OPTIONS=secure=1 for the fuzzers)
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
out=build/fuzz
mode=default
if [ -n "${FUZZ_SECURE:-}" ]; then
  export STRATA_OPTIONS=secure=1 # read at strata's start in each fuzzer
  mode=secure
fi

# clang and its libFuzzer runtime: install them if a tiny fuzz target does not link.
has_libfuzzer() {
  mkdir -p "$out" &&
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' > "$out/probe.c" &&
  "${FUZZ_CC:-clang}" -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" >/dev/null 2>&1
}
if ! has_libfuzzer; then
  echo "fuzz: installing clang and libFuzzer (clang, libclang-rt-dev)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq clang libclang-rt-dev >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq clang libclang-rt-dev >/dev/null 2>&1; }
  has_libfuzzer || { echo "fuzz: clang cannot link -fsanitize=fuzzer here; install clang and libclang-rt-dev"; exit 2; }
fi
"${MAKE:-make}" -s --no-print-directory fuzz-build || exit 2

# Inputs grow from a few bytes to 2048 (-len_control: 20 executions per step instead of 100: a
# program of a few operations reaches little).
FLAGS=(-max_len=2048 -len_control=20 -timeout=20 -rss_limit_mb=4096)

# One variant: the fuzzer, then its figures (executions, speed, coverage: edges and features,
# CPU time) in build/fuzz/VARIANT.summary.
fuzz_one() {
  local v=$1 log=$out/$1.log cpu rc
  mkdir -p "tests/fuzz/corpus/$v" "$out/work/$v"
  TIMEFORMAT="%U %S"
  cpu=$( { time nice -n "${FUZZ_NICE:-10}" "$out/fuzz-$v" -max_total_time="$seconds" "${FLAGS[@]}" \
             -print_final_stats=1 -artifact_prefix="$out/crashes/$v-" ${FUZZ_ARGS:-} \
             "$out/work/$v" "tests/fuzz/corpus/$v" >"$log" 2>&1; } 2>&1 )
  rc=$?
  local done_line execs speed user sys
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  read -r user sys <<<"$cpu"
  {
    echo "fuzz: $v ($mode mode): ${execs:-?} executions, ${speed:-?}/s, $(sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\) \(corp: [^ ]*\).*/\1 \2 \3/p' <<<"$done_line"), CPU ${user}s user ${sys}s system"
    [ $rc -ne 0 ] && { echo "fuzz: $v FAILED (exit $rc): see $log and $out/crashes/"; grep -m3 -E 'strata|ERROR|SUMMARY' "$log"; }
  } >"$out/$v.summary"
  return $rc
}

status=0
mkdir -p "$out/crashes" "$out/work/single" "$out/work/threads"
if [ "$seconds" -gt 0 ]; then
  echo "fuzz: single and threads side by side for ${seconds}s in $mode mode (logs in $out/single.log, $out/threads.log)"
  fuzz_one single & p1=$!
  fuzz_one threads & p2=$!
  wait $p1 || status=1
  wait $p2 || status=1
fi
for v in single threads; do
  [ "$seconds" -gt 0 ] && cat "$out/$v.summary"
  corpus=tests/fuzz/corpus/$v
  if [ -n "${FUZZ_MINIMIZE:-}" ]; then
    rm -rf "$out/min/$v" && mkdir -p "$out/min/$v"
    "$out/fuzz-$v" -merge=1 "${FLAGS[@]}" "$out/min/$v" "$corpus" "$out/work/$v" >"$out/$v-merge.log" 2>&1 &&
      rm -f "$corpus"/* && cp "$out/min/$v"/* "$corpus"/
  else
    "$out/fuzz-$v" -merge=1 "${FLAGS[@]}" "$corpus" "$out/work/$v" >"$out/$v-merge.log" 2>&1
  fi
  echo "fuzz: $v corpus: $(ls "$corpus" | wc -l) inputs, $(( $(cat "$corpus"/* 2>/dev/null | wc -c) / 1024 )) KiB"
done
exit $status
