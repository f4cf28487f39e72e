#!/usr/bin/env bash
# Installs what thinkgate needs on Debian 12, only what is missing.
set -euo pipefail

debs=(build-essential pkg-config nginx nginx-dev redis-server
      libuv1-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev
      libcriterion-dev libevent-dev libxxhash-dev zlib1g-dev wrk curl)
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

pys=(openai pytest matplotlib)
pymissing=()
for m in "${pys[@]}"; do
    python3 -c "import $m" 2>/dev/null || pymissing+=("$m")
done
if [ ${#pymissing[@]} -gt 0 ]; then
    echo "deps: pip installing ${pymissing[*]}"
    python3 -m pip install -q "${pymissing[@]}" \
        || python3 -m pip install -q --break-system-packages "${pymissing[@]}"
fi
