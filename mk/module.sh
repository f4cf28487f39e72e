#!/usr/bin/env bash
# Builds the nginx module out of tree against Debian's nginx-dev:
#   build/nginx/                           configure's --builddir
#   build/modules/ngx_http_thinkgate_module.so
# configure runs only when the build dir has no Makefile, when `config` (or
# this script) is newer than the last configure, or when the checkout moved
# (the generated Makefile holds absolute paths), or when the flags below
# changed; make is incremental.
#
# MODULE_BUILD=dir (absolute or relative to the checkout, default build)
# puts both under another build dir, MODULE_CC_OPT adds compiler and linker
# flags and MODULE_LD_OPT linker flags: the sanitizer run (make
# test-san-e2e) builds build/san/modules/ with -fsanitize=address,undefined,
# linked with -z nodelete so that its code is still mapped when
# LeakSanitizer names the frames of a leak at exit (nginx dlcloses its
# modules with the cycle's pool).
# Debian's configure flags stay the same either way, so the module keeps
# loading into /usr/sbin/nginx.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
NGX_SRC=${NGX_SRC:-/usr/share/nginx/src}
OUT=${MODULE_BUILD:-build}
case $OUT in /*) ;; *) OUT=$REPO/$OUT ;; esac
BUILDDIR=$OUT/nginx
MODDIR=$OUT/modules
EXTRA=${MODULE_CC_OPT:-}
EXTRA_LD=${MODULE_LD_OPT:-}
# What configure last ran for: the checkout and the extra flags.
KEY=$REPO${EXTRA:+ $EXTRA}${EXTRA_LD:+ ld: $EXTRA_LD}
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
   || [ "$(cat "$stamp")" != "$KEY" ]; then
    echo "module: configure (builddir $BUILDDIR)"
    ./configure --with-cc-opt="-fPIC -I$REPO/include $EXTRA" \
        --with-ld-opt="-fPIC $EXTRA $EXTRA_LD" \
        "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$REPO" \
        --builddir="$BUILDDIR" > "$BUILDDIR/configure.log" 2>&1 \
        || { tail -30 "$BUILDDIR/configure.log" >&2; exit 1; }
    echo "$KEY" > "$stamp"
fi

make -s -f "$BUILDDIR/Makefile" modules
install -m 0755 "$BUILDDIR/$SO" "$MODDIR/$SO"
echo "module: $MODDIR/$SO"
