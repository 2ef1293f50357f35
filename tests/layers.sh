#!/bin/sh
# The layers the compiler sees: the order is written once, in ARCHITECTURE.md (the line starting
# "Layer order:"); this checks the code against it.
#   includes  no file of src/ includes a header of a layer above its own, and another layer's
#             files include only its layer header (the public ones listed below); tools/ includes
#             only the statistics file's and the dump's formats; no catch-all header in src/
#   calls     no object of the release build uses a symbol defined in a layer above its own (nm)
cd "$(dirname "$0")/.." || exit 1
order=$(sed -n 's/^Layer order: *//p' ARCHITECTURE.md | head -n 1)
if [ -z "$order" ]; then echo "not ok layers_order: no 'Layer order:' line in ARCHITECTURE.md"; exit 0; fi

# rank: position in the order; layers joined by '|' share a rank and may not use each other.
ranks=$(printf '%s\n' "$order" | awk '{ n = split($0, a, /[ \t]*<[ \t]*/); for (i = 1; i <= n; i++) { m = split(a[i], b, /[ \t]*\|[ \t]*/); for (j = 1; j <= m; j++) print b[j], i } }')
public="support/support.h support/statfile.h support/record.h os/os.h region/region.h heap/heap.h core/core.h secure/secure.h api/api.h api/entry.h explicit/explicit.h diag/diag.h"
base="config.h types.h sizeclass.h base.h"

fail=0
# a header at the root of src/ that is not a base one is a catch-all coming back
for h in src/*.h; do
  case " $base " in *" ${h#src/} "*) ;; *) echo "not ok layers_includes: $h is not a base header (a catch-all?)"; fail=1 ;; esac
done
for d in src/*/; do
  l=$(basename "$d")
  printf '%s\n' "$ranks" | grep -q "^$l " || { echo "not ok layers_includes: src/$l is not in the layer order"; fail=1; }
done

out=$(for f in src/*.h src/*/*.c src/*/*.h tools/*.c tools/*.h; do
  [ -f "$f" ] || continue
  grep -n '^#include "' "$f" | sed "s|^|$f:|"
done | awk -v ranks="$ranks" -v public="$public" -v base="$base" '
  BEGIN {
    n = split(ranks, r, "\n"); for (i = 1; i <= n; i++) { split(r[i], p, " "); rank[p[1]] = p[2] }
    n = split(public, p, " "); for (i = 1; i <= n; i++) pub[p[i]] = 1
    n = split(base, p, " "); for (i = 1; i <= n; i++) isbase[p[i]] = 1
  }
  {
    file = $0; sub(/:.*/, "", file)
    inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
    dir = file; sub(/\/[^\/]*$/, "", dir)
    path = dir "/" inc
    while (path ~ /[^\/]+\/\.\.\//) sub(/[^\/]+\/\.\.\//, "", path)
    if (path !~ /^src\//) next                     # system-like headers, tools/ own, include/
    rel = substr(path, 5)
    tl = (rel ~ /\//) ? rel : "base"; sub(/\/.*/, "", tl)
    if (file ~ /^tools\//) {
      if (!(rel in pub) || (rel != "support/support.h" && rel != "support/statfile.h" && rel != "support/record.h"))
        print file ": includes " rel " (the command takes only support.h, statfile.h and record.h)"
      next
    }
    fl = substr(file, 5); if (fl ~ /\//) sub(/\/.*/, "", fl); else fl = "base"
    if (fl == tl) next
    if (tl == "base") { if (!(rel in isbase)) print file ": includes " rel; next }
    if (rank[tl] > rank[fl] || rank[tl] == rank[fl]) print file " (" fl "): includes " rel " of layer " tl ", not below it"
    else if (!(rel in pub)) print file " (" fl "): includes " rel ", not the layer header of " tl
  }')
if [ -n "$out" ]; then printf '%s\n' "$out" | sed 's/^/# /'; echo "not ok layers_includes: $(printf '%s\n' "$out" | head -n 1)"; fail=1
else echo "ok layers_includes"; fi

# calls (and variables): from the release build's objects, when they are there
objs=$(ls build/rel/*/*.o 2>/dev/null)
if [ -z "$objs" ] || ! command -v nm >/dev/null 2>&1; then
  echo "skip layers_calls: no build/rel objects or no nm (make all first)"; exit 0
fi
out=$(for o in $objs; do
  src=${o#build/rel/}; src=src/${src%.o}.c
  case $o in
  */api/override.o | */api/prefixed.o) ;; # api.c built for libstrata and libstrata-api
  *) [ -f "$src" ] || continue ;;         # left over from a file since moved
  esac
  l=${o#build/rel/}; l=${l%%/*}
  nm "$o" | awk -v o="$o" -v l="$l" '$1 == "U" { print "U", o, l, $2 } NF == 3 && $2 ~ /^[TDBRC]$/ { print "D", o, l, $3 }'
done | awk -v ranks="$ranks" '
  BEGIN { n = split(ranks, r, "\n"); for (i = 1; i <= n; i++) { split(r[i], p, " "); rank[p[1]] = p[2] } }
  $1 == "D" { def[$4] = $3; defo[$4] = $2; next }
  { use[NR] = $0 }
  END {
    for (k in use) {
      split(use[k], u, " "); s = u[4]
      if (!(s in def)) continue
      if (def[s] != u[3] && rank[def[s]] >= rank[u[3]]) print u[2] " (" u[3] ") uses " s " of " defo[s] " (" def[s] ")"
    }
  }' | sort)
if [ -n "$out" ]; then printf '%s\n' "$out" | sed 's/^/# /'; echo "not ok layers_calls: $(printf '%s\n' "$out" | head -n 1)"; fail=1
else echo "ok layers_calls"; fi
exit 0
