#!/bin/sh
# Nothing in strata may assume 4 KiB pages: arm64 kernels run with 16 KiB or 64 KiB ones. Here
# the release build's unit and API tests run again with the page size strata believes forced to
# 16 KiB and to 64 KiB (STRATA_TEST_PAGE_SIZE: every mapping is then aligned to it and every guard
# and decommit a multiple of it, as on such a kernel), and the ones that hold in secure mode run
# in secure mode at 64 KiB (a guard page is then as large as a small page's whole span).
# Each result is passed on as one of this script's, named pagesize/16k/PROGRAM/TEST.
cd "$(dirname "$0")/.." || exit 1

# run PROGRAM with the environment after it, echoing its results under NAME
run() {
  name=$1 prog=$2; shift 2
  [ -x "$prog" ] || { echo "not ok $name: $prog is not built"; return; }
  out=$(env "$@" "$prog" 2>&1); rc=$?
  printf '%s\n' "$out" | sed -n -e "s|^ok |ok $name/|p" -e "s|^not ok |not ok $name/|p" -e "s|^skip |skip $name/|p"
  if [ $rc -ne 0 ] || ! printf '%s\n' "$out" | grep -q '^ok '; then
    echo "not ok $name: exit $rc: $(printf '%s\n' "$out" | grep -v '^ok ' | tail -n 1)"
  fi
}

for size in 16384 65536; do
  for t in build/tests/rel/*; do
    run "pagesize/$((size / 1024))k/${t##*/}" "$t" STRATA_TEST_PAGE_SIZE=$size
  done
done
# the units secure mode shares with the default one (tests/programs/secure_units.c)
for u in align semantics churn compat cxx early orphans oom threads fork hugepages; do
  run "pagesize/64k-secure/$u" "build/tests/rel/$u" STRATA_TEST_PAGE_SIZE=65536 STRATA_OPTIONS=secure=1
done

# a page size strata cannot use is refused with a message, and the kernel's stays
out=$(LD_PRELOAD=$PWD/lib/libstrata.so STRATA_TEST_PAGE_SIZE=12288 sh -c 'true' 2>&1)
case "$out" in
  *"strata: bad value for STRATA_TEST_PAGE_SIZE"*) echo "ok pagesize/bad_value_warns" ;;
  *) echo "not ok pagesize/bad_value_warns: got '$out'" ;;
esac
