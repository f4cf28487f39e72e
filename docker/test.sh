#!/usr/bin/env bash
# make docker-test (after mk/docker.sh builds the image): the image run the
# way docker/README.md runs it, on the host network so that it works with
# the private dockerd too:
#   - the sim in a container of the same image (its entrypoint runs a
#     command given as arguments), Redis on the host when redis-server is
#     there;
#   - the gateway container, configured by THINKGATE_* variables only:
#     it runs as uid 999, not root; its health check turns healthy;
#     GET /v1/models, a chat request (passthrough, then ffs n=4 chosen by
#     the client), a streamed request, a session request with Redis;
#   - `docker stop` (SIGTERM): the container exits 0 and its log says
#     nginx and the engine both exited with status 0;
#   - a second gateway whose engine is killed: the container exits
#     non-zero on its own, nginx stopped with it;
#   - docker/compose.yaml passes `compose config` when a compose answers.
# IMAGE names the image; DOCKER_TEST_PORT (18580) the gateway's port, the
# sim and Redis take the next two.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${IMAGE:-thinkgate:latest}
PORT=${DOCKER_TEST_PORT:-18580}
SIM_PORT=$((PORT + 1))
REDIS_PORT=$((PORT + 2))
TAG=tg-docker-test-$$
SIM=$TAG-sim GW=$TAG-gw GW2=$TAG-gw2
work=$(mktemp -d /tmp/thinkgate-docker-test.XXXXXX)
redis_pid=''

say()  { echo "docker-test: $*"; }
fail() { echo "docker-test: FAIL: $*" >&2; exit 1; }

cleanup() {
    local rc=$?
    set +e
    if [ $rc -ne 0 ]; then
        for c in "$GW" "$GW2" "$SIM"; do
            docker inspect "$c" > /dev/null 2>&1 || continue
            echo "--- docker logs $c (last 30 lines)"
            docker logs "$c" 2>&1 | tail -30
        done
    fi
    docker rm -f "$GW" "$GW2" "$SIM" > /dev/null 2>&1
    if [ -n "$redis_pid" ]; then kill "$redis_pid"; wait "$redis_pid"; fi 2>/dev/null
    if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "docker-test: FAILED (files: $work)" >&2; fi
}
trap cleanup EXIT

docker image inspect "$IMAGE" > /dev/null 2>&1 || fail "no image $IMAGE (make docker)"
for p in "$PORT" "$SIM_PORT" "$REDIS_PORT"; do
    if curl -s -o /dev/null "http://127.0.0.1:$p/"; then
        fail "port $p is taken (DOCKER_TEST_PORT= picks others)"
    fi
done

# --- the backend, Redis, the gateway ------------------------------------------
docker run -d --name "$SIM" --network host "$IMAGE" \
    thinkgate-sim --listen "127.0.0.1:$SIM_PORT" --speed 0 > /dev/null
redis_env=()
if command -v redis-server > /dev/null; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no > "$work/redis.log" 2>&1 < /dev/null &
    redis_pid=$!
    redis_env=(-e "THINKGATE_REDIS=127.0.0.1:$REDIS_PORT")
else
    say "no redis-server here: the gateway runs without Redis (no session check)"
fi

gateway() {     # gateway NAME: a gateway container on PORT
    docker run -d --name "$1" --network host \
        -e "THINKGATE_PORT=$PORT" \
        -e "THINKGATE_BACKENDS=sim=http://127.0.0.1:$SIM_PORT" \
        -e THINKGATE_CLIENT_STRATEGY=on "${redis_env[@]}" \
        --health-interval 1s --health-start-period 1s \
        "$IMAGE" > /dev/null
}
gateway "$GW"
say "started $SIM (thinkgate-sim) and $GW ($IMAGE) on the host network," \
    "port $PORT"

# --- healthy ----------------------------------------------------------------
health=''
for _ in $(seq 120); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$GW")
    [ "$health" = healthy ] && break
    [ "$(docker inspect -f '{{.State.Running}}' "$GW")" = true ] \
        || fail "$GW stopped while starting"
    sleep 0.5
done
[ "$health" = healthy ] || fail "health check: $health after 60 s"
say "health check: healthy"

uid=$(docker exec "$GW" id -u)
[ "$uid" = 999 ] || fail "the container runs as uid $uid, not 999"
docker top "$GW" -eo uid,pid,args > "$work/top.txt"
grep -q 'nginx: master process' "$work/top.txt" || fail "no nginx master: $(cat "$work/top.txt")"
grep -q 'nginx: worker process' "$work/top.txt" || fail "no nginx worker"
grep -q 'thinkgated --socket' "$work/top.txt" || fail "no thinkgated"
if awk 'NR > 1 && $1 != 999 && $1 != "thinkgate"' "$work/top.txt" | grep -q .; then
    fail "processes not run by uid 999: $(cat "$work/top.txt")"
fi
say "nginx (master and workers) and thinkgated run as uid 999"

# --- requests ---------------------------------------------------------------
url=http://127.0.0.1:$PORT
post() {    # post OUTFILE JSON [curl args...]
    local out=$1 body=$2; shift 2
    curl -sS -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
        "$@" -d "$body" "$url/v1/chat/completions"
}

code=$(curl -sS -o "$work/models.json" -w '%{http_code}' "$url/v1/models")
[ "$code" = 200 ] || fail "GET /v1/models: HTTP $code"
python3 - "$work/models.json" <<'EOF' || fail "GET /v1/models does not list thinkgate-sim"
import json, sys
ids = [m["id"] for m in json.load(open(sys.argv[1]))["data"]]
assert "thinkgate-sim" in ids, ids
EOF
say "GET /v1/models lists thinkgate-sim"

