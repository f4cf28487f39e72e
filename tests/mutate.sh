#!/usr/bin/env bash
# tests/mutate.sh NAME...   (or --list, --check, or --all)
#
# Shows that a test can fail: applies tests/mutations/NAME.patch (one
# small change to the product code that a real bug would look like),
# rebuilds what the patch's "# build:" line names, runs the test its
# "# test:" line names, and expects that test to FAIL.  The patch is
# always reverted and the targets rebuilt from the clean sources, also on
# error or Ctrl-C.  Exit status: 0 when every named mutation was caught,
# 1 when a test passed with its mutation applied (a test that cannot
# fail), 2 on a usage or build error.
#
# Patch header lines (before the diff):
#   # test: PYTEST-NODE-ID | unit:BINARY[:SUITE/TEST]
#   # build: MAKE-TARGET ...   (build/bin/thinkgated, module, ...; empty
#                              for a configuration file)
#   # expect: text the failing test's output must hold
# tests/MUTATIONS.md lists them with the failures observed.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=$REPO/tests/mutations
cd "$REPO"

field() { sed -n "s/^# $1: //p" "$2" | head -1; }

if [ "${1:-}" = "--list" ] || [ $# -eq 0 ]; then
    for p in "$DIR"/*.patch; do
        printf '%-34s %s\n' "$(basename "$p" .patch)" "$(field test "$p")"
    done
    [ $# -eq 0 ] && echo "usage: tests/mutate.sh NAME... | --all | --list" >&2
    exit 0
fi
# --check: every patch still applies to today's sources (make style runs
# it, so a refactor that moves a mutated line re-makes the patch at once).
if [ "$1" = "--check" ]; then
    bad=0
    for p in "$DIR"/*.patch; do
        git apply --check "$p" 2>/dev/null \
            || { echo "mutate: $(basename "$p") no longer applies" >&2; bad=1; }
    done
    [ $bad -eq 0 ] && echo "mutate: every patch in tests/mutations applies"
    exit $bad
fi
if [ "$1" = "--all" ]; then
    set -- $(for p in "$DIR"/*.patch; do basename "$p" .patch; done)
fi

patch=
rebuild() {
    [ -n "$1" ] || return 0         # a configuration file: nothing to build
    # shellcheck disable=SC2086
    make -s -j2 $1 >/tmp/mutate.$$.build 2>&1 || {
        tail -30 /tmp/mutate.$$.build >&2
        return 1
    }
}
revert() {
    if [ -n "$patch" ]; then
        git apply -R "$patch" && echo "mutate: reverted $(basename "$patch")"
        rebuild "$targets" || echo "mutate: REBUILD FAILED after revert" >&2
        patch=
    fi
    rm -f /tmp/mutate.$$.build /tmp/mutate.$$.out
}
trap 'revert; exit 2' INT TERM

caught=0; missed=0
for name in "$@"; do
    p=$DIR/$name.patch
    [ -f "$p" ] || { echo "mutate: no $p" >&2; exit 2; }
    test=$(field test "$p"); targets=$(field build "$p")
    expect=$(field expect "$p")
    git apply --check "$p" || { echo "mutate: $name does not apply" >&2; exit 2; }
    git apply "$p"; patch=$p
    echo "mutate: $name applied; building $targets"
    if ! rebuild "$targets"; then
        echo "mutate: $name does not build" >&2; revert; exit 2
    fi
    case $test in
    unit:*)
        spec=${test#unit:}; bin=${spec%%:*}; filter=
        [ "$bin" != "$spec" ] && filter="--filter=${spec#*:}"
        timeout 300 "build/tests/$bin" $filter --jobs 1 \
            >/tmp/mutate.$$.out 2>&1 ;;
    *)
        timeout 600 python3 -m pytest -x -q -p no:cacheprovider "$test" \
            >/tmp/mutate.$$.out 2>&1 ;;
    esac
    rc=$?
    if [ $rc -ne 0 ] && { [ -z "$expect" ] \
                          || grep -qF -- "$expect" /tmp/mutate.$$.out; }; then
        echo "mutate: $name CAUGHT by $test:"
        { grep -m1 -E '^>' /tmp/mutate.$$.out
          grep -m2 -E '^E ' /tmp/mutate.$$.out
          grep -m1 -E '\.c:[0-9]+: ' /tmp/mutate.$$.out
          grep -m1 -F -- "${expect:-FAIL}" /tmp/mutate.$$.out
        } | cut -c1-200 | awk '!seen[$0]++'
        mkdir -p build/mutate && cp /tmp/mutate.$$.out "build/mutate/$name.log"
        caught=$((caught + 1))
    else
        echo "mutate: $name MISSED: $test exited $rc" \
             "${expect:+without \"$expect\"}"
        tail -15 /tmp/mutate.$$.out
        missed=$((missed + 1))
    fi
    revert
done
echo "mutate: $caught caught, $missed missed"
[ "$missed" -eq 0 ]
