#!/bin/sh
# The manual pages in man/ against what the program and the libraries say about themselves:
#   strata(1)          a section (.SS "strata SUB") for every subcommand `strata --help` names,
#                      with every option `strata SUB --help` lists in it (-h, --help in OPTIONS),
#                      and no section for a subcommand that is gone;
#   strata-options(7)  an entry for every setting `strata options` lists, saying "Default:" with
#                      the value it prints, and none for a setting that is gone;
#   strata(3)          every function libstrata.so, libstrata-api.so, libstrata-secure.so and
#                      libstrata-diag.so export (nm -D);
# that each page carries the version of include/strata.h, and that groff and man render each
# without a warning.
cd "$(dirname "$0")/.." || exit 1
strata=bin/strata
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
unset STRATA_OPTIONS STRATA_LIBRARY LD_PRELOAD

# The text of a page's source with the roff escapes that matter here taken out: \- is -, font
# changes go, and a macro's name at the start of a line is dropped (".BI -o, --options " -> text).
plain() {
  sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(dq/"/g' -e 's/\\e/\\/g' -e 's/\\c$//' -e 's/\\&//g' \
      -e 's/^\.[A-Za-z][A-Za-z]* *//' "$1"
}
# Does the text on stdin hold the option $1 as a word of its own (not part of a longer option)?
has_option() { grep -Eq -- "(^|[^-[:alnum:]])$1([^-[:alnum:]]|\$)"; }

for page in man/strata.1 man/strata.3 man/strata-options.7; do
  [ -r "$page" ] || { echo "not ok man_pages: $page is missing"; exit 0; }
done
[ -x "$strata" ] || { echo "not ok man_pages: $strata is not built"; exit 0; }
echo "ok man_pages"

# ---- strata(1): subcommands and their options ----
"$strata" --help > "$tmp/help" 2>&1 || { echo "not ok man_subcommands: strata --help failed: $(head -n 1 "$tmp/help")"; exit 0; }
sed -nE 's/^(usage:| {6}) strata ([a-z]+).*/\2/p' "$tmp/help" | awk '!seen[$0]++' > "$tmp/subs"
# A section of page $1, as plain text: from the heading "$2 $3" (".SS strata run", ".SH OPTIONS")
# to the next heading.
section() {
  awk -v macro="$2" -v want="$3" '
    /^\.S[SH] / { title = $0; sub(/^\.S[SH] +/, "", title); gsub(/"/, "", title); on = ($1 == macro && title == want); next }
    on' "$1" > "$tmp/section.roff"
  plain "$tmp/section.roff"
}
missing=""
n=0
while read -r sub; do
  n=$((n + 1))
  grep -Eq "^\.SS \"?strata $sub\"?\$" man/strata.1 || missing="$missing $sub"
done < "$tmp/subs"
stale=""
for sub in $(sed -nE 's/^\.SS "?strata ([a-z]+)"?$/\1/p' man/strata.1); do
  grep -qx "$sub" "$tmp/subs" || stale="$stale $sub"
done
if [ "$n" -lt 8 ]; then echo "not ok man_subcommands: strata --help names only $n subcommands: $(cat "$tmp/subs" | tr '\n' ' ')"
elif [ -n "$missing" ]; then echo "not ok man_subcommands: strata(1) has no section for:$missing"
elif [ -n "$stale" ]; then echo "not ok man_subcommands: strata(1) describes subcommands strata does not have:$stale"
else echo "ok man_subcommands ($n)"; fi

missing=""
count=0
while read -r sub; do
  "$strata" "$sub" --help > "$tmp/sub.help" 2>&1 || { missing="$missing $sub(--help failed)"; continue; }
  sed -nE 's/^  (-[A-Za-z]), (--[a-z][-a-z]*).*/\1\n\2/p; s/^      (--[a-z][-a-z]*).*/\1/p' "$tmp/sub.help" > "$tmp/opts"
  section man/strata.1 .SS "strata $sub" > "$tmp/section"
  for opt in $(cat "$tmp/opts"); do
    count=$((count + 1))
    case "$opt" in
      -h|--help) section man/strata.1 .SH OPTIONS | has_option "$opt" ||
                   case "$missing " in *" $opt(OPTIONS) "*) ;; *) missing="$missing $opt(OPTIONS)" ;; esac ;;
      *) has_option "$opt" < "$tmp/section" || missing="$missing $sub:$opt" ;;
    esac
  done
done < "$tmp/subs"
if [ "$count" -lt 30 ]; then echo "not ok man_subcommand_options: only $count options found in the subcommands' --help"
elif [ -n "$missing" ]; then echo "not ok man_subcommand_options: not in strata(1):$missing"
else echo "ok man_subcommand_options ($count)"; fi

