#!/usr/bin/env bash
# make deb-test: the Debian packages in the system, as an operator gets
# them.  Installs build/deb/*.deb with apt into the system nginx, then:
#   - the module is enabled (modules-enabled symlink) and `nginx -t` passes
#   - `systemd-analyze verify` passes on thinkgate.service
#   - thinkgate-keys (python3) creates and lists a key
#   - the engine runs from the unit's ExecStart line, as the unit's user,
#     in the RuntimeDirectory the unit asks for (no systemd runs here, so
#     this script does what systemd would: directory, EnvironmentFile,
#     ExecStartPre's "+" line as root, ExecStart as User=/Group=)
#   - only root, the engine and nginx's user reach the socket
#   - a chat request through the system nginx (a test server block in
#     conf.d on 127.0.0.1:DEB_TEST_PORT) reaches a thinkgate-sim backend
#   - purge leaves no file of either package behind, and /etc/nginx is
#     back as it was (checked by a checksum listing).
# It changes the machine while it runs: it refuses to start when the
# system nginx runs or a thinkgate package is installed.  Needs root.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEBS=$(cd "${1:-$REPO/build/deb}" && pwd)
PORT=${DEB_TEST_PORT:-18480}
SIM_PORT=$((PORT + 1))
UNIT=/lib/systemd/system/thinkgate.service
TEST_CONF=/etc/nginx/conf.d/thinkgate-deb-test.conf
PKGS=(thinkgate libnginx-mod-http-thinkgate)

say()  { echo "deb-test: $*"; }
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "needs root (it installs packages)"
if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null
then
    fail "the system nginx runs (/run/nginx.pid); this test starts its own"
fi
for p in "${PKGS[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed
    then
        fail "$p is installed; this test would purge it"
    fi
done
[ ! -e /run/thinkgate ] || fail "/run/thinkgate exists (an engine runs?)"

work=$(mktemp -d /tmp/thinkgate-deb-test.XXXXXX)
engine_pid= sim_pid= nginx_started=

# A listing of /etc/nginx with checksums, to prove it is restored.
etc_nginx_listing() {
    (cd /etc/nginx && find . -printf '%p %y %m %u %g %l\n' | sort \
        && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}
etc_nginx_listing > "$work/etc-nginx.before"

cleanup() {
    local rc=$?
    set +e
    if [ -n "$nginx_started" ] && [ -s /run/nginx.pid ]; then
        nginx -s quit
        for _ in $(seq 50); do [ -s /run/nginx.pid ] || break; sleep 0.1; done
    fi
    [ -z "$engine_pid" ] || { kill "$engine_pid"; wait "$engine_pid"; } 2>/dev/null
    [ -z "$sim_pid" ] || { kill "$sim_pid"; wait "$sim_pid"; } 2>/dev/null
    rm -f "$TEST_CONF"
    for p in "${PKGS[@]}"; do
        if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed
        then
            DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$p" \
                > /dev/null 2>&1
        fi
    done
    rm -rf /run/thinkgate
    if [ $rc -ne 0 ]; then
        for f in engine.log sim.log; do
            [ -s "$work/$f" ] && { echo "--- $f"; tail -20 "$work/$f"; }
        done
        echo "deb-test: FAILED (logs: $work)" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# --- install ----------------------------------------------------------------
debs=()
for p in "${PKGS[@]}"; do
    f=$(ls "$DEBS"/"${p}"_*.deb 2>/dev/null | head -1)
    [ -n "$f" ] || fail "no ${p}_*.deb in $DEBS (run make deb)"
    debs+=("$f")
done
say "apt-get install ${debs[*]##*/}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${debs[@]}" \
    > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install"; }
for p in "${PKGS[@]}"; do
    dpkg -L "$p" > "$work/$p.files"
done

link=/etc/nginx/modules-enabled/50-mod-http-thinkgate.conf
[ "$(readlink "$link")" = \
  /usr/share/nginx/modules-available/mod-http-thinkgate.conf ] \
    || fail "$link is not the module's symlink"
grep -qx 'load_module modules/ngx_http_thinkgate_module.so;' "$link" \
    || fail "$link does not load the module"
id thinkgate > /dev/null || fail "no thinkgate user"
say "module enabled ($link), user thinkgate exists"

nginx -t -q 2> "$work/nginx-t.log" || { cat "$work/nginx-t.log"; fail "nginx -t"; }
say "nginx -t passes with the module enabled"

# --- thinkgate-keys (python3, from the package) -----------------------------
head -1 /usr/bin/thinkgate-keys | grep -qx '#!/usr/bin/python3' \
    || fail "/usr/bin/thinkgate-keys does not run /usr/bin/python3"
key=$(thinkgate-keys --file "$work/keys" create debtest --rpm 5) \
    || fail "thinkgate-keys create"
case $key in sk-tg-*) ;; *) fail "thinkgate-keys printed no key" ;; esac
grep -q "$key" "$work/keys" && fail "thinkgate-keys stored the key in clear"
thinkgate-keys --file "$work/keys" list | grep -q '^debtest rpm=5' \
    || fail "thinkgate-keys list"
say "thinkgate-keys creates and lists a key"

# --- systemd-analyze verify -------------------------------------------------
if ! systemd-analyze verify "$UNIT" > "$work/verify.log" 2>&1 \
   || grep -q thinkgate "$work/verify.log"; then
    cat "$work/verify.log"
    fail "systemd-analyze verify $UNIT"
fi
say "systemd-analyze verify $UNIT: clean"

