#!/usr/bin/env bash
# The Docker image (docker/, docker/README.md):
#   mk/docker.sh build    the image $IMAGE:VERSION and $IMAGE:latest
#   mk/docker.sh test     build, then docker/test.sh on the image
#   mk/docker.sh dockerd start|stop
#                         the private daemon below, for using the image by
#                         hand (prints the DOCKER_HOST to use)
#
# The base image: BASE=debian:12 (any Debian 12 image) is used as it is.
# Without BASE, no registry is assumed: debootstrap builds a Debian 12
# (minbase) root from Debian's mirror (DEBIAN_MIRROR), cached as
# $CACHE/base-bookworm.tar, and `docker import` makes it
# thinkgate-base:bookworm.
#
# $CACHE (THINKGATE_CACHE, default ~/.cache/thinkgate/docker) holds what
# outlives a checkout, as pip's cache does: the base root and the private
# daemon's data, so a fresh clone reuses the layer cache.  Build logs stay
# in build/docker/.
#
# The daemon: the one `docker info` reaches (DOCKER_HOST or the default
# socket).  When none answers and this runs as root, a private dockerd is
# started for the duration (--iptables=false --bridge=none
# --storage-driver=vfs, data under $CACHE/dockerd/ so the layer cache
# survives) and stopped after.  Its containers can only use the host
# network (`--network host`), which the build and test use anyway.
#
# Space: vfs copies every layer in full, so each build after a source change
# leaves GBs of images that no tag reaches.  After a build they are removed
# (the images labelled org.thinkgate.stage that are dangling, and a killed
# test's containers); the build stage stays tagged $IMAGE-build-cache:latest
# so that its dependency layer is reused.  Before a build, when the daemon's
# data root has less than NEED_MB (THINKGATE_DOCKER_NEED_MB) free, it stops
# with status 77 and says so.
#
# Exit status 77: docker cannot run here (no daemon answers and none can be
# started, or too little disk), with the reason on stderr;
# tests/e2e/test_docker.py skips then.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$REPO/build/docker
CACHE=${THINKGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/thinkgate}/docker
IMAGE=${IMAGE:-thinkgate}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=thinkgate-base:bookworm
DD=$CACHE/dockerd
# What a build after a source change and the test's three containers take
# on the data root, measured with vfs: NEED_MB_NOTE in docker/README.md.
NEED_MB=${THINKGATE_DOCKER_NEED_MB:-6000}

say() { echo "docker: $*"; }
die() { echo "docker: $*" >&2; exit 1; }

version() { dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version; }

apt_install() {
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" > /dev/null \
        || { apt-get update -q > /dev/null && \
             DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" \
                 > /dev/null; }
}

# --- the daemon -------------------------------------------------------------
private_pid=''

dockerd_stop() {
    local pid=${private_pid:-}
    if [ -z "$pid" ] && [ -s "$DD/pid" ]; then pid=$(cat "$DD/pid"); fi
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null \
       && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "--data-root $DD/root"
    then
        kill -TERM "$pid"
        for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        say "private dockerd stopped"
    fi
    rm -f "$DD/pid"
    if [ -s "$DD/exec-root" ]; then
        local er
        er=$(cat "$DD/exec-root")
        # dockerd leaves its default network namespace mounted there.
        awk -v d="$er/" 'index($2, d) == 1 {print $2}' /proc/mounts \
            | sort -r | while read -r m; do umount "$m"; done
        rm -rf "$er"
    fi
    rm -f "$DD/exec-root" "$DD/host"
    private_pid=''
}

# Sets DOCKER_HOST to a daemon that answers, starting the private one when
# needed; returns 1 (with the reason on stderr) when none can run.
dockerd_start() {
    if ! command -v docker > /dev/null || ! command -v dockerd > /dev/null; then
        if docker info > /dev/null 2>&1; then return 0; fi
        if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
            apt_install docker.io
        fi
    fi
    command -v docker > /dev/null || { echo "docker: no docker client" >&2; return 1; }
    if docker info > /dev/null 2>&1; then return 0; fi
    # A private daemon from an earlier run that was not stopped (killed).
    if [ -s "$DD/host" ] && DOCKER_HOST=$(cat "$DD/host") docker info > /dev/null 2>&1
    then
        export DOCKER_HOST; DOCKER_HOST=$(cat "$DD/host")
        private_pid=$(cat "$DD/pid")
        return 0
    fi
    dockerd_stop
    if ! command -v dockerd > /dev/null; then
        echo "docker: no daemon answers and there is no dockerd to start" >&2
        return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "docker: no daemon answers, and only root may start a private dockerd" >&2
        return 1
    fi
    mkdir -p "$DD/root"
    # The exec root holds containerd's sockets: a short path.
    local exec_root
    exec_root=$(mktemp -d /tmp/tg-dockerd.XXXXXX)
    echo "$exec_root" > "$DD/exec-root"
    dockerd --iptables=false --ip-masq=false --bridge=none --storage-driver=vfs \
        --data-root "$DD/root" --exec-root "$exec_root" \
        --pidfile "$exec_root/dockerd.pid" \
        --host "unix://$exec_root/docker.sock" \
        > "$DD/dockerd.log" 2>&1 < /dev/null &
    private_pid=$!
    echo "$private_pid" > "$DD/pid"
    echo "unix://$exec_root/docker.sock" > "$DD/host"
    export DOCKER_HOST=unix://$exec_root/docker.sock
    for _ in $(seq 300); do
        docker info > /dev/null 2>&1 && break
        kill -0 "$private_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! docker info > /dev/null 2>&1; then
        tail -5 "$DD/dockerd.log" >&2
        dockerd_stop
        echo "docker: the private dockerd did not start (log: $DD/dockerd.log)" >&2
        return 1
    fi
    say "private dockerd (pid $private_pid, vfs, host network only; log: $DD/dockerd.log)" >&2
}

