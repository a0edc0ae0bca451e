#!/usr/bin/env bash
# Installs the Debian 12 packages loom needs, only those missing. Idempotent and quiet.
# Run as root (or with sudo available). CUDA/NCCL are not installed here: they are
# used when the toolkit is already present (nvcc on PATH or in /usr/local/cuda).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev          # BLAS (cblas_sgemm) for the CPU kernels
  libopenblas-openmp-dev   # its OpenMP build: BLAS and loom share one thread pool
  libdnnl-dev              # oneDNN's sgemm for the large GEMMs (optional at build time)
  libhdf5-dev hdf5-tools   # checkpoints (C API) and h5ls/h5dump
  zlib1g-dev               # CRC-32 checksums in checkpoints
  libdeflate-dev           # the same CRC-32, 4x faster (optional at build time)
  doctest-dev              # unit tests
  libopenmpi-dev openmpi-bin  # data-parallel CPU ranks (optional at build time)
  libsentencepiece-dev     # tokenizer
  libtomlplusplus-dev      # recipes
  libcli11-dev             # command line
  nlohmann-json3-dev       # metrics.jsonl, --json output
  libsword-utils sword-text-web sword-text-sparv sword-text-kjv  # the default corpus (mod2imp)
  gnuplot-nox              # training curves as PNG
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# Quiet unless apt fails (then its whole output is shown).
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "install-deps: apt-get failed (output above)" >&2
  exit 1
fi
rm -f "$log"
