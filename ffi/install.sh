#!/bin/sh
# Install libcmqtt (shared and static), include/cmqtt.h and a cmqtt.pc for pkg-config.
#
#   cargo build --release -p cmqtt-ffi
#   ffi/install.sh [--prefix DIR] [--libdir DIR] [--destdir DIR] [--target-dir DIR]
#
# --prefix     where to install (default: $PREFIX or /usr/local)
# --libdir     the library directory (default: PREFIX/lib)
# --destdir    staging root prepended to every path, as in `make install DESTDIR=` (the .pc file
#              still names PREFIX)
# --target-dir cargo's target directory (default: $CARGO_TARGET_DIR or ./target); the release
#              build in it is installed
#
# Installs: LIBDIR/libcmqtt.so, LIBDIR/libcmqtt.a, PREFIX/include/cmqtt.h,
# LIBDIR/pkgconfig/cmqtt.pc. Then: cc app.c $(pkg-config --cflags --libs cmqtt)
# (set PKG_CONFIG_PATH=LIBDIR/pkgconfig for a prefix pkg-config does not search).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
prefix=${PREFIX:-/usr/local}
libdir=""
destdir=${DESTDIR:-}
target=${CARGO_TARGET_DIR:-$root/target}

while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --libdir) libdir=$2; shift 2 ;;
    --libdir=*) libdir=${1#*=}; shift ;;
    --destdir) destdir=$2; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --target-dir) target=$2; shift 2 ;;
    --target-dir=*) target=${1#*=}; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$libdir" ] || libdir=$prefix/lib
includedir=$prefix/include

rel=$target/release
for f in "$rel/libcmqtt.so" "$rel/libcmqtt.a" "$root/include/cmqtt.h"; do
    if [ ! -f "$f" ]; then
        echo "install.sh: $f is missing; run: cargo build --release -p cmqtt-ffi" >&2
        exit 1
    fi
done

# The version of the workspace (ffi's version is the workspace's).
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "install.sh: no version in $root/Cargo.toml" >&2; exit 1; }

# What the static library needs besides libc (the Rust standard library's dependencies on
# Linux/glibc; `cargo rustc -p cmqtt-ffi --release --crate-type staticlib -- --print
# native-static-libs` prints them).
libs_private="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

mkdir -p "$destdir$libdir/pkgconfig" "$destdir$includedir"
cp "$rel/libcmqtt.so" "$destdir$libdir/libcmqtt.so.tmp" && mv -f "$destdir$libdir/libcmqtt.so.tmp" "$destdir$libdir/libcmqtt.so"
cp "$rel/libcmqtt.a" "$destdir$libdir/libcmqtt.a"
cp "$root/include/cmqtt.h" "$destdir$includedir/cmqtt.h"
chmod 0755 "$destdir$libdir/libcmqtt.so"
chmod 0644 "$destdir$libdir/libcmqtt.a" "$destdir$includedir/cmqtt.h"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|$libdir|g" -e "s|@INCLUDEDIR@|$includedir|g" \
    -e "s|@VERSION@|$version|g" -e "s|@LIBS_PRIVATE@|$libs_private|g" \
    "$here/cmqtt.pc.in" > "$destdir$libdir/pkgconfig/cmqtt.pc"
echo "installed libcmqtt $version: $destdir$libdir/libcmqtt.{so,a}, $destdir$includedir/cmqtt.h, $destdir$libdir/pkgconfig/cmqtt.pc"
