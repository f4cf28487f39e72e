#!/usr/bin/env bash
# Installs what thinkgate needs on Debian 12, only what is missing.
# Debian packages: as root, else through sudo (it says which; without
# either it names what is missing and stops).  PyPI packages: with the
# python3 on PATH, into its site-packages as root, else into the user's
# (pip --user); a python3 without pip gets python3-pip and python3-venv.
set -euo pipefail

debs=(build-essential pkg-config nginx nginx-dev redis-server
      libuv1-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev
      libcriterion-dev libevent-dev libxxhash-dev zlib1g-dev wrk curl
      libopenblas-dev)
# `make deb` (--deb) also needs Debian's packaging tools, and nothing from
# PyPI.
if [ "${1:-}" = "--deb" ]; then
    debs+=(debhelper dpkg-dev lintian systemd)
fi
# The fuzz harnesses (tests/fuzz/) need clang and its libFuzzer runtime:
# `make test` (--test) and `make fuzz` (--fuzz, nothing else) ask for them.
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--fuzz" ]; then
    debs+=(clang libclang-rt-14-dev)
fi
if [ "${1:-}" = "--fuzz" ]; then
    debs=(clang libclang-rt-14-dev)
fi
# A stock Debian python3 has no pip (nor venv); a python3 that has pip
# (a pyenv or venv one) needs neither package.
if [ "${1:-}" != "--deb" ] && [ "${1:-}" != "--fuzz" ] \
   && ! python3 -m pip --version >/dev/null 2>&1; then
    debs+=(python3 python3-pip python3-venv)
fi
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
        how="as root"
    elif command -v sudo >/dev/null 2>&1; then
        sudo=sudo
        how="through sudo"
    else
        echo "deps: missing Debian packages: ${missing[*]}; installing them" \
             "needs root or sudo: run 'apt-get install ${missing[*]}' as" \
             "root, then this again" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]} ($how)"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

if [ "${1:-}" = "--deb" ] || [ "${1:-}" = "--fuzz" ]; then
    exit 0
fi

# Root installs into python3's own site-packages, anyone else into the
# user's (pip --user; ~/.local is on python3's path by default).
pipflags=()
pipwhere="python3's site-packages (root)"
if [ "$(id -u)" -ne 0 ]; then
    pipflags=(--user)
    pipwhere="the user's site-packages (pip --user, not root)"
fi

# MODULE or MODULE:PYPI-NAME where the two differ.  pytest-xdist runs the
# e2e files side by side (`make test-e2e`, E2E_JOBS).
pys=(openai pytest pytest_timeout:pytest-timeout xdist:pytest-xdist
     matplotlib numpy
     prometheus_client:prometheus-client
     safetensors tokenizers onnx onnxruntime)
# One python3 that finds each module without importing it: importing
# them one process at a time (matplotlib, onnxruntime, openai...) cost
# seconds on every `make test`.
mapfile -t pymissing < <(python3 - "${pys[@]}" <<'PY'
import importlib.util
import sys
for m in sys.argv[1:]:
    if importlib.util.find_spec(m.split(":")[0]) is None:
        print(m.split(":", 1)[-1])
PY
)
if [ ${#pymissing[@]} -gt 0 ]; then
    echo "deps: pip installing ${pymissing[*]} into $pipwhere"
    python3 -m pip install -q "${pipflags[@]}" "${pymissing[@]}" \
        || python3 -m pip install -q "${pipflags[@]}" \
               --break-system-packages "${pymissing[@]}"
fi

# llama.cpp's OpenAI-compatible server, the second, independent backend of
# tests/e2e/test_llamacpp.py.  PyPI has only an sdist for Linux: pip
# compiles llama.cpp (about 14 minutes on 2 cores, the first time only;
# pip's wheel cache keeps the build; THINKGATE_NO_LLAMA=1 skips it).
# Generic x86-64 code (GGML_NATIVE=OFF) so a cached wheel never meets a CPU
# it was not built for; no llava/mtmd, tests, examples or tools.  A failed
# install only makes that test skip.
llama_pkg='llama-cpp-python[server]==0.3.36'
# Only `make test` asks for it (--test): `make run` does not wait for it.
if [ "${1:-}" = "--test" ] && [ -z "${THINKGATE_NO_LLAMA:-}" ] \
   && ! python3 -c "import llama_cpp.server.app" 2>/dev/null; then
    echo "deps: pip installing $llama_pkg into $pipwhere (compiles" \
         "llama.cpp; minutes)"
    export CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
-DLLAMA_BUILD_SERVER=OFF"
    export CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)"
    llama_log="$(mktemp /tmp/thinkgate-llama-cpp-install.XXXXXX.log)"
    llama_ok=0
    timeout 1500 python3 -m pip install -q "${pipflags[@]}" "$llama_pkg" \
        >"$llama_log" 2>&1 && llama_ok=1
    # Retry only when pip refused to touch the system Python, never after a
    # failed build (that would compile again for nothing).
    if [ $llama_ok -eq 0 ] && grep -q externally-managed "$llama_log"; then
        timeout 1500 python3 -m pip install -q "${pipflags[@]}" \
            --break-system-packages "$llama_pkg" >>"$llama_log" 2>&1 \
            && llama_ok=1
    fi
    if [ $llama_ok -eq 1 ]; then
        rm -f "$llama_log"
    else
        tail -n 30 "$llama_log" >&2
        echo "deps: WARNING: could not install $llama_pkg (log: $llama_log);" \
             "tests/e2e/test_llamacpp.py will be skipped" >&2
    fi
    unset CMAKE_ARGS CMAKE_BUILD_PARALLEL_LEVEL
fi
