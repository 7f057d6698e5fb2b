#!/usr/bin/env bash
# Stages `cmake --install` of the build tree into a temporary prefix, then
# builds and runs consumer.c against it twice: through find_package(hakuban
# CONFIG REQUIRED) and through `pkg-config --cflags --libs hakuban`.
# Usage: run.sh <hakuban build dir> <this directory> <C compiler>
set -euo pipefail
build=$1 here=$2 cc=${3:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libhakuban.so.*.*.*' -print -quit)")
for f in libhakuban.so libhakuban.so.0; do
  [ -L "$libdir/$f" ] || { echo "missing symlink $libdir/$f"; exit 1; }
done
readelf -d "$libdir/libhakuban.so" | grep -q 'SONAME.*\[libhakuban\.so\.0\]' \
  || { echo "wrong SONAME"; exit 1; }
[ -f "$prefix/include/hakuban.h" ] || { echo "header not installed"; exit 1; }

echo "== find_package(hakuban CONFIG REQUIRED)"
cmake -S "$here" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
readelf -d "$work/cmake-build/consumer" | grep -q 'NEEDED.*\[libhakuban\.so\.0\]' \
  || { echo "consumer does not record the SONAME"; exit 1; }
"$work/cmake-build/consumer"

echo "== pkg-config --cflags --libs hakuban"
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs hakuban)
echo "   $flags"
"$cc" -std=c99 -Wall -Werror "$here/consumer.c" $flags -o "$work/consumer-pc"
LD_LIBRARY_PATH=$(pkg-config --variable=libdir hakuban) "$work/consumer-pc"
[ "$(pkg-config --modversion hakuban)" = "$(grep -m1 '^#define HAKUBAN_VERSION "' "$prefix/include/hakuban.h" | cut -d'"' -f2)" ] \
  || { echo "pkg-config version differs from the header"; exit 1; }
echo "ok"
