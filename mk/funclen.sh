#!/bin/sh
# List top-level C functions longer than a limit, longest first.
#
# usage: mk/funclen.sh [LIMIT] [FILE...]
#   LIMIT defaults to 80; FILEs default to engine/**/*.c, ngx_module/*.c,
#   plugins/**/*.c, sim/*.c and bench/*.c (tests/ is not checked).
#
# The code base is nginx style: the return type on its own line, the name on
# the next, the body's "{" and "}" at column 0.  A function's length is the
# number of lines from its opening "{" to its closing "}", both included.
# Exit status is 1 when any function is over the limit; `make style` runs
# it, so a function that grows past 80 lines fails the build with the list.

limit=${1:-80}
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
    set -- $(find engine plugins -name '*.c' | sort) $(ls ngx_module/*.c) \
        $(ls sim/*.c) $(ls bench/*.c)
fi

awk -v limit="$limit" '
FNR == 1 { name = ""; start = 0; prev = "" }
/^\{/ {
    start = FNR
    name = prev
    sub(/\(.*/, "", name)
    sub(/^.*[ *]/, "", name)
    next
}
/^\}/ && start {
    len = FNR - start + 1
    if (len > limit)
        printf "%6d  %s:%d  %s\n", len, FILENAME, start, name
    start = 0
    next
}
/^[A-Za-z_]/ && !start { prev = $0 }
' "$@" | sort -rn > "${TMPDIR:-/tmp}/funclen.$$"

n=$(wc -l < "${TMPDIR:-/tmp}/funclen.$$")
cat "${TMPDIR:-/tmp}/funclen.$$"
rm -f "${TMPDIR:-/tmp}/funclen.$$"
if [ "$n" -eq 0 ]; then
    echo "funclen: no function over $limit lines"
    exit 0
fi
echo "funclen: $n function(s) over $limit lines (split each into helpers" \
     "that do one thing)" >&2
exit 1
