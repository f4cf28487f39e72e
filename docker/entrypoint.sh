#!/bin/bash
# The thinkgate container's entrypoint (docker/README.md): runs the engine
# and nginx side by side, in the foreground, as the container's user.
#
#   - writes nginx.conf from the THINKGATE_* variables below into
#     $THINKGATE_RUN_DIR (or uses THINKGATE_NGINX_CONF as it is);
#   - starts thinkgated on $THINKGATE_RUN_DIR/engine.sock, waits for the
#     socket, then starts nginx (daemon off);
#   - SIGTERM or SIGINT: nginx stops gracefully (SIGQUIT: requests in
#     flight finish, at most THINKGATE_STOP_GRACE seconds, then SIGTERM),
#     then the engine (SIGTERM); the exit status is 0 when both exited 0;
#   - SIGHUP goes to nginx (reload);
#   - when either process dies on its own, the other is stopped the same
#     way and the container exits non-zero, so a restart policy restarts
#     both.
#
# An argument that does not start with "-" runs that command instead
# (`docker run IMAGE thinkgate-sim --listen 0.0.0.0:8000`, `... nginx -V`,
# `... bash`); arguments starting with "-" are passed to thinkgated.
#
# Variables (all optional but THINKGATE_BACKENDS, which the generated
# configuration needs):
#   THINKGATE_BACKENDS         "POOL=URL[,URL...] ..." : one pool per model,
#                              its backends POOL-1, POOL-2, ...; requests
#                              go to the pool serving their "model"
#                              (GET /v1/models lists the names)
#   THINKGATE_BACKEND_OPTS     options for every thinkgate_backend line
#                              (max_inflight=512 api_key_env=THINKGATE_KEY)
#   THINKGATE_POOL_OPTS        options for every pool (policy=prefix)
#   THINKGATE_REDIS            host:port of Redis: shared prefix index and
#                              sessions (thinkgate_session on); unset: none
#   THINKGATE_REDIS_OPTS       options for thinkgate_redis (prefix=tg:)
#   THINKGATE_STRATEGY         the default strategy with its options
#                              ("self_consistency n=4"); unset: passthrough
#   THINKGATE_CLIENT_STRATEGY  on|off (off): may a request choose one
#   THINKGATE_TIMEOUT          thinkgate_timeout (600s)
#   THINKGATE_PORT             nginx's port (8080)
#   THINKGATE_WORKERS          worker_processes (auto)
#   THINKGATE_STATUS_ALLOW     who may read /thinkgate/status: addresses
#                              or CIDRs, or "all" (loopback and the
#                              private ranges)
#   THINKGATE_LOG_LEVEL        the engine's: error, warn, info, debug (info)
#   THINKGATE_NGINX_CONF       a complete nginx.conf to use instead (its
#                              thinkgate_engine must be
#                              unix:$THINKGATE_RUN_DIR/engine.sock; no
#                              "daemon" directive: nginx runs with
#                              -g "daemon off;")
#   THINKGATE_RUN_DIR          socket, pid and temporary files
#                              (/run/thinkgate)
#   THINKGATE_STOP_GRACE       seconds nginx gets to finish (8)
#   THINKGATE_ENGINE_OPTS      further thinkgated options, split on spaces
#   THINKGATE_MODULE, THINKGATE_PLUGIN_DIR, THINKGATE_LUA_DIR
#                              the module, plugins and Redis scripts, where
#                              the Debian packages put them by default
set -uo pipefail

say() { echo "thinkgate-entrypoint: $*" >&2; }
die() { say "$*"; exit 2; }

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

RUN=${THINKGATE_RUN_DIR:-/run/thinkgate}
PORT=${THINKGATE_PORT:-8080}
GRACE=${THINKGATE_STOP_GRACE:-8}
SOCK=$RUN/engine.sock
PLUGINS=${THINKGATE_PLUGIN_DIR:-/usr/lib/thinkgate/plugins}
LUA=${THINKGATE_LUA_DIR:-/usr/share/thinkgate/lua}

