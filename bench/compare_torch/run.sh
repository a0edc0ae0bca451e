#!/usr/bin/env bash
# bench/compare_torch/run.sh [options]: loom vs PyTorch training throughput, side by side on
# this machine (issue 8). For each config (recipes/translate-CONFIG.toml) it cuts real
# batches from the Bible corpus with loom's Batcher and saves loom's initial weights
# (bench_compare_step make-batches), then for each thread count runs loom
# (bench_compare_step train) and PyTorch (train_torch.py, this folder's model.py) as
# separate processes, alternately, on the same batches from the same weights, and prints
# one markdown table: tok/s of each, their ratio, peak RSS of each and the agreement check
# (initial loss with dropout off, 1e-4 relative; exit status 1 when it fails).
#
#   --configs tiny,small,base   recipes to run (default: all three)
#   --threads 1,2               thread counts (default: 1,2)
#   --steps N                   timed steps per run (default 20; median reported)
#   --warmup N                  untimed steps first (default 3)
#   --rounds N                  loom/torch pairs per config and thread count, the order
#                               swapped every round (default 1); medians across rounds
#   --retries N                 a pair where either side got less than 85% of its threads'
#                               CPU time (other processes took the cores) is run again, up
#                               to N times (default 2); the last try is kept regardless
#   --torch-blas openmp|system  the OpenBLAS PyTorch loads (default openmp, see below)
#   --openblas-coretype env|auto|NAME
#                               OpenBLAS's kernel set for both sides: env (default) keeps
#                               the environment's OPENBLAS_CORETYPE, auto unsets it (OpenBLAS
#                               detects the CPU), NAME sets it (e.g. SkylakeX, Haswell)
#   --profile                   time per op kind: LOOM_PROFILE=1 and torch.profiler
#                               (tables in the run logs; slows both sides down)
#   --build-dir DIR             loom's build folder (default $LOOM_BUILD_DIR or build)
#
# Debian's python3-torch links the system libblas.so.3, which the alternatives system
# points at OpenBLAS's pthread build: its own thread pool next to torch's OpenMP pool,
# which makes 2-thread runs slower than 1-thread ones. With --torch-blas openmp (default)
# PyTorch loads OpenBLAS's OpenMP build instead (LD_LIBRARY_PATH), the build loom uses.
#
# Installs python3-torch and python3-h5py with apt when missing (benchmark-only packages,
# not loom dependencies), builds bench_compare_step, and runs `scripts/loom prepare bible`
# when data/bible/train.en is absent. Files go to BUILD_DIR/compare_torch/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/compare_torch"
configs=tiny,small,base
threads=1,2
steps=20
warmup=3
rounds=1
retries=2
torch_blas=openmp
coretype=env
profile=0
build="${LOOM_BUILD_DIR:-build}"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --configs) configs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --retries) retries=$2; shift 2 ;;
    --torch-blas) torch_blas=$2; shift 2 ;;
    --openblas-coretype) coretype=$2; shift 2 ;;
    --profile) profile=1; shift ;;
    --build-dir) build=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$steps" -ge 20 ] || echo "run.sh: note: --steps $steps is below the issue's 20" >&2
cd "$root"
log() { echo "[compare_torch] $*" >&2; }

# Debian's Python with Debian's torch (not a pyenv or venv python that lacks them); no
# __pycache__ beside the sources.
py=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1
if ! "$py" -c "import torch, h5py" 2>/dev/null; then
  log "installing python3-torch python3-h5py (apt)"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-torch python3-h5py >/dev/null
fi
# Both sides run with the same OpenBLAS kernel set. This machine's environment presets
# OPENBLAS_CORETYPE (Haswell, AVX2) while its CPU has AVX-512: that halves OpenBLAS's
# sgemm (PyTorch's GEMMs) but not oneDNN's (loom's large GEMMs), so report both.
case "$coretype" in
  env) ;;
  auto) unset OPENBLAS_CORETYPE ;;
  *) export OPENBLAS_CORETYPE="$coretype" ;;
