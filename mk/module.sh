#!/usr/bin/env bash
# Builds the nginx module out of tree against Debian's nginx-dev:
#   build/nginx/                           configure's --builddir
#   build/modules/ngx_http_thinkgate_module.so
# configure runs only when the build dir has no Makefile or when `config`
# (or this script) is newer than it; make is incremental.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
NGX_SRC=${NGX_SRC:-/usr/share/nginx/src}
BUILDDIR=$REPO/build/nginx
MODDIR=$REPO/build/modules
SO=ngx_http_thinkgate_module.so

if [ ! -f "$NGX_SRC/conf_flags" ]; then
    echo "module: $NGX_SRC/conf_flags not found (install nginx-dev)" >&2
    exit 1
fi

mkdir -p "$BUILDDIR" "$MODDIR"
cd "$NGX_SRC"
. ./conf_flags

stamp=$BUILDDIR/.configured
if [ ! -f "$BUILDDIR/Makefile" ] || [ ! -f "$stamp" ] \
   || [ "$REPO/config" -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
    echo "module: configure (builddir $BUILDDIR)"
    ./configure --with-cc-opt="-fPIC -I$REPO/include" --with-ld-opt=-fPIC \
        "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$REPO" \
        --builddir="$BUILDDIR" > "$BUILDDIR/configure.log" 2>&1 \
        || { tail -30 "$BUILDDIR/configure.log" >&2; exit 1; }
    touch "$stamp"
fi

make -s -f "$BUILDDIR/Makefile" modules
install -m 0755 "$BUILDDIR/$SO" "$MODDIR/$SO"
echo "module: $MODDIR/$SO"
