#!/usr/bin/env bash
# Builds the nginx module out of tree against Debian's nginx-dev:
#   build/nginx/                           configure's --builddir
#   build/modules/ngx_http_thinkgate_module.so
# configure runs only when the build dir has no Makefile, when `config` (or
# this script) is newer than the last configure, or when the checkout moved
# (the generated Makefile holds absolute paths); make is incremental.
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
   || [ "$REPO/config" -nt "$stamp" ] || [ "$REPO/mk/module.sh" -nt "$stamp" ] \
   || [ "$(cat "$stamp")" != "$REPO" ]; then
    echo "module: configure (builddir $BUILDDIR)"
    ./configure --with-cc-opt="-fPIC -I$REPO/include" --with-ld-opt=-fPIC \
        "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$REPO" \
        --builddir="$BUILDDIR" > "$BUILDDIR/configure.log" 2>&1 \
        || { tail -30 "$BUILDDIR/configure.log" >&2; exit 1; }
    echo "$REPO" > "$stamp"
fi

make -s -f "$BUILDDIR/Makefile" modules
install -m 0755 "$BUILDDIR/$SO" "$MODDIR/$SO"
echo "module: $MODDIR/$SO"
