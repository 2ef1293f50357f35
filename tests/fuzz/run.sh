#!/usr/bin/env bash
# make fuzz: build the two fuzz targets and run each for half of SECONDS (default 60), the
# threaded one second; merge the inputs that found new coverage into tests/fuzz/corpus/VARIANT;
# crashes go to build/fuzz/crashes/. Exit status 1 if anything crashed.
#
#   FUZZ_MINIMIZE=1   rebuild each corpus as the smallest set covering what corpus and new inputs do
#   FUZZ_NICE=N       niceness of the fuzzer (default 10: it is a long CPU job)
#   FUZZ_ARGS=...     more libFuzzer flags
set -uo pipefail
cd "$(dirname "$0")/../.."
total=${1:-60}
half=$(( total / 2 > 0 ? total / 2 : 1 ))
out=build/fuzz

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

status=0
mkdir -p "$out/crashes"
for v in single threads; do
  corpus=tests/fuzz/corpus/$v work=$out/work/$v log=$out/$v.log
  mkdir -p "$corpus" "$work"
  echo "fuzz: $v for ${half}s (log in $log)"
  TIMEFORMAT="%U %S"
  cpu=$( { time nice -n "${FUZZ_NICE:-10}" "$out/fuzz-$v" -max_total_time="$half" -max_len=2048 \
             -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
             -artifact_prefix="$out/crashes/$v-" ${FUZZ_ARGS:-} "$work" "$corpus" >"$log" 2>&1; } 2>&1 )
  rc=$?
  [ $rc -ne 0 ] && { status=1; echo "fuzz: $v FAILED (exit $rc): see $log and $out/crashes/"; grep -m3 -E 'strata|ERROR|SUMMARY' "$log"; }
  # the figures: executions, speed, coverage (edges, features), corpus
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  read -r user sys <<<"$cpu"
  echo "fuzz: $v: ${execs:-?} executions, ${speed:-?}/s, $(sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\) \(corp: [^ ]*\).*/\1 \2 \3/p' <<<"$done_line"), CPU ${user}s user ${sys}s system"
  if [ -n "${FUZZ_MINIMIZE:-}" ]; then
    rm -rf "$out/min/$v" && mkdir -p "$out/min/$v"
    "$out/fuzz-$v" -merge=1 -max_len=2048 -timeout=20 "$out/min/$v" "$corpus" "$work" >"$out/$v-merge.log" 2>&1 &&
      rm -f "$corpus"/* && cp "$out/min/$v"/* "$corpus"/
  else
    "$out/fuzz-$v" -merge=1 -max_len=2048 -timeout=20 "$corpus" "$work" >"$out/$v-merge.log" 2>&1
  fi
  echo "fuzz: $v corpus: $(ls "$corpus" | wc -l) inputs, $(( $(cat "$corpus"/* | wc -c) / 1024 )) KiB"
done
exit $status
