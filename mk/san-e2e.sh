#!/usr/bin/env bash
# The sanitizer end-to-end run (make test-san-e2e): the engine, the sim,
# the strategy plugins and the nginx module built with ASan+UBSan into
# $BUILD/san/ (the module by mk/module.sh with Debian's configure flags, so
# that Debian's own /usr/sbin/nginx loads it), then an e2e subset against
# them.  nginx itself is not rebuilt: every nginx the harness starts gets
# the compiler's libasan through LD_PRELOAD (THINKGATE_NGINX_PRELOAD) and the
# sanitized module through THINKGATE_MODULE, so the module's code runs
# under ASan+UBSan and the nginx processes under LSan at exit.  Any ASan,
# LSan or UBSan report, from any process, fails the run; leaks that are not
# ours are suppressed in mk/lsan.supp, each with its reason.
#
# The subset: test_engine_raw.py (every frame and meta path of the engine),
# test_responses.py (the Responses API: every strategy's output rendered,
# stored and chained through Redis, Redis killed under it), test_keys.py
# (client keys: 401, 403, auth_request, nginx -t refusals; a few seconds),
# test_sim.py and test_session_lock.py (a session lock's heartbeat, an
# engine killed and restarted mid-request, an append settled after a frozen
# Redis; about 40 s), without test_peer_credentials, whose refusal races
# the client's write (BrokenPipeError under ASan's timing; issue 14).
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
san=$(pwd)/$BUILD/san
logs=$san/logs
rm -rf "$logs"
mkdir -p "$logs"

module=$san/modules/ngx_http_thinkgate_module.so
if [ ! -f "$module" ]; then
    echo "san-e2e: $module missing (make test-san-e2e builds it)" >&2
    exit 1
fi
# The runtime the module was linked against: gcc's, found by the compiler.
libasan=$(${CC:-cc} -print-file-name=libasan.so)
libasan=$(readlink -f "$libasan" 2>/dev/null || true)
if [ ! -f "$libasan" ]; then
    echo "san-e2e: ${CC:-cc} names no libasan.so to preload into nginx" >&2
    exit 1
fi
# nginx workers run as nobody when the tests run as root: they write their
# reports here too.
chmod 1777 "$logs"

export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$(pwd)/mk/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1"
export THINKGATED=$san/bin/thinkgated
export THINKGATE_SIM=$san/bin/thinkgate-sim
export THINKGATE_PLUGIN_DIR=$san/plugins
export THINKGATE_MODULE=$module
export THINKGATE_NGINX_PRELOAD=$libasan
# Every process gets time for its leak check at exit before a SIGKILL.
export THINKGATE_STOP_S=30
# nginx's reports apart (nginx.PID), with whole stacks: mk/san-reports.py
# tells nginx's own leaks at exit from the module's by them.
export THINKGATE_NGINX_ASAN_OPTIONS="log_path=$logs/nginx:fast_unwind_on_malloc=0"

python3 -m pytest -q -ra tests/e2e/test_engine_raw.py \
    tests/e2e/test_responses.py tests/e2e/test_sim.py tests/e2e/test_keys.py \
    tests/e2e/test_session_lock.py -k "not test_peer_credentials"
rc=$?

reports=$(ls "$logs" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ] && ! python3 mk/san-reports.py "$logs"; then
    echo "san-e2e: sanitizer report(s) in $logs" >&2
    rc=1
fi
[ $rc -eq 0 ] && echo "san-e2e: ok, no sanitizer reports"
exit $rc