# --- the base image ---------------------------------------------------------
base_image() {
    if [ -n "${BASE:-}" ]; then
        echo "$BASE"
        return
    fi
    local tar=$CACHE/base-bookworm.tar
    if [ ! -s "$tar" ]; then
        command -v debootstrap > /dev/null || apt_install debootstrap >&2
        local root=$CACHE/base-root
        rm -rf "$root"
        say "debootstrap bookworm (minbase) from $MIRROR" >&2
        debootstrap --variant=minbase bookworm "$root" "$MIRROR" \
            > "$OUT/debootstrap.log" 2>&1 \
            || { tail -20 "$OUT/debootstrap.log" >&2; die "debootstrap failed"; }
        # What debian:12 has: the release, its updates and security.
        rm -f "$root/etc/apt/sources.list"
        cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        chroot "$root" apt-get clean
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
               "$root"/var/log/*.log "$root"/tmp/*
        tar --numeric-owner -C "$root" -cf "$tar.tmp" .
        mv "$tar.tmp" "$tar"
        rm -rf "$root"
        say "base root cached: $tar ($(du -h "$tar" | cut -f1))" >&2
    fi
    if ! docker image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
        say "docker import $tar $BASE_IMAGE" >&2
        docker import "$tar" "$BASE_IMAGE" > /dev/null
    fi
    echo "$BASE_IMAGE"
}

# --- space ------------------------------------------------------------------
free_mb() {     # free_mb DIR: MB free on DIR's file system
    df -Pm "$1" | awk 'NR == 2 {print $4}'
}

# A killed test's containers and the images no tag reaches any more (earlier
# builds'); prints what it freed.
prune() {
    local ids
    ids=$(docker ps -aq --filter 'name=^tg-docker-test-' --filter status=exited \
              --filter status=created --filter status=dead)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker rm -f $ids > /dev/null
    docker image prune -f --filter label=org.thinkgate.stage \
        | awk '/reclaimed/ {sub(/^Total reclaimed space: */, ""); print}'
}

# Stops the build (status 77) when the data root has too little room.
room() {
    local root have
    root=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null) || return 0
    [ -d "$root" ] || return 0      # a remote daemon: its disk is not here
    have=$(free_mb "$root")
    if [ "$have" -lt "$NEED_MB" ]; then
        echo "docker: $have MB free under $root; building and testing the" \
             "image takes about $NEED_MB MB there (THINKGATE_DOCKER_NEED_MB):" \
             "not built" >&2
        exit 77
    fi
}

build() {
    local base v
    v=$(version)
    room
    base=$(base_image)
    say "building $IMAGE:$v from $base (log: $OUT/build.log)"
    : > "$OUT/build.log"
    local t0=$SECONDS
    # --network host: the build's apt reaches Debian's mirror even where
    # the daemon has no bridge network (the private one).  The build stage
    # first, tagged, so that pruning keeps its dependency layer for the
    # next build (whatever the tag's later layers, that one is shared);
    # then the image, which finds the stage in the cache.
    local step
    for step in stage image; do
        local args=(-t "$IMAGE:$v" -t "$IMAGE:latest")
        [ $step = image ] || args=(--target build -t "$IMAGE-build-cache:latest")
        if ! docker build --network host --force-rm -f "$REPO/docker/Dockerfile" \
                --build-arg BASE="$base" "${args[@]}" \
                "$REPO" >> "$OUT/build.log" 2>&1; then
            tail -40 "$OUT/build.log" >&2
            die "docker build failed (log: $OUT/build.log)"
        fi
    done
    say "built $IMAGE:$v and $IMAGE:latest in $((SECONDS - t0))s" \
        "($(docker image inspect -f '{{.Size}}' "$IMAGE:$v" \
            | awk '{printf "%.0f MB", $1 / 1e6}'))"
    local freed
    freed=$(prune)
    say "removed earlier builds' images (${freed:-0B} freed)"
}

cmd=${1:-build}
mkdir -p "$OUT" "$CACHE"
case $cmd in
build|test)
    # One build at a time per cache (the private daemon's data).
    exec 9> "$CACHE/lock"
    flock 9
    dockerd_start || exit 77
    trap dockerd_stop EXIT
    build
    if [ "$cmd" = test ]; then
        IMAGE=$IMAGE:$(version) bash "$REPO/docker/test.sh"
    elif [ -n "$private_pid" ]; then
        say "the image lives in the private daemon's data ($DD/root):" \
            "mk/docker.sh dockerd start to use it"
    fi
    ;;
dockerd)
    case ${2:-} in
    start)
        dockerd_start || exit 77
        echo "export DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}"
        ;;
    stop) dockerd_stop ;;
    *) die "usage: mk/docker.sh dockerd start|stop" ;;
    esac
    ;;
*) die "usage: mk/docker.sh build|test|dockerd start|stop" ;;
esac
