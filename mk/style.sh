#!/usr/bin/env bash
# Style checks that CI runs instead of review (STYLE.md, habit 13):
# no trailing whitespace or tabs in C sources, 80 columns and no `//`
# comments in the nginx module, 100 columns elsewhere.
set -u
cd "$(dirname "$0")/.."
bad=0
report() { echo "style: $1"; bad=1; }

while IFS= read -r f; do
    if grep -nE '[[:space:]]+$' "$f" >/dev/null; then
        report "$f: trailing whitespace on line(s) $(grep -nE '[[:space:]]+$' "$f" | cut -d: -f1 | head -5 | tr '\n' ' ')"
    fi
    if grep -nP '\t' "$f" >/dev/null; then
        report "$f: tab characters (indent with spaces)"
    fi
    limit=100
    case "$f" in ngx_module/*) limit=80 ;; esac
    long=$(awk -v L=$limit 'length($0) > L {print NR}' "$f" | head -5 | tr '\n' ' ')
    [ -z "$long" ] || report "$f: lines over $limit columns: $long"
    case "$f" in
        ngx_module/*)
            if grep -nE '(^|[^:"])//' "$f" >/dev/null; then
                report "$f: // comment in the nginx module (use /* */)"
            fi ;;
    esac
done < <(git ls-files '*.c' '*.h')

[ "$bad" -eq 0 ] && echo "style: ok"
exit $bad
