#!/usr/bin/env bash
# scripts/gpu-check.sh [OUT_DIR]: every GPU check of issue 9 in one go, for one call of a
# rented GPU machine (carry .deps and data/bible; see docs/gpu.md). Each step's log goes
# to OUT_DIR (default build-gpu/check); a failing step does not stop the later ones, and
# the exit status is 1 when any failed.
#   1. scripts/gpu-test.sh: builds build-gpu/ and runs the CUDA suite (test_cuda).
#   2. `mpirun -np 1 loom train` of the small recipe on cuda with train.precision = "bf16":
#      the NCCL communicator with world size 1 (gradient buckets all-reduced during
#      backward), then --resume auto for 50 more updates and `loom inspect --verify`.
#   3. bench/compare_torch/gpu.sh small,base: loom f32 / bf16 against PyTorch f32 / bf16.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-build-gpu/check}
mkdir -p "$out"
export CPATH="$root/.deps/include${CPATH:+:$CPATH}"
failed=0
step() {  # step NAME COMMAND...: runs it, logs to $out/NAME.log, prints the log's tail
  local name=$1 start=$SECONDS
  shift
  echo "== $name: $*"
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  grep -v '^\[[0-9]*/[0-9]*\] \|^  ' "$out/$name.log" | tail -n "${TAIL:-25}"
  echo "== $name: exit $rc in $((SECONDS - start)) s"
  [ $rc -eq 0 ] || failed=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
step test scripts/gpu-test.sh
cmake --build build-gpu --target loom bench_compare_step >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run=$out/run-bf16
rm -rf "$run"
train=(build-gpu/loom train recipes/translate-small.toml --out "$run" --set device.type=cuda
       --set train.precision=bf16 --set train.eval_every=200 --set train.log_every=50
       --set train.eval_sentences=50 --set train.save_every=200)
step train-nccl-bf16 mpirun -np 1 --bind-to none "${train[@]}" --set train.max_steps=400
step resume-nccl-bf16 mpirun -np 1 --bind-to none "${train[@]}" --set train.max_steps=450 \
  --resume auto
step verify build-gpu/loom inspect "$run/checkpoints/last.h5" --verify
TAIL=80 step bench bench/compare_torch/gpu.sh "${GPU_BENCH_CONFIGS:-small,base}" 16384 20
exit $failed
