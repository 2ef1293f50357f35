#!/bin/sh
# run.sh PROGRAM OPTIONS... — the ThreadSanitizer test (cross_thread.c) once without
# STRATA_OPTIONS and once with each OPTIONS, for tests/runner (tests/tsan.mk writes the script the
# runner runs). The program prints the ok / not ok lines; ThreadSanitizer's reports (and stats=1's
# report at exit) go to PROGRAM.log, whose reports are shown on stderr when a run fails.
prog=$1
shift
log=$prog.log
: >"$log"
st=0
for o in "" "$@"; do
  echo "== STRATA_OPTIONS=$o" >>"$log"
  STRATA_OPTIONS=$o "$prog" 2>>"$log" || st=1
done
if [ "$st" != 0 ]; then
  echo "   ThreadSanitizer's reports: $log"
  grep -A 24 'WARNING: ThreadSanitizer' "$log" | head -n 150 >&2
fi
exit "$st"
