#!/bin/sh
# suite-options.sh — what a STRATA_OPTIONS setting costs on the public suite: strata run by the
# suite's run.py without it and with it, alternating pass by pass (run.py -n 1 each time) so that
# a slow minute hurts both alike; medians of the passes, and with/without for each test (times and
# rtime: above 1 costs; larson's throughput: below 1 costs).
#
#   bench/suite-options.sh SUITE PASSES LIB OPTIONS [TESTS]
#   e.g. bench/suite-options.sh ../shared/suite 5 lib/libstrata.so guard_sample=1000
set -eu
[ $# -ge 4 ] || { echo "usage: $0 SUITE PASSES LIB OPTIONS [TESTS]" >&2; exit 2; }
suite=$1 passes=$2 lib=$3 options=$4 tests=${5:-}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
p=1
while [ "$p" -le "$passes" ]; do
  for mode in off on; do
    if [ $mode = on ]; then o=$options; else o=; fi
    STRATA_OPTIONS=$o python3 "$suite/run.py" -n 1 ${tests:+-t "$tests"} "$mode=$lib" 2>&1 >/dev/null |
      awk '$1 == "pass" && $5 != "FAILED" { print $3, $4, $5, $6 }' >>"$log"
  done
  p=$((p + 1))
done
# median per test and mode, then on/off
sort -k1,1 -k2,2 -k3,3g "$log" | awk -v opts="$options" '
  function flush() { if (n) { med[t, m] = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2;
                                rss[t, m] = r[int((n + 1) / 2)]; if (!(t in seen)) { seen[t] = 1; order[++k] = t } } n = 0 }
  { if ($1 != t || $2 != m) { flush(); t = $1; m = $2 } v[++n] = $3; r[n] = $4 }
  END { flush(); printf "| test | off | %s | on/off |\n|---|---:|---:|---:|\n", opts;
        for (i = 1; i <= k; i++) { t = order[i]; printf "| %s | %.3f / %.1f MiB | %.3f / %.1f MiB | %.3f |\n",
                                   t, med[t, "off"], rss[t, "off"], med[t, "on"], rss[t, "on"], med[t, "on"] / med[t, "off"] } }'
