#!/usr/bin/env bash
# Debian packages of thinkgate (debian/):
#   mk/deb.sh build   libnginx-mod-http-thinkgate and thinkgate into
#                     build/deb/, then lintian on them
#   mk/deb.sh test    build, then install both into the system nginx, check
#                     them, purge them (mk/deb-test.sh; changes the machine)
# dpkg-buildpackage writes its results beside the source tree, so the
# build runs in a copy of the checkout's files (tracked and untracked, not
# ignored) under build/deb/src/.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$REPO/build/deb
cmd=${1:-build}

build() {
    bash "$REPO/mk/deps.sh" --deb

    local version src
    version=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version)
    src=$OUT/src/thinkgate-$version
    rm -rf "$OUT"
    mkdir -p "$src"
    if git -C "$REPO" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' f; do
                  [ -e "$f" ] && printf '%s\0' "$f"
              done \
            | tar --null -T - -cf -) | tar -xf - -C "$src"
    else
        # An unpacked source tarball: everything but the build outputs.
        tar -C "$REPO" --exclude=./build -cf - . | tar -xf - -C "$src"
    fi

    echo "deb: dpkg-buildpackage in $src (log: $OUT/build.log)"
    (cd "$src" && dpkg-buildpackage -b -us -uc) > "$OUT/build.log" 2>&1 \
        || { tail -40 "$OUT/build.log" >&2; exit 1; }
    mv "$OUT"/src/*.deb "$OUT"/src/*.changes "$OUT"/src/*.buildinfo "$OUT"/
    rm -rf "$OUT/src"

    echo "deb: lintian"
    lintian --display-info "$OUT"/thinkgate_*.changes \
        | tee "$OUT/lintian.log"
    if grep -q '^E: ' "$OUT/lintian.log"; then
        echo "deb: lintian reports errors (build/deb/lintian.log)" >&2
        exit 1
    fi
    ls -l "$OUT"/*.deb
}

case $cmd in
build) build ;;
test)  build; bash "$REPO/mk/deb-test.sh" "$OUT" ;;
*)     echo "usage: mk/deb.sh build|test" >&2; exit 2 ;;
esac
