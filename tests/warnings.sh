#!/bin/sh
# The library and the command build without a single warning (-Wall -Wextra and more) under gcc
# and clang: the same flags as the real build, with -Werror.
cd "$(dirname "$0")/.." || exit 1
for cc in gcc clang; do
  if ! command -v "$cc" >/dev/null 2>&1; then
    echo "skip warnings_$cc: $cc is not installed"
  elif out=$(make -s --no-print-directory check-warnings COMPILERS="$cc" 2>&1); then
    echo "ok warnings_$cc"
  else
    echo "not ok warnings_$cc: $(printf '%s' "$out" | grep -m1 -E 'warning|error')"
  fi
done
