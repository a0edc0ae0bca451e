#!/usr/bin/env bash
# scripts/gpu-test.sh [TARGET...]: on a machine with a CUDA GPU, builds loom with CUDA in
# build-gpu/ (the header-only dependencies from .deps/include, see scripts/gpu-deps.sh) and
# runs the CUDA suite (every CUDA kernel against the CPU, gradient checks on the GPU, the
# golden model on the GPU). Extra arguments are passed to the test binary (doctest flags).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CPATH="$root/.deps/include${CPATH:+:$CPATH}"
if [ ! -f build-gpu/build.ninja ]; then
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_CUDA=ON \
    >build-gpu.configure.log 2>&1 || { cat build-gpu.configure.log; exit 1; }
fi
cmake --build build-gpu --target test_cuda loom
LOOM_SPECS_DIR="$root/tests/golden" build-gpu/tests/test_cuda "$@"
