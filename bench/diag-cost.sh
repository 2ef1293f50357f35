#!/bin/bash
# diag-cost.sh — what leak tracing (diag=leaks, what `strata leaks` runs) costs against plain
# libstrata.so: each program alternately under lib/libstrata.so and lib/libstrata-diag.so (and
# under an older diag library, BASE=path, to compare two builds), RUNS rounds (5), medians of the
# CPU seconds of each and the ratio to plain. Run it on an idle machine, after `make
# bench-build build/bench/mixed`:
#
#   bench/diag-cost.sh                         mixed, simple, perl, python3, cfrac, espresso
#   BASE=/tmp/old/libstrata-diag.so RUNS=7 bench/diag-cost.sh mixed simple
cd "$(dirname "$0")/.." || exit 1
RUNS=${RUNS:-5}
root=$PWD
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
progs=("$@")
[ ${#progs[@]} -eq 0 ] && progs=(mixed simple perl python3 cfrac espresso)

cmd_of() {
    case $1 in
        mixed) echo "$root/build/bench/mixed" ;;
        simple) echo "$root/build/bench/simple --scale 0.25" ;;
        perl) echo "perl -e 'my %h; \$h{\"k\$_\"} = [\$_, \"v\$_\"] for 1..300000; print scalar(keys %h), \"\\n\"'" ;;
        python3) echo "env PYTHONMALLOC=malloc $(python3 -c "import sys; print(sys.executable)" 2>/dev/null) -c 'd = {}
for i in range(100000): d[\"k%d\" % i] = [i, \"v%d\" % i, (i, i + 1)]
print(len(d))'" ;;
        cfrac) echo "$root/build/bench/cfrac --scale 0.05" ;;
        espresso) echo "$root/build/bench/espresso --scale 0.2" ;;
        *) echo "unknown program $1" >&2; exit 2 ;;
    esac
}

# one run: prints the CPU seconds of the whole process (perf stat's task-clock; start-up and exit,
# the leak scan, in it): less disturbed than the wall clock by other work on the machine
run1() { # LIB OPTIONS CMD
    perf stat -x, -e task-clock -o "$tmp/time" bash -c "exec env LD_PRELOAD='$1' STRATA_OPTIONS='$2' $3" \
        > /dev/null 2>&1 || { echo fail; return; }
    awk -F, '/task-clock/ { print $1 / 1000 }' "$tmp/time"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

tools=(plain diag)
[ -n "$BASE" ] && tools=(plain base diag)
printf '%-10s' program
for t in "${tools[@]}"; do printf ' %10s' "$t"; done
for t in "${tools[@]:1}"; do printf ' %10s' "$t/plain"; done
echo
for p in "${progs[@]}"; do
    c=$(cmd_of "$p") || exit 2
    for ((r = 0; r < RUNS; r++)); do
        for t in "${tools[@]}"; do
            case $t in
                plain) run1 "$root/lib/libstrata.so" "" "$c" ;;
                base) run1 "$BASE" "diag=leaks,diag_file=$tmp/d" "$c" ;;
                diag) run1 "$root/lib/libstrata-diag.so" "diag=leaks,diag_file=$tmp/d" "$c" ;;
            esac >> "$tmp/$p.$t"
            rm -f "$tmp"/d.*
        done
    done
    printf '%-10s' "$p"
    declare -A med
    for t in "${tools[@]}"; do med[$t]=$(median < "$tmp/$p.$t"); printf ' %10.4f' "${med[$t]}"; done
    for t in "${tools[@]:1}"; do printf ' %10.2f' "$(echo "${med[$t]} / ${med[plain]}" | bc -l)"; done
    echo
done
