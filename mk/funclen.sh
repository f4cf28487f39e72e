#!/bin/sh
# List top-level C functions longer than a limit, longest first.
#
# usage: mk/funclen.sh [LIMIT] [FILE...]
#   LIMIT defaults to 80; FILEs default to engine/**/*.c and ngx_module/*.c.
#
# The code base is nginx style: the return type on its own line, the name on
# the next, the body's "{" and "}" at column 0.  A function's length is the
# number of lines from its opening "{" to its closing "}", both included.
# Exit status is 1 when any function is over the limit, so the script can
# guard a build once every function is under it.

limit=${1:-80}
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
    set -- $(find engine -name '*.c' | sort) $(ls ngx_module/*.c)
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
echo "$n function(s) over $limit lines" >&2
[ "$n" -eq 0 ]
