#!/usr/bin/env bash
# Runs every Criterion test binary given; fails if any fails.  Prints one
# plain "N passed, N failed" line at the end.
set -u
pass=0; fail=0
for t in "$@"; do
    echo "== $t"
    if "$t" --jobs 2; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
