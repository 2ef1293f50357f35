#!/bin/sh
# Install the Debian packages the benchmarks compare strata with, if missing: by default the peer
# allocators; `install-peers.sh valgrind heaptrack` for make bench-diag.
# Says exactly what it could not install; the driver then skips that column and says so too.
[ $# -eq 0 ] && set -- libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0
missing=""
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
echo "bench: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get install -y -qq $missing >/dev/null 2>&1 ||
       { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq $missing >/dev/null 2>&1; }; }; then
  for pkg in $missing; do
    dpkg -s "$pkg" >/dev/null 2>&1 || echo "bench: could not install $pkg (apt-get failed): its column will be skipped"
  done
fi
exit 0