# --- the engine, started the way the unit starts it -------------------------
unit_get() { sed -n "s/^$1=//p" "$UNIT"; }
user=$(unit_get User)
group=$(unit_get Group)
rundir=/run/$(unit_get RuntimeDirectory)
mode=$(unit_get RuntimeDirectoryMode)
envfile=$(unit_get EnvironmentFile)
[ -n "$user" ] && [ -n "$group" ] && [ -n "$mode" ] && [ -n "$envfile" ] \
    || fail "the unit lacks User, Group, RuntimeDirectoryMode or EnvironmentFile"

install -d -m "$mode" -o "$user" -g "$group" "$rundir"
# systemd's ${VAR} and $VAR expansion, done by the shell in a subshell that
# read the EnvironmentFile; the values here hold no spaces, so the words
# are the same.
expand_line() {
    (set -a; . "$envfile"; set +a; eval "printf '%s\n' $1")
}
while IFS= read -r pre; do
    [ "${pre#+}" != "$pre" ] || fail "ExecStartPre without + : $pre"
    mapfile -t argv < <(expand_line "${pre#+}")
    say "ExecStartPre (root): ${argv[*]}"
    "${argv[@]}"
done < <(unit_get ExecStartPre)
mapfile -t argv < <(expand_line "$(unit_get ExecStart)")
say "ExecStart as $user:$group: ${argv[*]}"
(set -a; . "$envfile"; set +a
 exec setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs \
     "${argv[@]}") > "$work/engine.log" 2>&1 < /dev/null &
engine_pid=$!
sock=$rundir/engine.sock
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "the engine made no socket $sock"
[ "$(stat -c '%a %U %G' "$rundir")" = "750 $user www-data" ] \
    || fail "$rundir is $(stat -c '%a %U %G' "$rundir"), not 750 $user www-data"

# Who reaches the socket: nginx's user may connect, nobody may not.
can_connect() {
    setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups \
        /usr/bin/python3 -c 'import socket,sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$sock" \
        2>/dev/null
}
can_connect www-data || fail "www-data cannot connect to $sock"
! can_connect nobody || fail "nobody can connect to $sock"
say "engine pid $engine_pid on $sock; www-data may connect, nobody may not"

# --- a chat request through the system nginx --------------------------------
make -s -C "$REPO" build/bin/thinkgate-sim
"$REPO/build/bin/thinkgate-sim" --listen "127.0.0.1:$SIM_PORT" --speed 0 \
    > "$work/sim.log" 2>&1 < /dev/null &
sim_pid=$!
cat > "$TEST_CONF" <<EOF
# make deb-test (mk/deb-test.sh) writes and removes this file.
thinkgate_backend debtest http://127.0.0.1:$SIM_PORT model=thinkgate-sim;
thinkgate_pool    debtest debtest;

server {
    listen 127.0.0.1:$PORT;
    location /v1/ { thinkgate_pass debtest; }
    location = /thinkgate/status { thinkgate_status; }
}
EOF
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$SIM_PORT/v1/models" > /dev/null && break
    sleep 0.1
done
nginx -t -q 2> "$work/nginx-t.log" || { cat "$work/nginx-t.log"; fail "nginx -t with the test server"; }
nginx
nginx_started=1
say "system nginx started (/etc/nginx/nginx.conf + $TEST_CONF)"

body='{"model":"thinkgate-sim","max_tokens":64,
       "messages":[{"role":"user","content":"What is 17 + 25?"}]}'
code=
for _ in $(seq 50); do
    code=$(curl -s -o "$work/chat.json" -w '%{http_code}' \
        -H 'Content-Type: application/json' -d "$body" \
        "http://127.0.0.1:$PORT/v1/chat/completions") || true
    [ "$code" = 200 ] && break
    sleep 0.2
done
[ "$code" = 200 ] || { cat "$work/chat.json"; fail "chat request: HTTP $code"; }
python3 - "$work/chat.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
msg = r["choices"][0]["message"]
assert msg["role"] == "assistant" and (msg.get("content") or msg.get("reasoning_content")), r
assert r["thinkgate"]["strategy"] == "passthrough", r["thinkgate"]
EOF
say "chat request through the system nginx: 200, an assistant message"

# --- stop, purge, check -----------------------------------------------------
nginx -s quit
for _ in $(seq 50); do [ -s /run/nginx.pid ] || break; sleep 0.1; done
nginx_started=
kill -TERM "$engine_pid"
rc=0; wait "$engine_pid" || rc=$?
engine_pid=
[ $rc -eq 0 ] || fail "the engine exited $rc on SIGTERM"
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=
rm -f "$TEST_CONF"
# What systemd does when the service stops.
rm -rf "$rundir"

say "apt-get purge ${PKGS[*]}"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PKGS[@]}" \
    > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
left=()
for p in "${PKGS[@]}"; do
    while IFS= read -r f; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        # Directories other packages own too (/usr, /usr/lib/nginx/...).
        dpkg -S "$f" > /dev/null 2>&1 && continue
        [ -d "$f" ] && [ -n "$(ls -A "$f")" ] && continue
        left+=("$f")
    done < "$work/$p.files"
done
for f in /etc/thinkgate /usr/lib/thinkgate /usr/share/thinkgate \
         /etc/nginx/modules-enabled/50-mod-http-thinkgate.conf \
         /etc/systemd/system/multi-user.target.wants/thinkgate.service \
         /var/lib/systemd/deb-systemd-helper-enabled/thinkgate.service.dsh-also \
         /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/thinkgate.service; do
    [ -e "$f" ] || [ -L "$f" ] && left+=("$f")
done
[ ${#left[@]} -eq 0 ] || fail "left after purge: ${left[*]}"
say "purge left no file of either package"

etc_nginx_listing > "$work/etc-nginx.after"
diff "$work/etc-nginx.before" "$work/etc-nginx.after" \
    || fail "/etc/nginx differs from before the test"
say "/etc/nginx is as before"
say "PASS"
