#!/usr/bin/env bash
# Runs the libFuzzer harnesses built by tests/fuzz/fuzz.mk.
#   mk/fuzz.sh run  SECONDS NAME...   each harness for SECONDS, a working
#                                     corpus kept in $BUILD/fuzz/corpus/NAME
#   mk/fuzz.sh test SECONDS NAME...   the same, after replaying
#                                     tests/fuzz/regress/NAME/* (make test)
# Both write $BUILD/fuzz/summary.json, {"NAME": {"execs": N, "crashes": N},
# ...}, and fail when any harness crashed (a crash, leak, timeout or
# out-of-memory input is kept in $BUILD/fuzz/artifacts/NAME/).
#
# A harness is one single-threaded process, so FUZZ_JOBS of them (default:
# the number of CPUs) run side by side, each still for SECONDS on a core
# of its own; the reports come out in the order the names were given.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=$1 secs=$2
shift 2
BUILD=${BUILD:-build}
bin=$BUILD/fuzz/bin
summary=$BUILD/fuzz/summary.json
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
bad=0
entries=()

# fuzz_one NAME: replays and fuzzes one harness; what it says goes to
# $BUILD/fuzz/NAME.out, its summary entry to NAME.entry, and it returns 1
# when the harness crashed or a regression input fails again.
fuzz_one() {
    local name=$1
    local exe=$bin/fuzz_$name
    local seeds=tests/fuzz/corpus/$name
    local corpus=$BUILD/fuzz/corpus/$name
    local arts=$BUILD/fuzz/artifacts/$name
    local log=$BUILD/fuzz/$name.log
    local dict=() bad=0 regress before rc execs crashes
    mkdir -p "$corpus" "$arts"

    if [ "$mode" = test ] && [ -d "tests/fuzz/regress/$name" ]; then
        regress=(tests/fuzz/regress/"$name"/*)
        if [ -e "${regress[0]}" ]; then
            if ! "$exe" "${regress[@]}" >"$log" 2>&1; then
                tail -n 30 "$log" >&2
                echo "fuzz: $name: a regression input fails again" >&2
                bad=1
            fi
        fi
    fi

    case $name in
        request|jload|chunk|meta|config|sim_request)
            dict=(-dict=tests/fuzz/json.dict) ;;
        answer|thoughts) dict=(-dict=tests/fuzz/answer.dict) ;;
    esac
    before=$(ls "$arts" | wc -l)
    # -timeout: an input that takes 10 s is a hang; the seeds are read,
    # never written (new inputs go to the working corpus).
    "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$arts/" "${dict[@]}" \
        "$corpus" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    crashes=$(( $(ls "$arts" | wc -l) - before ))
    if [ $rc -ne 0 ] && [ $crashes -eq 0 ]; then
        crashes=1
    fi
    if [ $crashes -ne 0 ]; then
        grep -m1 -A12 -E '^==[0-9]+==|check failed|runtime error' "$log" >&2
        echo "fuzz: $name: crashed, input in $arts/ (log $log)" >&2
        bad=1
    fi
    echo "fuzz: $name: ${execs:-0} execs, $crashes crashes in ${secs}s"
    echo "\"$name\": {\"execs\": ${execs:-0}, \"crashes\": $crashes}" \
        >"$BUILD/fuzz/$name.entry"
    return $bad
}

mkdir -p "$BUILD/fuzz"
pids=()
running=0
for name in "$@"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    rm -f "$BUILD/fuzz/$name.entry"
    fuzz_one "$name" >"$BUILD/fuzz/$name.out" 2>&1 &
    pids+=($!)
    running=$((running + 1))
done
i=0
for name in "$@"; do
    # wait PID gives a finished job's status too (bash keeps it).
    wait "${pids[$i]}" || bad=1
    i=$((i + 1))
    cat "$BUILD/fuzz/$name.out"
    if [ -f "$BUILD/fuzz/$name.entry" ]; then
        entries+=("$(cat "$BUILD/fuzz/$name.entry")")
    else
        bad=1
    fi
done

{
    printf '{'
    sep=''
    for e in "${entries[@]}"; do
        printf '%s\n  %s' "$sep" "$e"
        sep=','
    done
    printf '\n}\n'
} >"$summary"
echo "fuzz: summary in $summary"
exit $bad
