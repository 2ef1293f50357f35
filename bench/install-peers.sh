#!/bin/sh
# Install the peer allocators the benchmarks compare strata with (Debian packages), if missing.
# Says exactly what it could not install; the driver then skips that column and says so too.
missing=""
for pkg in libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
echo "bench: installing peer allocators:$missing"
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
