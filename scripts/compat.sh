#!/usr/bin/env bash
# Compatibility run: builds each Mosquitto source snapshot found in ../shared/mosquitto-src/
# (beside the repository) into build-compat/<version>/ once, then runs the broker tests and
# the README examples of an existing build directory against each of those brokers.
# Without ../shared/mosquitto-src/ it does nothing: the normal run covers Debian's broker.
#
# Usage: scripts/compat.sh [build dir, default build]   (build-only: scripts/compat.sh --build-only)
# Environment: TWINS_COMPAT_SRC (default ../shared/mosquitto-src), TWINS_COMPAT_DIR (default build-compat).
set -euo pipefail
cd "$(dirname "$0")/.."

src=${TWINS_COMPAT_SRC:-../shared/mosquitto-src}
out=${TWINS_COMPAT_DIR:-build-compat}
build_only=false
[ "${1:-}" = "--build-only" ] && { build_only=true; shift; }
build=${1:-build}
jobs=$(nproc)

if ! compgen -G "$src/mosquitto-*.tar.gz" >/dev/null; then
  echo "compat: no Mosquitto snapshots in $src: only Debian's broker is tested"
  exit 0
fi

# The admins' recipe: CMake with its defaults, no documentation, no upstream tests (2.1-develop
# of 2024-10 does not link with -DWITH_WEBSOCKETS=OFF). Clients and apps are not needed.
flags=(-DCMAKE_BUILD_TYPE=Release -DDOCUMENTATION=OFF -DWITH_TESTS=OFF -DWITH_CLIENTS=OFF -DWITH_APPS=OFF)

# One broker per snapshot, rebuilt only when the snapshot or the flags change.
build_broker() {
  local tarball=$1 name dir sum
  name=$(basename "$tarball" .tar.gz)
  dir=$out/$name
  sum=$( (sha256sum "$tarball" | cut -d' ' -f1; echo "${flags[*]}") | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/prefix/sbin/mosquitto" ] && [ "$(cat "$dir/source.sha256" 2>/dev/null)" = "$sum" ]; then
    return
  fi
  echo "compat: building $name into $dir/prefix"
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "$tarball" -C "$dir"
  cmake -S "$dir/$name" -B "$dir/build" "${flags[@]}" -DCMAKE_INSTALL_PREFIX="$PWD/$dir/prefix" >"$dir/cmake.log" 2>&1 \
    || { tail -20 "$dir/cmake.log"; return 1; }
  cmake --build "$dir/build" -j"$jobs" --target install >"$dir/build.log" 2>&1 || { tail -40 "$dir/build.log"; return 1; }
  echo "$sum" >"$dir/source.sha256"
}

brokers=()
for tarball in "$src"/mosquitto-*.tar.gz; do
  build_broker "$tarball"
  brokers+=("$out/$(basename "$tarball" .tar.gz)/prefix")
done
$build_only && exit 0

failed=() passed=()
for prefix in "${brokers[@]}"; do
  name=$(basename "$(dirname "$prefix")")
  echo "compat: broker tests and README examples against $name"
  # The broker's own libmosquitto (as its package installs it) and its own plugins
  # (dynamic-security): Debian's are built for 2.0.11.
  if TWINS_MOSQUITTO=$PWD/$prefix/sbin/mosquitto TWINS_MOSQUITTO_PLUGINS=$PWD/$prefix/lib \
     LD_LIBRARY_PATH=$PWD/$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
     ctest --test-dir "$build" --output-on-failure -j"$jobs" -L "broker|docs"; then
    passed+=("$name")
  else
    failed+=("$name")
  fi
done
echo "compat: passed on ${passed[*]:-none}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "compat: FAILED on ${failed[*]}"
  exit 1
fi