# ---- strata-options(7): every setting, with its default ----
if ! "$strata" options > "$tmp/options" 2>&1; then
  echo "not ok man_settings: strata options failed: $(head -n 1 "$tmp/options")"
else
  sed -nE 's/^  ([a-z_]+)=(.*)$/\1 \2/p' "$tmp/options" > "$tmp/settings"
  bad=""
  n=0
  while read -r name value; do
    n=$((n + 1))
    # the entry: from the line ".BI name= TYPE" to the next .TP, .SS or .SH, as one line
    text=$(awk -v name="$name" '
      /^\.(TP|SS|SH)( |$)/ { if (on) exit }
      $0 ~ "^\\.BI? \"?" name "=" { on = 1 }
      on' man/strata-options.7 > "$tmp/entry.roff"; plain "$tmp/entry.roff" | tr '\n' ' ')
    [ -n "$text" ] || { bad="$bad $name(no entry)"; continue; }
    default=${text#*Default:}
    [ "$default" != "$text" ] || { bad="$bad $name(no Default:)"; continue; }
    default=$(printf '%s\n' "$default" | sed 's/\. .*//')
    [ "$value" = '""' ] && value=none
    printf '%s\n' "$default" | grep -qw -- "$value" || bad="$bad $name(default $value, page: '$default')"
  done < "$tmp/settings"
  for name in $(plain man/strata-options.7 | sed -nE 's/^"?([a-z_]+)= .*/\1/p'); do
    grep -q "^$name " "$tmp/settings" || bad="$bad $name(not a setting of strata options)"
  done
  if [ "$n" -lt 20 ]; then echo "not ok man_settings: strata options listed only $n settings"
  elif [ -n "$bad" ]; then echo "not ok man_settings: strata-options(7):$bad"
  else echo "ok man_settings ($n)"; fi
fi

# ---- strata(3): every exported function ----
if ! command -v nm >/dev/null 2>&1; then
  echo "skip man_functions: nm is not installed"
else
  plain man/strata.3 > "$tmp/strata.3"
  missing=""
  n=0
  for lib in lib/libstrata.so lib/libstrata-api.so lib/libstrata-secure.so lib/libstrata-diag.so; do
    [ -r "$lib" ] || { missing="$missing $lib(not built)"; continue; }
    for sym in $(nm -D --defined-only "$lib" | awk '$2 ~ /^[TWi]$/ { print $3 }' | sed 's/@.*//'); do
      n=$((n + 1))
      grep -qw -- "$sym" "$tmp/strata.3" || case "$missing " in *" $sym "*) ;; *) missing="$missing $sym" ;; esac
    done
  done
  if [ "$n" -lt 100 ]; then echo "not ok man_functions: only $n exported functions found"
  elif [ -n "$missing" ]; then echo "not ok man_functions: not in strata(3):$missing"
  else echo "ok man_functions ($n)"; fi
fi

# ---- the version, and rendering ----
version=$(sed -n 's/^#define STRATA_VERSION_STRING "\(.*\)"/\1/p' include/strata.h)
bad=""
for page in man/strata.1 man/strata.3 man/strata-options.7; do
  grep -q "^\.TH .*\"strata $version\"" "$page" || bad="$bad $page"
done
if [ -n "$bad" ]; then echo "not ok man_version: not marked \"strata $version\" in .TH:$bad"; else echo "ok man_version"; fi

# groff with every warning on, and man as a reader would run it: no warning, and the whole page
render() {
  case "$1" in
    groff) groff -man -ww -z "$2" > "$tmp/rendered" 2> "$tmp/warnings" ;;
    man) MANWIDTH=80 MANPAGER=cat PAGER=cat man --warnings -l "$2" > "$tmp/rendered" 2> "$tmp/warnings" &&
           grep -q '^NAME' "$tmp/rendered" && grep -q '^SEE ALSO' "$tmp/rendered" ;;
  esac && [ ! -s "$tmp/warnings" ]
}
for tool in groff man; do
  if ! command -v "$tool" >/dev/null 2>&1; then echo "skip man_render_$tool: $tool is not installed"; continue; fi
  bad=""
  for page in man/strata.1 man/strata.3 man/strata-options.7; do
    render "$tool" "$page" || bad="$bad $page: $(head -n 2 "$tmp/warnings" | tr '\n' ' ')"
  done
  if [ -n "$bad" ]; then echo "not ok man_render_$tool:$bad"; else echo "ok man_render_$tool"; fi
done