q='"messages":[{"role":"user","content":"What is 17 + 25?"}]'
code=$(post "$work/chat.json" "{\"model\":\"thinkgate-sim\",\"max_tokens\":64,$q}")
[ "$code" = 200 ] || fail "chat request: HTTP $code: $(cat "$work/chat.json")"
python3 - "$work/chat.json" <<'EOF' || fail "chat answer: $(cat "$work/chat.json")"
import json, sys
r = json.load(open(sys.argv[1]))
m = r["choices"][0]["message"]
assert m["role"] == "assistant" and (m.get("content") or m.get("reasoning_content")), r
assert r["thinkgate"]["strategy"] == "passthrough", r["thinkgate"]
EOF
say "chat request: 200, an assistant message (passthrough)"

code=$(post "$work/ffs.json" "{\"model\":\"thinkgate-sim\",\"max_tokens\":256,$q,
        \"thinkgate\":{\"strategy\":\"ffs\",\"n\":4}}")
[ "$code" = 200 ] || fail "ffs request: HTTP $code: $(cat "$work/ffs.json")"
python3 - "$work/ffs.json" <<'EOF' || fail "ffs answer: $(cat "$work/ffs.json")"
import json, sys
t = json.load(open(sys.argv[1]))["thinkgate"]
assert t["strategy"] == "ffs", t
EOF
say "chat request with ffs n=4 chosen by the client: 200"

code=$(post "$work/stream.txt" "{\"model\":\"thinkgate-sim\",\"max_tokens\":64,
        \"stream\":true,$q}" -N)
[ "$code" = 200 ] || fail "streamed request: HTTP $code: $(head -c 500 "$work/stream.txt")"
events=$(grep -c '^data: {' "$work/stream.txt" || true)
tail -n 2 "$work/stream.txt" | grep -qx 'data: \[DONE\]' \
    || fail "the stream does not end with data: [DONE]"
[ "$events" -ge 2 ] || fail "the stream has $events chunk(s)"
say "streamed request: 200, $events chunks, then data: [DONE]"

if [ -n "$redis_pid" ]; then
    code=$(post "$work/session.json" "{\"model\":\"thinkgate-sim\",\"max_tokens\":32,$q}" \
        -H 'X-Thinkgate-Session: dockertest' -H 'Authorization: Bearer docker-key')
    [ "$code" = 200 ] || fail "session request: HTTP $code: $(cat "$work/session.json")"
    curl -sS "$url/thinkgate/status" > "$work/status.json"
    python3 - "$work/status.json" <<'EOF' || fail "status: $(head -c 600 "$work/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["redis"]["mode"] == "shared", s["redis"]
EOF
    say "session request through Redis: 200; status says redis.mode shared"
fi

# --- SIGTERM ------------------------------------------------------------------
t0=$SECONDS
docker stop -t 30 "$GW" > /dev/null
rc=$(docker inspect -f '{{.State.ExitCode}}' "$GW")
docker logs "$GW" > "$work/gw.log" 2>&1
[ "$rc" = 0 ] || fail "$GW exited $rc after SIGTERM"
for line in 'SIGTERM: stopping nginx' 'nginx exited (status 0)' \
            'engine exited (status 0)' 'stopped cleanly'; do
    grep -qF "thinkgate-entrypoint: $line" "$work/gw.log" \
        || fail "the log lacks \"$line\""
done
say "docker stop (SIGTERM): exit 0 in $((SECONDS - t0)) s; nginx and the engine exited with status 0"
# Its log is read: its copy of the image (vfs: the whole root) can go.
docker rm "$GW" > /dev/null

# --- the engine dies: the container goes too ---------------------------------
gateway "$GW2"
pid=''
for _ in $(seq 100); do
    # (To a file first: grep -q stopping early would fail the pipe.)
    docker logs "$GW2" > "$work/gw2.log" 2>&1
    pid=$(sed -n 's/^thinkgate-entrypoint: engine started (pid \([0-9]*\),.*/\1/p' \
          "$work/gw2.log" | head -1)
    if [ -n "$pid" ] && grep -q 'nginx started' "$work/gw2.log"; then break; fi
    sleep 0.2
done
[ -n "$pid" ] || fail "$GW2: no engine pid in its log"
sleep 1
docker exec "$GW2" bash -c "kill -KILL $pid"    # no /bin/kill in the image
for _ in $(seq 100); do
    [ "$(docker inspect -f '{{.State.Running}}' "$GW2")" = false ] && break
    sleep 0.2
done
[ "$(docker inspect -f '{{.State.Running}}' "$GW2")" = false ] \
    || fail "$GW2 still runs after its engine was killed"
rc=$(docker inspect -f '{{.State.ExitCode}}' "$GW2")
[ "$rc" != 0 ] || fail "$GW2 exited 0 after its engine was killed"
docker logs "$GW2" > "$work/gw2.log" 2>&1
grep -qF 'engine exited on its own' "$work/gw2.log" \
    || fail "$GW2's log does not say the engine died"
say "engine killed: the container stopped nginx and exited $rc"

# --- compose ------------------------------------------------------------------
compose=()
if docker compose version > /dev/null 2>&1; then compose=(docker compose)
elif command -v docker-compose > /dev/null; then compose=(docker-compose); fi
if [ ${#compose[@]} -gt 0 ]; then
    "${compose[@]}" -f "$REPO/docker/compose.yaml" config -q \
        || fail "${compose[*]} config: docker/compose.yaml"
    "${compose[@]}" -f "$REPO/docker/compose.yaml" --profile llama config -q \
        || fail "${compose[*]} --profile llama config: docker/compose.yaml"
    say "docker/compose.yaml: ${compose[*]} config passes (not started here:" \
        "its redis image needs a registry)"
else
    say "no docker compose here: docker/compose.yaml not checked"
fi
say "PASS"
