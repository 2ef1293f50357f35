#!/bin/sh
# `make install` puts the libraries, the header, the command, pkg-config files and the manual
# pages under DESTDIR/PREFIX, and a program built against the installed files (through
# pkg-config) runs on strata; man finds the installed pages, and `make uninstall` removes them.
cd "$(dirname "$0")/.." || exit 1
dest=$(mktemp -d) || exit 1
trap 'rm -rf "$dest"' EXIT
prefix=/opt/strata-test

if ! make -s --no-print-directory install DESTDIR="$dest" PREFIX="$prefix" >"$dest/log" 2>&1; then
  echo "not ok install: make install failed: $(tail -n 1 "$dest/log")"; exit 0
fi
root="$dest$prefix"
missing=""
for f in lib/libstrata.so lib/libstrata.a lib/libstrata-api.so lib/libstrata-api.a \
         include/strata.h bin/strata lib/pkgconfig/strata.pc lib/pkgconfig/strata-api.pc \
         share/man/man1/strata.1 share/man/man3/strata.3 share/man/man7/strata-options.7; do
  [ -e "$root/$f" ] || missing="$missing $f"
done
if [ -n "$missing" ]; then echo "not ok install_files: missing$missing"; else echo "ok install_files"; fi

if ! command -v pkg-config >/dev/null 2>&1; then
  echo "skip install_pkg_config: pkg-config is not installed"
else
  export PKG_CONFIG_PATH="$root/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
  cflags=$(pkg-config --cflags strata) libs=$(pkg-config --libs strata)
  cat > "$dest/prog.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <strata.h>
int main(void) {
    void *p = malloc(1000);
    struct strata_stats s;
    strata_get_stats(&s);
    printf("%s %d\n", strata_version(), s.in_use_bytes >= 1000);
    free(p);
    return 0;
}
C
  if cc -fno-builtin $cflags "$dest/prog.c" -o "$dest/prog" $libs -Wl,-rpath,"$root/lib" 2>"$dest/cc.log" &&
     out=$("$dest/prog") && [ "$out" = "$(sed -n 's/^#define STRATA_VERSION_STRING "\(.*\)"/\1/p' include/strata.h) 1" ]; then
    echo "ok install_pkg_config"
  else
    echo "not ok install_pkg_config: $(head -n 1 "$dest/cc.log") output '$out'"
  fi
fi

# the installed command finds the installed library next to it
out=$(STRATA_OPTIONS=verbose=1 "$root/bin/strata" run -- sh -c 'ls / >/dev/null' 2>&1)
case "$out" in
  *"strata: version"*) echo "ok installed_command_runs_programs" ;;
  *) echo "not ok installed_command_runs_programs: $out" ;;
esac

# man finds the installed pages by name, in their sections
if ! command -v man >/dev/null 2>&1; then
  echo "skip install_man: man is not installed"
else
  bad=""
  for page in 1:strata 3:strata 7:strata-options; do
    found=$(MANPATH="$root/share/man" man -w "${page%%:*}" "${page#*:}" 2>&1)
    [ "$found" = "$root/share/man/man${page%%:*}/${page#*:}.${page%%:*}" ] || bad="$bad ${page#*:}(${page%%:*}): '$found'"
  done
  if [ -n "$bad" ]; then echo "not ok install_man:$bad"; else echo "ok install_man"; fi
fi

# make uninstall takes the pages away again
if ! make -s --no-print-directory uninstall DESTDIR="$dest" PREFIX="$prefix" >"$dest/log" 2>&1; then
  echo "not ok uninstall_man: make uninstall failed: $(tail -n 1 "$dest/log")"
else
  left=$(find "$root/share/man" -type f 2>/dev/null)
  if [ -n "$left" ]; then echo "not ok uninstall_man: left behind: $left"; else echo "ok uninstall_man"; fi
fi
