#!/usr/bin/env bash
# `make run` / `make stop`: start or stop Redis, the simulator, the engine
# and a private nginx on loopback.  State lives in build/run/; `stop` kills
# exactly the processes whose pid files `start` wrote.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$ROOT/build/run
BIN=$ROOT/build/bin

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {    # wait_for DESCRIPTION COMMAND...
    local what=$1; shift
    for _ in $(seq 1 100); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "run: $what did not come up; see $RUN/*.log" >&2
    return 1
}

stop_one() {    # stop_one NAME
    local f=$RUN/$1.pid
    if pid_alive "$f"; then
        kill "$(cat "$f")" 2>/dev/null || true
        for _ in $(seq 1 50); do
            pid_alive "$f" || break
            sleep 0.1
        done
        if pid_alive "$f"; then kill -9 "$(cat "$f")" 2>/dev/null || true; fi
        echo "stopped $1"
    fi
    rm -f "$f"
}

stop_all() {
    if pid_alive "$RUN/nginx.pid"; then
        nginx -p "$RUN" -c "$RUN/nginx.conf" -s quit 2>/dev/null || true
        for _ in $(seq 1 50); do
            pid_alive "$RUN/nginx.pid" || break
            sleep 0.1
        done
    fi
    stop_one nginx
    stop_one engine
    stop_one sim
    stop_one redis
}

start_all() {
    local port=$1
    local sim_port=${SIM_PORT:-$((port + 1))}
    local redis_port=${REDIS_PORT:-$((port + 2))}

    stop_all >/dev/null
    mkdir -p "$RUN/tmp"

    # Redis holds the prefix index and sessions; nothing is persisted.
    setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no --dir "$RUN" \
        >"$RUN/redis.log" 2>&1 < /dev/null &
    echo $! > "$RUN/redis.pid"

    setsid "$BIN/thinkgate-sim" --listen "127.0.0.1:$sim_port" \
        >"$RUN/sim.log" 2>&1 < /dev/null &
    echo $! > "$RUN/sim.pid"

    allow=()
    [ "$(id -u)" -ne 0 ] || allow=(--allow-user nobody)
    # Variables a configuration may name besides THINKGATE_* (api_key_env=,
    # password_env=): the engine reads no others.
    for name in ${TG_ALLOW_ENV:-}; do
        allow+=(--allow-env "$name")
    done
    # As debian/thinkgate.service runs it (the service file says why).
    GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.tcache_count=64}" \
    setsid "$BIN/thinkgated" --socket "$RUN/engine.sock" \
        --plugin-dir "$ROOT/build/plugins" "${allow[@]}" \
        >"$RUN/engine.log" 2>&1 < /dev/null &
    echo $! > "$RUN/engine.pid"

    sed -e "s|@ROOT@|$ROOT|g" -e "s|@RUN@|$RUN|g" -e "s|@PORT@|$port|g" \
        -e "s|@SIM_PORT@|$sim_port|g" -e "s|@REDIS_PORT@|$redis_port|g" \
        "$ROOT/conf/thinkgate.conf.in" \
        > "$RUN/nginx.conf"

    # Whatever fails from here on, leave nothing running behind.
    trap 'stop_all >/dev/null; exit 1' ERR
    wait_for "Redis" redis-cli -p "$redis_port" ping
    wait_for "the simulator" curl -sf "http://127.0.0.1:$sim_port/v1/models"
    wait_for "the engine" test -S "$RUN/engine.sock"
    nginx -p "$RUN" -c "$RUN/nginx.conf"
    wait_for "nginx" curl -sf "http://127.0.0.1:$port/thinkgate/status"
    trap - ERR

    cat <<MSG
thinkgate is running: nginx on 127.0.0.1:$port, engine at $RUN/engine.sock,
simulator on 127.0.0.1:$sim_port, Redis on 127.0.0.1:$redis_port.
Logs in $RUN/.  Try:

  curl -s http://127.0.0.1:$port/v1/chat/completions \\
       -H 'Content-Type: application/json' \\
       -d '{"model":"thinkgate-sim","messages":[{"role":"user","content":"What is 17 + 25?"}]}'

A conversation kept by the gateway (send only the new turn; it belongs to
the API key that started it, so sessions need one):

  curl -s http://127.0.0.1:$port/v1/chat/completions \\
       -H 'Content-Type: application/json' -H 'X-Thinkgate-Session: demo1' \\
       -H 'Authorization: Bearer my-key' \\
       -d '{"model":"thinkgate-sim","messages":[{"role":"user","content":"What is 2 + 3?"}]}'

The Responses API (stored in Redis; chain with "previous_response_id"):

  curl -s http://127.0.0.1:$port/v1/responses \\
       -H 'Content-Type: application/json' \\
       -d '{"model":"thinkgate-sim","input":"What is 17 + 25?","reasoning":{"effort":"low"}}'

The OpenAI Python SDK: list the models, then let First-Finish Search run
8 traces and answer with the first to finish (the "thinkgate" object says
what it did):

  python3 - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="http://127.0.0.1:$port/v1", api_key="none")
print([m.id for m in client.models.list()])
r = client.chat.completions.create(
    model="thinkgate-sim",
    messages=[{"role": "user", "content": "What is 17 + 25?"}],
    extra_body={"thinkgate": {"strategy": "ffs", "n": 8}})
print(r.choices[0].message.content)
print(r.model_extra["thinkgate"])
PY

Status: curl -s http://127.0.0.1:$port/thinkgate/status
Stop:   make stop
MSG
}

case "${1:-}" in
    start) start_all "${2:-8080}" ;;
    stop)  stop_all ;;
    *)     echo "usage: $0 start [PORT] | stop" >&2; exit 2 ;;
esac
