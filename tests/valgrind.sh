#!/bin/sh
# valgrind's memcheck sees the explicit allocators (src/support/vgrind.h): each bug planted in
# tests/valgrind/planted.c (a pool block read after reset, a cache object overflowed, pages written
# after they were freed, ...), run under `valgrind --error-exitcode=9`, is reported with its kind
# and the block it hit; the clean run, which works pools, caches and pages hard, is reported
# nothing (strata's own reads of its free lists are not the program's). Every run is made linked
# with libstrata (memcheck's malloc in front of strata's) and with libstrata-api (glibc's malloc).
cd "$(dirname "$0")/.." || exit 1
unset STRATA_OPTIONS LD_PRELOAD
if ! command -v valgrind >/dev/null 2>&1; then echo "skip valgrind: valgrind is not installed"; exit 0; fi
if ! command -v cc >/dev/null 2>&1; then echo "skip valgrind: no cc to build the planted program"; exit 0; fi
if ! valgrind -q true >/dev/null 2>&1; then echo "skip valgrind: valgrind does not run here"; exit 0; fi
if ! echo '#include <valgrind/memcheck.h>' | cc -E -x c - >/dev/null 2>&1; then
  echo "skip valgrind: no valgrind/memcheck.h: the library was built without client requests"; exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

for lib in strata strata-api; do
  if ! cc -std=gnu11 -g -O0 -fno-builtin -pthread -Iinclude tests/valgrind/planted.c -o "$tmp/planted-$lib" \
       -Llib -l"$lib" -Wl,-rpath,"$PWD/lib" 2>"$tmp/cc.log"; then
    echo "not ok valgrind_build: planted.c with -l$lib: $(head -n 1 "$tmp/cc.log")"; exit 0
  fi
done

# memcheck's report, its lines joined (for a "not ok" line)
report() { grep -v '^==[0-9]*== *$' "$tmp/err" | head -n 6 | sed 's/^==[0-9]*== *//' | tr '\n' ' '; }

# bug CASE KIND WHERE...: CASE is reported (exit 9) as KIND ("Invalid read of size 1"), the address
# described with every WHERE ("inside a block of size 24", "free'd").
bug() {
  case_=$1 kind=$2
  shift 2
  for lib in strata strata-api; do
    name=valgrind_$(printf '%s' "$case_" | tr '-' '_')
    [ "$lib" = strata ] || name=${name}_api
    bug_in "$@"
  done
}
bug_in() {
  valgrind -q --error-exitcode=9 "$tmp/planted-$lib" "$case_" >"$tmp/out" 2>"$tmp/err"
  code=$?
  if [ "$code" != 9 ] || ! grep -q "$kind" "$tmp/err"; then
    echo "not ok $name: exit $code, want 9 and '$kind': $(report)"; return
  fi
  addr=$(awk -v k="$kind" 'index($0, k) { f = 1 } f && /Address / { print; exit }' "$tmp/err")
  for where in "$@"; do
    case $addr in
      *"$where"*) ;;
      *) echo "not ok $name: the address not said to be '$where': $(report)"; return ;;
    esac
  done
  echo "ok $name"
}

bug pool-read-after-reset "Invalid read of size 1" "3 bytes inside a block of size 24 " "free'd"
bug pool-large-read-after-reset "Invalid read of size 1" "inside a block of size 9,000 " "free'd"
bug pool-read-after-destroy "Invalid read of size 1" "inside a block of size 24 " "free'd"
bug pool-overflow "Invalid write of size 1" "0 bytes after a block of size 16 "
bug cache-read-after-free "Invalid read of size 1" "3 bytes inside a block of size 20 " "free'd"
bug cache-overflow "Invalid write of size 1" "0 bytes after a block of size 20 " "alloc'd"
bug cache-uninitialised "Conditional jump or move depends on uninitialised value"
bug pages-write-after-free "Invalid write of size 1" "100 bytes inside a block of size " "free'd"
bug pages-read-past-end "Invalid read of size 1" "0 bytes after a block of size " "alloc'd"
bug pool-write-after-reset "Invalid write of size 1" "5 bytes inside a block of size 24 " "free'd"
bug pool-child-read-after-parent-reset "Invalid read of size 1" "3 bytes inside a block of size 24 " "free'd"
bug pool-aligned-overflow "Invalid read of size 1" "0 bytes after a block of size 100 "
bug cache-exact-overflow "Invalid read of size 1" "0 bytes after a block of size 32 " "alloc'd"
bug pool-strdup-overflow "Invalid read of size 1" "0 bytes after a block of size 6 "
bug cache-underflow "Invalid read of size 1" "1 bytes before a block of size 20 " "alloc'd"
bug cache-constructed-read-after-free "Invalid read of size 1" "3 bytes inside a block of size 40 " "free'd"
bug pages-underflow "Invalid write of size 1" "1 bytes before a "
bug pages-uninitialised "Conditional jump or move depends on uninitialised value"

for lib in strata strata-api; do
  valgrind -q --error-exitcode=9 "$tmp/planted-$lib" clean >"$tmp/out" 2>"$tmp/err"
  code=$?
  if [ "$code" = 0 ] && [ ! -s "$tmp/err" ] && grep -q "clean: done" "$tmp/out"; then
    echo "ok valgrind_clean_$(printf '%s' "$lib" | tr '-' '_')"
  else
    echo "not ok valgrind_clean_$(printf '%s' "$lib" | tr '-' '_'): exit $code: $(report)"
  fi
done