# Values end up in nginx.conf: no quotes, braces, semicolons or
# backslashes, which could end a directive and start another.
check_value() {     # check_value NAME VALUE
    case $2 in
        *[\;\{\}\"\'\\\$]*) die "$1 may not hold ; { } quotes \\ or \$: $2" ;;
    esac
}
for v in THINKGATE_BACKENDS THINKGATE_BACKEND_OPTS THINKGATE_POOL_OPTS \
         THINKGATE_REDIS THINKGATE_REDIS_OPTS THINKGATE_STRATEGY \
         THINKGATE_CLIENT_STRATEGY THINKGATE_TIMEOUT THINKGATE_PORT \
         THINKGATE_WORKERS THINKGATE_STATUS_ALLOW; do
    check_value "$v" "${!v:-}"
done
case $PORT in ''|*[!0-9]*) die "THINKGATE_PORT must be a number: $PORT" ;; esac
case $GRACE in ''|*[!0-9]*) die "THINKGATE_STOP_GRACE must be a number" ;; esac

mkdir -p "$RUN/tmp" || die "cannot write $RUN (run as a user that owns it)"
rm -f "$SOCK"

# --- nginx.conf ---------------------------------------------------------------
write_conf() {
    local backends pools="" spec pool urls url i=0
    [ -n "${THINKGATE_BACKENDS:-}" ] \
        || die "set THINKGATE_BACKENDS (\"POOL=URL ...\") or THINKGATE_NGINX_CONF"
    backends=""
    for spec in $THINKGATE_BACKENDS; do
        pool=${spec%%=*}
        urls=${spec#*=}
        if [ "$pool" = "$spec" ] || [ -z "$pool" ] || [ -z "$urls" ]; then
            die "THINKGATE_BACKENDS: \"$spec\" is not POOL=URL[,URL...]"
        fi
        local members="" n=0
        for url in ${urls//,/ }; do
            n=$((n + 1))
            backends+="    thinkgate_backend $pool-$n $url ${THINKGATE_BACKEND_OPTS:-};"$'\n'
            members+=" $pool-$n"
        done
        pools+="    thinkgate_pool    $pool$members ${THINKGATE_POOL_OPTS:-policy=prefix};"$'\n'
        i=$((i + 1))
    done

    local redis="" session=off
    if [ -n "${THINKGATE_REDIS:-}" ]; then
        redis="    thinkgate_redis   $THINKGATE_REDIS ${THINKGATE_REDIS_OPTS:-prefix=tg:};"
        session=on
    fi
    local strategy=""
    [ -z "${THINKGATE_STRATEGY:-}" ] \
        || strategy="thinkgate_strategy $THINKGATE_STRATEGY;"
    local allow="" a
    for a in ${THINKGATE_STATUS_ALLOW:-127.0.0.1 ::1 10.0.0.0/8 172.16.0.0/12 \
               192.168.0.0/16 fc00::/7}; do
        allow+="            allow $a;"$'\n'
    done

    cat <<EOF
# Written by thinkgate-entrypoint from THINKGATE_* variables
# (docker/README.md); THINKGATE_NGINX_CONF replaces it.  nginx runs with
# -g "daemon off;".
master_process on;
worker_processes ${THINKGATE_WORKERS:-auto};
pid $RUN/nginx.pid;
error_log stderr warn;

load_module ${THINKGATE_MODULE:-modules/ngx_http_thinkgate_module.so};

events {
    worker_connections 4096;
}

http {
    access_log /dev/stdout;
    client_body_temp_path $RUN/tmp/body;
    proxy_temp_path       $RUN/tmp/proxy;
    fastcgi_temp_path     $RUN/tmp/fastcgi;
    uwsgi_temp_path       $RUN/tmp/uwsgi;
    scgi_temp_path        $RUN/tmp/scgi;

    thinkgate_engine unix:$SOCK;
$backends$pools$redis
    server {
        listen $PORT;

        # Each request goes to the pool serving its "model".
        location /v1/ {
            thinkgate_pass;
            thinkgate_timeout ${THINKGATE_TIMEOUT:-600s};
            thinkgate_session $session;
            thinkgate_client_strategy ${THINKGATE_CLIENT_STRATEGY:-off};
            $strategy
        }

        location = /thinkgate/status {
$allow            deny all;
            thinkgate_status;
        }
    }
}
EOF
}

if [ -n "${THINKGATE_NGINX_CONF:-}" ]; then
    CONF=$THINKGATE_NGINX_CONF
    [ -r "$CONF" ] || die "THINKGATE_NGINX_CONF: cannot read $CONF"
else
    CONF=$RUN/nginx.conf
    write_conf > "$CONF" || exit 2
fi
nginx -e stderr -c "$CONF" -g "daemon off;" -t -q || die "nginx -t failed on $CONF"

# --- the two processes --------------------------------------------------------
engine_pid='' nginx_pid='' stop_signal=''
engine_rc='' nginx_rc=''

# Should this script fail on its own, it leaves no process behind.
# shellcheck disable=SC2317  # called by the EXIT trap
leftovers() {
    local p
    for p in $nginx_pid $engine_pid; do kill -TERM "$p" 2>/dev/null; done
}
trap leftovers EXIT
trap 'stop_signal=TERM' TERM
trap 'stop_signal=INT' INT
trap '[ -z "$nginx_pid" ] || kill -HUP "$nginx_pid" 2>/dev/null' HUP

# Run as root (docker run --user 0), nginx's workers are nobody: let them in.
allow=()
[ "$(id -u)" -ne 0 ] || allow=(--allow-user nobody)
# glibc's per-thread cache: 64 freed chunks per size instead of 7 (as in
# thinkgate.service, which says why); a GLIBC_TUNABLES given wins.
# shellcheck disable=SC2086  # THINKGATE_ENGINE_OPTS is split on spaces
GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.tcache_count=64}" \
thinkgated --socket "$SOCK" --plugin-dir "$PLUGINS" --lua-dir "$LUA" \
    --log-level "${THINKGATE_LOG_LEVEL:-info}" "${allow[@]}" \
    ${THINKGATE_ENGINE_OPTS:-} "$@" &
engine_pid=$!
say "engine started (pid $engine_pid, $SOCK)"

for _ in $(seq 100); do
    [ -S "$SOCK" ] && break
    kill -0 "$engine_pid" 2>/dev/null || break
    [ -z "$stop_signal" ] || break
    sleep 0.1
done
if [ -z "$stop_signal" ] && [ -S "$SOCK" ]; then
    nginx -e stderr -c "$CONF" -g "daemon off;" &
    nginx_pid=$!
    say "nginx started (pid $nginx_pid, port $PORT)"
elif [ -z "$stop_signal" ]; then
    say "the engine made no socket $SOCK"
fi

# Waits for PID to exit, at most SECONDS; sets rc to its exit status, or
# to "timeout".  (Not in a $(...) subshell: only this shell may wait.)
wait_pid() {    # wait_pid PID SECONDS
    local pid=$1 n=$(($2 * 10))
    while [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
        n=$((n - 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        rc=timeout
        return
    fi
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
}

# Until a signal comes or a process exits.
died=
while [ -n "$nginx_pid" ] && [ -z "$stop_signal" ]; do
    exited='' rc=0
    wait -n -p exited "$engine_pid" "$nginx_pid" || rc=$?
    if [ -n "${exited:-}" ]; then
        if [ "$exited" = "$engine_pid" ]; then
            engine_rc=$rc; died=engine
        else
            nginx_rc=$rc; died=nginx
        fi
        say "$died exited on its own (status $rc); stopping"
        break
    fi
done

if [ -n "$stop_signal" ]; then
    say "SIG$stop_signal: stopping nginx (graceful, ${GRACE}s) then the engine"
fi
if [ -n "$nginx_pid" ] && [ -z "$nginx_rc" ]; then
    kill -QUIT "$nginx_pid" 2>/dev/null
    wait_pid "$nginx_pid" "$GRACE"
    if [ "$rc" = timeout ]; then
        say "nginx still busy after ${GRACE}s: SIGTERM"
        kill -TERM "$nginx_pid" 2>/dev/null
        wait_pid "$nginx_pid" 5
        if [ "$rc" = timeout ]; then
            kill -KILL "$nginx_pid" 2>/dev/null
            wait_pid "$nginx_pid" 5
        fi
    fi
    nginx_rc=$rc
fi
[ -z "$nginx_pid" ] || say "nginx exited (status $nginx_rc)"
if [ -z "$engine_rc" ]; then
    kill -TERM "$engine_pid" 2>/dev/null
    wait_pid "$engine_pid" 10
    if [ "$rc" = timeout ]; then
        say "the engine did not stop in 10s: SIGKILL"
        kill -KILL "$engine_pid" 2>/dev/null
        wait_pid "$engine_pid" 5
    fi
    engine_rc=$rc
fi
say "engine exited (status $engine_rc)"

if [ -z "$died" ] && [ -n "$stop_signal" ] && [ "$engine_rc" = 0 ] \
   && [ "$nginx_rc" = 0 ]; then
    say "stopped cleanly"
    trap - EXIT
    exit 0
fi
exit 1
