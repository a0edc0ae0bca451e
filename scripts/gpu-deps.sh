#!/usr/bin/env bash
# scripts/gpu-deps.sh: run HERE (a Debian machine with scripts/install-deps.sh done) before
# sending the tree to a GPU machine that has CUDA, HDF5, OpenBLAS, SentencePiece, MPI and
# doctest but no package registry: copies the header-only libraries it lacks (toml++,
# CLI11, nlohmann-json, from their Debian packages) into .deps/include (git-ignored).
# scripts/gpu-test.sh puts that folder on the include path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/.deps/include"
for d in toml++ CLI nlohmann; do
  rm -rf "$root/.deps/include/$d"
  cp -r "/usr/include/$d" "$root/.deps/include/$d"
done
du -sh "$root/.deps"
