#!/bin/sh
# `make install` puts a CMake package config under PREFIX/lib/cmake/strata: a project with
# find_package(strata REQUIRED) finds the installed files (here under DESTDIR, so found from the
# config's own place, not PREFIX), and its programs linked with strata::strata, strata::api and
# their static forms run on strata; find_package(strata VERSION) takes the versions it should
# (strataConfigVersion.cmake: the minor version is the compatibility boundary while the major is
# 0); `make uninstall` removes the files.
cd "$(dirname "$0")/.." || exit 1
if ! command -v cmake >/dev/null 2>&1; then
  echo "skip cmake_package: cmake is not installed"; exit 0
fi
dest=$(mktemp -d) || exit 1
trap 'rm -rf "$dest"' EXIT
prefix=/opt/strata-test
root="$dest$prefix"
version=$(sed -n 's/^#define STRATA_VERSION_STRING "\(.*\)"/\1/p' include/strata.h)
major=${version%%.*} rest=${version#*.}
minor=${rest%%.*} patch=${rest#*.}

if ! make -s --no-print-directory install DESTDIR="$dest" PREFIX="$prefix" >"$dest/log" 2>&1; then
  echo "not ok cmake_package: make install failed: $(tail -n 1 "$dest/log")"; exit 0
fi
for f in strataConfig.cmake strataConfigVersion.cmake; do
  if [ ! -f "$root/lib/cmake/strata/$f" ]; then
    echo "not ok cmake_package: make install put no lib/cmake/strata/$f"; exit 0
  fi
done

# Each program prints the version, whether strata counted its block, and which strata library
# the process has mapped ("none" when linked statically).
mkdir "$dest/src"
cat > "$dest/src/common.h" <<'C'
#include <stdio.h>
#include <string.h>
#include <strata.h>
static void mapped(char *out, size_t n) {
    char line[4096];
    FILE *f = fopen("/proc/self/maps", "r");
    snprintf(out, n, "none");
    while (f && fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (path && strstr(path, "/libstrata")) {
            path[strcspn(path, "\n")] = 0;
            snprintf(out, n, "%s", path);
            break;
        }
    }
    if (f) fclose(f);
}
C
cat > "$dest/src/whole.c" <<'C'
#include <stdlib.h>
#include "common.h"
/* strata::strata: malloc itself is strata's */
int main(void) {
    char lib[4096];
    void *volatile p = malloc(1000);
    struct strata_stats s;
    strata_get_stats(&s);
    mapped(lib, sizeof lib);
    printf("%s %d %s\n", strata_version(), s.in_use_bytes >= 1000, lib);
    free(p);
    return 0;
}
C
cat > "$dest/src/beside.c" <<'C'
#include <stdlib.h>
#include "common.h"
/* strata::api: strata_malloc is strata's, malloc stays glibc's */
int main(void) {
    char lib[4096];
    struct strata_stats a, b, c;
    strata_get_stats(&a);
    void *volatile p = strata_malloc(1000);
    strata_get_stats(&b);
    void *volatile q = malloc(1000);
    strata_get_stats(&c);
    mapped(lib, sizeof lib);
    printf("%s %d %s\n", strata_version(),
           b.in_use_bytes >= a.in_use_bytes + 1000 && c.in_use_bytes == b.in_use_bytes, lib);
    free(q);
    strata_free(p);
    return 0;
}
C
cat > "$dest/src/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.13)
project(strata_consumer C)
find_package(strata REQUIRED)
message(STATUS "found strata \${strata_VERSION} in \${strata_DIR}")
add_executable(whole whole.c)
target_link_libraries(whole PRIVATE strata::strata)
add_executable(beside beside.c)
target_link_libraries(beside PRIVATE strata::api)
add_executable(whole_static whole.c)
target_link_libraries(whole_static PRIVATE strata::strata_static)
add_executable(beside_static beside.c)
target_link_libraries(beside_static PRIVATE strata::api_static)
EOF
# only this install: no user package registry, no strata under the system's prefixes
nosys="-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_CMAKE_SYSTEM_PATH=OFF"
if ! cmake -S "$dest/src" -B "$dest/build" -DCMAKE_PREFIX_PATH="$root" $nosys >"$dest/configure.log" 2>&1; then
  echo "not ok cmake_package: configuring failed: $(grep -m 1 -A 3 'Error' "$dest/configure.log" | tr '\n' ' ')"; exit 0
fi
if ! grep -q "found strata $version in $root/lib/cmake/strata\$" "$dest/configure.log"; then
  echo "not ok cmake_package: $(grep 'found strata' "$dest/configure.log" || echo 'no strata found'), not $version in $root/lib/cmake/strata"; exit 0
fi
if ! cmake --build "$dest/build" >"$dest/build.log" 2>&1; then
  echo "not ok cmake_package: building failed: $(grep -m 1 -i 'error' "$dest/build.log")"; exit 0
fi
echo "ok cmake_package"

lib=$(cd "$root/lib" && pwd -P)
for t in "whole strata::strata $lib/libstrata.so" "beside strata::api $lib/libstrata-api.so" \
         "whole_static strata::strata_static none" "beside_static strata::api_static none"; do
  set -- $t
  out=$("$dest/build/$1" 2>&1)
  if [ "$out" = "$version 1 $3" ]; then
    echo "ok cmake_$1"
  else
    echo "not ok cmake_$1: linked with $2, printed '$out', not '$version 1 $3'"
  fi
done

# Which version requests this install satisfies: yes or no for each (a range needs CMake 3.19).
next_minor=$((minor + 1)) next_patch=$((patch + 1))
if [ "$major" -eq 0 ]; then older_minor=99; else older_minor=0; fi
cat > "$dest/versions.txt" <<EOF
$version yes
$version+EXACT yes
$major.$minor yes
$major.$minor+EXACT no
$major.$minor.$next_patch no
$major.$next_minor no
99 no
$major.$minor...<99 yes
$major.$next_minor...99 no
EOF
if [ "$major" -eq 0 ]; then
  # 0.x: a minor release may break; 0 alone means 0.0
  [ "$minor" -gt 0 ] && echo "0.$((minor - 1)) no" >>"$dest/versions.txt" && echo "0 no" >>"$dest/versions.txt"
else
  echo "$major yes" >>"$dest/versions.txt"
  echo "$((major + 1)) no" >>"$dest/versions.txt"
fi
{
  echo "cmake_minimum_required(VERSION 3.19)"
  echo "project(strata_versions C)"
  while read -r request want; do
    echo "find_package(strata $(echo "$request" | tr + ' ') QUIET)"
    echo "if(strata_FOUND)"
    echo "  message(STATUS \"request $request yes\")"
    echo "else()"
    echo "  message(STATUS \"request $request no\")"
    echo "endif()"
  done <"$dest/versions.txt"
  echo "find_package(strata 99 REQUIRED)"
  echo "message(STATUS \"request 99 REQUIRED did not stop\")"
} >"$dest/src/CMakeLists.txt"
rm -rf "$dest/build"
cmake -S "$dest/src" -B "$dest/build" -DCMAKE_PREFIX_PATH="$root" $nosys >"$dest/versions.log" 2>&1
rc=$?
sed -n 's/^-- request //p' "$dest/versions.log" >"$dest/got.txt"
if [ $rc -ne 0 ] && grep -q 'requested version "99"' "$dest/versions.log" &&
   printf '%s\n' "$(cat "$dest/versions.txt")" | cmp -s - "$dest/got.txt"; then
  echo "ok cmake_versions"
else
  echo "not ok cmake_versions: exit $rc; want $(tr '\n' ',' <"$dest/versions.txt") got $(tr '\n' ',' <"$dest/got.txt")"
fi

make -s --no-print-directory uninstall DESTDIR="$dest" PREFIX="$prefix" >"$dest/log" 2>&1
if [ -e "$root/lib/cmake/strata" ]; then
  echo "not ok cmake_uninstall: $(ls "$root/lib/cmake/strata" | tr '\n' ' ')left in lib/cmake/strata"
else
  echo "ok cmake_uninstall"
fi
