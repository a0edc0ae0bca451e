#!/usr/bin/env bash
# scripts/build.sh DIR [TARGET...] [-- CMAKE_ARGS...]: configures (once) and builds loom in
# DIR with Ninja. Configure output is kept in DIR/configure.log and shown only on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$1; shift
targets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do targets+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
cd "$root"
if [ ! -f "$dir/build.ninja" ] || [ $# -gt 0 ]; then
  mkdir -p "$dir"
  if ! cmake -S . -B "$dir" -G Ninja "$@" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"; exit 1
  fi
fi
cmake --build "$dir" ${targets[@]+--target "${targets[@]}"}
