#!/usr/bin/env bash
# Installs the LiteLLM proxy that bench/overhead and bench/relay measure
# beside nginx proxy_pass and thinkgate, from PyPI at a pinned version, into
# its own virtual environment: $BUILD/litellm/venv (default build/).  The
# system Python is never touched.  `make bench` runs it first.
#
# A repeat run with the same pin costs one file read.  When it cannot
# install (no network, no venv module), it says why on one line, leaves the
# reason in $BUILD/litellm/skipped and exits 0: the benchmarks then print a
# skip line for LiteLLM's rows and measure the rest.
#
# Usage: mk/litellm.sh [--check]   (--check: exit 1 when not installed,
#                                   install nothing)
set -uo pipefail

# 1.108.7 is the release measured here; 1.107.0 was a compromised upload
# (withdrawn), so never float this pin.
pkg='litellm[proxy]==1.108.7'
build="${BUILD:-build}"
dir="$build/litellm"
venv="$dir/venv"
stamp="$dir/installed"
log="$dir/install.log"

if [ -x "$venv/bin/litellm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]
then
    exit 0
fi
[ "${1:-}" = "--check" ] && exit 1

skip() {
    echo "$1" >"$dir/skipped"
    echo "litellm: skipped: $1"
    exit 0
}

mkdir -p "$dir"
rm -f "$dir/skipped" "$stamp"
py="${LITELLM_PYTHON:-python3}"
echo "litellm: installing $pkg into $venv (once; a minute or more)"
rm -rf "$venv"
if ! "$py" -m venv "$venv" >"$log" 2>&1; then
    rm -rf "$venv"
    # Debian ships venv's pip bootstrap (ensurepip) as python3-venv.
    if [ -r /etc/debian_version ] && command -v apt-get >/dev/null; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        echo "litellm: installing python3-venv (Debian)"
        { $sudo apt-get update -q \
          && DEBIAN_FRONTEND=noninteractive \
             $sudo apt-get install -y -q python3-venv; } >>"$log" 2>&1 \
            || skip "python3-venv could not be installed (see $log)"
        "$py" -m venv "$venv" >>"$log" 2>&1 \
            || { rm -rf "$venv"; skip "$py -m venv failed (see $log)"; }
    else
        skip "$py -m venv failed (see $log)"
    fi
fi
# Few retries: without a network this should fail in seconds, not minutes.
if ! timeout 1200 "$venv/bin/python" -m pip install -q --retries 1 \
        --timeout 20 --disable-pip-version-check "$pkg" >>"$log" 2>&1; then
    rm -rf "$venv"
    skip "pip could not install $pkg (no network? see $log)"
fi
if ! LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY_DISABLED=true \
        "$venv/bin/python" -c 'import litellm.proxy.proxy_server' >>"$log" 2>&1
then
    rm -rf "$venv"
    skip "$pkg installed but its proxy does not import (see $log)"
fi
echo "$pkg" >"$stamp"
echo "litellm: $pkg ready in $venv"
