#!/bin/sh
# suite-scaling.sh — the public suite's larson and xmalloc (mimalloc-bench's programs, built and
# run by the suite's run.py) with 1 and with 2 threads, under each allocator given: its figure at
# each count, strata/peer, and its own speed-up from 1 to 2. Passes alternate between the two
# counts (run.py -n 1 each time), so that a slow minute on a shared machine hurts both alike;
# medians of the passes. Writes a markdown table to OUT and, with --publish, puts it into DOC
# (BENCHMARKS.md) between its suite-scaling markers.
#
#   bench/suite-scaling.sh [--publish DOC] SUITE PASSES OUT NAME=LIB ...
#                                           (the first allocator is strata; NAME= for glibc)
#
# larson: `larson 5 8 1000 5000 100 4141 N`, N threads for 5 s, million operations per second
# (higher is better). xmalloc: `xmalloc-test -w N -t 5 -s 64`, N producer threads and N consumer
# threads for 5 s, its rtime (100 / million frees per second, lower is better): the suite's
# xmalloc has no 1-thread form, so its "1" is 1 producer + 1 consumer and its "2" is 2 + 2.
set -eu
doc=""
[ "${1:-}" = --publish ] && [ $# -ge 2 ] && { doc=$2; shift 2; }
[ $# -ge 4 ] || { echo "usage: $0 [--publish DOC] SUITE PASSES OUT NAME=LIB ..." >&2; exit 2; }
suite=$1 passes=$2 out=$3
shift 3
command -v python3 >/dev/null || { echo "suite-scaling: needs python3 (the suite's run.py)" >&2; exit 1; }
[ -r "$suite/run.py" ] || { echo "suite-scaling: no $suite/run.py (SUITE=...)" >&2; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
p=1
while [ "$p" -le "$passes" ]; do
  for j in 1 2; do
    # run.py's per-run lines on stderr: "pass 1 TEST ALLOC FIGURE RSS MiB" or "... FAILED (exit N)"
    python3 "$suite/run.py" -n 1 -t larson,xmalloc -j "$j" "$@" 2>&1 >/dev/null |
      awk -v j="$j" '$1 == "pass" { $1 = j; $2 = ""; print; next } { print >"/dev/stderr" }' >>"$log"
    echo "suite-scaling: pass $p/$passes, $j thread(s) done" >&2
  done
  p=$((p + 1))
done

names=""
for a in "$@"; do names="$names ${a%%=*}"; done

awk -v names="$names" -v passes="$passes" '
function median(key,    n, i, k, v, t) {
    n = cnt[key]
    if (!n || fail[key]) return ""
    for (i = 1; i <= n; i++) v[i] = val[key, i]
    for (i = 2; i <= n; i++)          # insertion sort: a handful of passes
        for (k = i; k > 1 && v[k - 1] > v[k]; k--) { t = v[k]; v[k] = v[k - 1]; v[k - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{   # j test alloc figure-or-FAILED ...
    key = $2 SUBSEP $3 SUBSEP $1
    if ($4 == "FAILED") fail[key] = 1
    else val[key, ++cnt[key]] = $4
}
END {
    na = split(names, alloc, " ")
    printf "| test | threads |"
    for (a = 1; a <= na; a++) printf " %s |", alloc[a]
    printf "\n|---|---|"
    for (a = 1; a <= na; a++) printf "---:|"
    printf "\n"
    split("larson xmalloc", tests, " ")
    for (t = 1; t <= 2; t++) {
        test = tests[t]
        higher = test == "larson"
        for (j = 1; j <= 2; j++) {
            label = test == "larson" ? (j == 1 ? "1" : "2") : (j == 1 ? "1 + 1" : "2 + 2")
            printf "|%s| %s |", j == 1 ? (higher ? " larson, Mops/s " : " xmalloc, rtime ") : " ", label
            s = median(test SUBSEP alloc[1] SUBSEP j)
            for (a = 1; a <= na; a++) {
                m = median(test SUBSEP alloc[a] SUBSEP j)
                if (m == "") { printf " FAIL |"; continue }
                f[a, j] = m
                if (a == 1 || s == "" || m == 0 || s == 0) printf " %.3f |", m
                else printf " %.3f (%.2f) |", m, higher ? m / s : s / m
            }
            printf "\n"
        }
        printf "| | 1 → 2: speed-up |"
        for (a = 1; a <= na; a++) {
            if ((a, 1) in f && (a, 2) in f && f[a, 1] > 0 && f[a, 2] > 0)
                printf " ×%.2f |", higher ? f[a, 2] / f[a, 1] : f[a, 1] / f[a, 2]
            else printf " – |"
        }
        printf "\n"
        delete f
    }
    printf "\nMedians of %d pass%s, the two thread counts alternating. larson: million operations per " \
           "second, higher is better; xmalloc: its rtime, lower is better, with N producer and N " \
           "consumer threads (it has no 1-thread form). In parentheses %s/peer as in the main " \
           "table (for larson the peer'"'"'s Mops/s over %s'"'"'s): below 1 means %s is better. The " \
           "speed-up row divides each allocator'"'"'s throughput with 2 threads (2 + 2) by its own " \
           "with 1 (1 + 1).\n", passes, passes == 1 ? "" : "es", alloc[1], alloc[1], alloc[1]
}' "$log" >"$out"

echo >>"$out"
echo "Libraries:" >>"$out"
for a in "$@"; do
  lib=${a#*=}
  echo "- ${a%%=*}: ${lib:-the system allocator, glibc $(ldd --version 2>/dev/null | awk 'NR == 1 { print $NF }') (nothing preloaded)}" >>"$out"
done
cat "$out"

# the table between "<!-- bench:suite-scaling:begin -->" and its end marker, as the driver does
if [ -n "$doc" ]; then
  if awk -v file="$out" '
    $0 == "<!-- bench:suite-scaling:end -->" { skip = 0; found = 1 }
    !skip { print }
    $0 == "<!-- bench:suite-scaling:begin -->" { while ((getline line <file) > 0) print line; skip = 1 }
    END { if (!found) exit 1 }' "$doc" >"$doc.tmp"; then
    mv "$doc.tmp" "$doc"
    echo "updated $doc (suite-scaling)"
  else
    rm -f "$doc.tmp"
    echo "$doc has no suite-scaling markers: not updated" >&2
  fi
fi