esac
torch_env=()
if [ "$torch_blas" = openmp ]; then
  omp_blas="/usr/lib/$(gcc -print-multiarch)/openblas-openmp"
  [ -f "$omp_blas/libblas.so.3" ] || { log "no $omp_blas/libblas.so.3 (apt install libopenblas-openmp-dev)"; exit 1; }
  torch_env=(LD_LIBRARY_PATH="$omp_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
elif [ "$torch_blas" != system ]; then
  log "--torch-blas $torch_blas: expected openmp or system"; exit 2
fi

"$root/scripts/build.sh" "$build" bench_compare_step >&2
[ -f data/bible/train.en ] || "$root/scripts/loom" prepare bible >&2
log "model.py against the golden values:"
"$py" "$here/check_golden.py" tests/golden/model_golden.h5 >&2

work="$build/compare_torch"
stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$work/logs"
results="$work/results-$stamp.jsonl"
: >"$results"

# run SIDE CONFIG THREADS ROUND: one process; appends its RESULT line to $pair_file.
run() {
  local side=$1 config=$2 t=$3 round=$4 out
  local logf="$work/logs/$stamp-$config-t$t-r$round-$side.log"
  local files=(--batches "$work/$config.batches.h5" --weights "$work/$config.init.h5"
               --threads "$t" --steps "$steps" --warmup "$warmup")
  local envs=(OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t")
  if [ "$side" = loom ]; then
    [ "$profile" = 1 ] && envs+=(LOOM_PROFILE=1)
    env "${envs[@]}" "$build/bench/bench_compare_step" train "${files[@]}" >"$logf" 2>&1 ||
      { cat "$logf" >&2; exit 1; }
  else
    local extra=(); [ "$profile" = 1 ] && extra=(--profile)
    env "${envs[@]}" "${torch_env[@]}" "$py" "$here/train_torch.py" "${files[@]}" "${extra[@]}" \
      >"$logf" 2>&1 || { cat "$logf" >&2; exit 1; }
  fi
  out=$(grep '^RESULT ' "$logf" | sed 's/^RESULT //')
  log "  $side: $(echo "$out" | "$py" -c 'import json, sys; print("%(median_ms).0f ms/step, %(tok_s).0f tok/s, peak RSS %(peak_rss_mb).0f MB, %(cpu_util).2f CPUs busy, initial loss %(init_loss).6f" % json.load(sys.stdin))')"
  echo "{\"config\": \"$config\", \"round\": $round, \"result\": $out}" >>"$pair_file"
}

# contended FILE: true when a run in FILE was busy for less than 85% of its threads.
contended() {
  "$py" -c 'import json, sys
runs = [json.loads(l)["result"] for l in open(sys.argv[1])]
sys.exit(0 if any(r["cpu_util"] < 0.85 * r["threads"] for r in runs) else 1)' "$1"
}

IFS=, read -ra config_list <<<"$configs"
IFS=, read -ra thread_list <<<"$threads"
pair=0
pair_file="$work/pair-$stamp.jsonl"
for config in "${config_list[@]}"; do
  recipe="recipes/translate-$config.toml"
  [ -f "$recipe" ] || { log "$recipe: no such recipe (--configs tiny,small,base)"; exit 2; }
  "$build/bench/bench_compare_step" make-batches --recipe "$recipe" \
    --batches $((warmup + steps)) --out-batches "$work/$config.batches.h5" \
    --out-weights "$work/$config.init.h5" >&2
  for t in "${thread_list[@]}"; do
    for round in $(seq 1 "$rounds"); do
      for try in $(seq 0 "$retries"); do
        note=""; [ "$try" -gt 0 ] && note=", retry $try"
        log "$config, $t thread(s), round $round$note:"
        : >"$pair_file"
        if [ $((pair % 2)) -eq 0 ]; then
          run loom "$config" "$t" "$round"; run torch "$config" "$t" "$round"
        else
          run torch "$config" "$t" "$round"; run loom "$config" "$t" "$round"
        fi
        pair=$((pair + 1))
        if [ "$try" -lt "$retries" ] && contended "$pair_file"; then
          log "  contended (other processes took the cores): discarded, running the pair again"
          cat "$pair_file" >>"$work/discarded-$stamp.jsonl"
          continue
        fi
        cat "$pair_file" >>"$results"
        break
      done
    done
  done
done

rm -f "$pair_file"
torch_version=$("$py" -c 'import torch; print(torch.__version__)')
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
family=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
model=$(grep -m1 '^model\s*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
echo "loom vs PyTorch $torch_version, $(nproc) cores of $cpu (family $family model $model)," \
  "$(date -u +%Y-%m-%d); $steps timed steps after $warmup warm-up, $rounds round(s); torch BLAS: OpenBLAS" \
  "$([ "$torch_blas" = openmp ] && echo "OpenMP build" || echo "system default (libblas.so.3)");" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset (detected)};" \
  "tok/s = median over steps of non-pad target tokens / step time"
echo
status=0
"$py" "$here/table.py" "$results" | tee "$work/table-$stamp.md" || status=$?
log "results: $results; logs: $work/logs/$stamp-*"
exit "$status"
