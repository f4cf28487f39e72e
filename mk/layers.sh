#!/usr/bin/env bash
# The engine's folders form one dependency chain (issue 13): a folder's
# sources include only folders below it in LAYERS, never one above it or
# one beside it on the same line, so no include cycle can form between
# engine folders.  Calls that must go up (a frame for a request, a
# request's turns, the host's stores) go through the hook tables the
# upper layer installs (transport/conn.h, core/request.h, strategy/host.h),
# wired in main.c.
#
# Each `#include "..."` line of engine/**/*.{c,h} is mapped to a folder the
# way the compiler finds the file: beside the including file first, then
# under engine/ (-Iengine).  The top-level files are their own layers:
# main.c, engine.h (the engine struct), log.{c,h}.  Fails (exit 1) naming
# file:line and the edge for every include that goes up or sideways, for
# a folder LAYERS does not name, and for any cycle between folders.
#
# Usage: bash mk/layers.sh [-v]   (-v: list every folder edge as well)
set -u
cd "$(dirname "$0")/.."

# Top to bottom; folders on one line are peers and may not include each
# other.
LAYERS=(
    "main"
    "serve"
    "strategy"
    "core"
    "transport"
    "engine"
    "plugin score state backend route openai"
    "config embed"
    "util"
    "log"
)

verbose=0
[ "${1:-}" = "-v" ] && verbose=1

declare -A level
for i in "${!LAYERS[@]}"; do
    for f in ${LAYERS[$i]}; do
        level[$f]=$i
    done
done

# engine/X.c|h at the top: its own layer (main, engine, log); else its folder.
folder_of() {
    local rel=${1#engine/}
    case "$rel" in
        */*) echo "${rel%%/*}" ;;
        *)   rel=${rel%.*}; echo "$rel" ;;
    esac
}

bad=0
declare -A edge
while IFS= read -r src; do
    from=$(folder_of "$src")
    if [ -z "${level[$from]+x}" ]; then
        echo "layers: $src: folder '$from' is not in mk/layers.sh's LAYERS"
        bad=1
        continue
    fi
    while IFS=: read -r line inc; do
        if [ -e "$(dirname "$src")/$inc" ]; then
            target="$(dirname "$src")/$inc"
        elif [ -e "engine/$inc" ]; then
            target="engine/$inc"
        else
            continue                    # a system or include/ header
        fi
        case "$target" in
            */../*) target=$(realpath -m --relative-to=. "$target") ;;
        esac
        to=$(folder_of "$target")
        [ "$to" = "$from" ] && continue
        edge["$from $to"]=1
        if [ -z "${level[$to]+x}" ]; then
            echo "layers: $src:$line: includes $inc: folder '$to' is not in LAYERS"
            bad=1
        elif [ "${level[$to]}" -le "${level[$from]}" ]; then
            if [ "${level[$to]}" -eq "${level[$from]}" ]; then how="beside it"
            else how="above it"; fi
            echo "layers: $src:$line: $from -> $to ($inc): $to is $how in LAYERS"
            bad=1
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$src" \
             | sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
done < <(git ls-files 'engine/*.c' 'engine/*.h'; \
         git ls-files --others --exclude-standard 'engine/*.c' 'engine/*.h')

# A cycle between folders, found on its own (the order above rules one
# out, but say so if LAYERS is ever loosened).
declare -A adj
for e in "${!edge[@]}"; do
    adj[${e% *}]+="${e#* } "
done
declare -A color
cycle=""
visit() {
    local n=$1 m
    color[$n]=1
    for m in ${adj[$n]:-}; do
        if [ "${color[$m]:-0}" = 1 ]; then
            cycle="$m <- $n"
            return 1
        elif [ "${color[$m]:-0}" = 0 ]; then
            visit "$m" || { cycle="$cycle <- $n"; return 1; }
        fi
    done
    color[$n]=2
}
for n in "${!adj[@]}"; do
    if [ "${color[$n]:-0}" = 0 ] && ! visit "$n"; then
        echo "layers: include cycle between folders: $cycle"
        bad=1
        break
    fi
done

if [ "$verbose" = 1 ]; then
    printf '%s\n' "${!edge[@]}" | sort | sed 's/ / -> /;s/^/layers: edge /'
fi
[ "$bad" -eq 0 ] && echo "layers: ok (${#edge[@]} folder edges, none up or sideways, no cycle)"
exit $bad
