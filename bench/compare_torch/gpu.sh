#!/usr/bin/env bash
# bench/compare_torch/gpu.sh [CONFIGS] [MAX_TOKENS] [STEPS]: loom vs PyTorch training steps
# on one GPU, in one run (issue 9), on the GPU machine: for each config (default
# small,base) cuts batches of MAX_TOKENS tokens (default 16384) from the Bible corpus
# (data/bible, carried), then runs loom float32 and bf16 (train.precision = "bf16"; bf16
# also with the flash attention kernels, LOOM_FLASH_ATTENTION=1), PyTorch float32 and
# PyTorch bf16 autocast on the same batches from the same weights
# (bench/compare_torch/train_torch.py), and prints their RESULT lines. Needs build-gpu/
# (scripts/gpu-test.sh builds it; this script adds bench_compare_step).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
configs=${1:-small,base}
max_tokens=${2:-16384}
steps=${3:-20}
cd "$root"
export CPATH="$root/.deps/include${CPATH:+:$CPATH}"
cmake --build build-gpu --target bench_compare_step >/dev/null
out=build-gpu/compare_gpu
mkdir -p "$out"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for cfg in ${configs//,/ }; do
  build-gpu/bench/bench_compare_step make-batches --recipe "recipes/translate-$cfg.toml" \
    --batches 8 --max-tokens "$max_tokens" --out-batches "$out/$cfg.batches.h5" \
    --out-weights "$out/$cfg.weights.h5"
  common=(--batches "$out/$cfg.batches.h5" --weights "$out/$cfg.weights.h5" --threads 1
          --steps "$steps" --warmup 3)
  echo "== $cfg loom f32";  build-gpu/bench/bench_compare_step train "${common[@]}" --device cuda
  echo "== $cfg loom bf16"
  build-gpu/bench/bench_compare_step train "${common[@]}" --device cuda --precision bf16
  echo "== $cfg loom bf16, flash attention (LOOM_FLASH_ATTENTION=1)"
  LOOM_FLASH_ATTENTION=1 build-gpu/bench/bench_compare_step train "${common[@]}" --device cuda \
    --precision bf16
  echo "== $cfg loom bf16, time per op kind (LOOM_PROFILE=1: a device sync around every op)"
  LOOM_PROFILE=1 build-gpu/bench/bench_compare_step train "${common[@]}" --device cuda \
    --precision bf16 2>&1 >/dev/null
  echo "== $cfg torch f32"; python3 bench/compare_torch/train_torch.py "${common[@]}" --device cuda
  echo "== $cfg torch bf16 autocast"
  python3 bench/compare_torch/train_torch.py "${common[@]}" --device cuda --amp bf16
done
