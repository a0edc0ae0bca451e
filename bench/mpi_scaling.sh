#!/usr/bin/env bash
# Data-parallel scaling on CPU: training tokens/s of the tiny translation recipe
# (recipes/translate-tiny.toml on the Bible corpus) for
#   1 process, 1 thread, accumulate 2     (the baseline: the same updates as 2 ranks)
#   1 process, 2 threads, accumulate 2    (all cores in one process)
#   2 ranks (mpirun -np 2), 1 thread each (each rank one batch, gradients all-reduced)
# All three compute the same updates (2 batches of data.max_tokens per update). The
# variants alternate within each round (the machine is shared, so timings drift), and
# the table gives the median of the rounds and the ratio to the baseline of the same round.
#
#   bench/mpi_scaling.sh [BUILD_DIR] [STEPS] [ROUNDS]
#   (defaults: build, 30, 2; needs data/bible from `loom prepare bible`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
steps=${2:-30}
rounds=${3:-2}
loom=$build/loom
data=$root/data/bible
[ -x "$loom" ] || { echo "mpi_scaling: no $loom; build it first" >&2; exit 1; }
[ -f "$data/train.en" ] || { echo "mpi_scaling: no $data/train.en; run loom prepare bible" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # containers run as root

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The run ends with a dev and a test evaluation: point them at a few lines.
head -n 8 "$data/dev.en" >"$work/dev.en"; head -n 8 "$data/dev.es" >"$work/dev.es"

# Mean tokens/s of a run's logged windows, the first (warm-up) left out; with several
# ranks also the share of that time rank 0 spent blocked on the gradient all-reduce
# (transfer not hidden behind backward, plus waiting for the slower rank), else "-".
tokens_per_s() {
  python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
recs = [r for r in recs if r["type"] == "train"]
rates = [r["tokens_per_s"] for r in recs[1:]] or [recs[0]["tokens_per_s"]]
waits = [(r["allreduce_wait_s"], r["elapsed_s"] - p["elapsed_s"])
         for p, r in zip(recs, recs[1:]) if "allreduce_wait_s" in r]
share = f"{100 * sum(w for w, _ in waits) / sum(t for _, t in waits):.0f}%" if waits else "-"
print(f"{sum(rates) / len(rates):.0f} {share}")' "$1"
}

# run NAME LAUNCHER... : trains `steps` updates into $work/NAME, prints tokens/s.
run() {
  local name=$1; shift
  rm -rf "$work/$name"
  "$@" "$loom" train "$root/recipes/translate-tiny.toml" --out "$work/$name" \
    --set train.max_steps="$steps" --set train.log_every=5 --set train.eval_every=100000 \
    --set train.eval_sentences=1 --set train.samples=0 --set train.beam=1 \
    --set "data.train=[\"$data/train.en\",\"$data/train.es\"]" \
    --set "data.dev=[\"$work/dev.en\",\"$work/dev.es\"]" \
    --set "data.test=[\"$work/dev.en\",\"$work/dev.es\"]" \
    --set "data.tokenizer=\"$data/spm.model\"" "${ACC[@]}" >"$work/$name.log" 2>&1 ||
    { cat "$work/$name.log" >&2; exit 1; }
  tokens_per_s "$work/$name/metrics.jsonl"
}

declare -A results waited
# measure NAME LAUNCHER...: one run of round $r into results[NAME,$r] and waited[NAME,$r].
measure() {
  local name=$1 out
  shift
  out=$(run "$name" "$@")
  read -r "results[$name,$r]" "waited[$name,$r]" <<<"$out"
}
for ((r = 1; r <= rounds; ++r)); do
  ACC=(--set optim.accumulate=2)
  measure base env OMP_NUM_THREADS=1
  measure threads env OMP_NUM_THREADS=2
  ACC=(--set optim.accumulate=1)
  measure ranks mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 2
  echo "round $r: ${results[base,$r]} / ${results[threads,$r]} / ${results[ranks,$r]} tok/s" \
       "(rank 0 waiting on the all-reduce ${waited[ranks,$r]})" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "| variant | tokens/s (median of $rounds) | vs 1 process, 1 thread (same round, median) |" \
     "rank 0 blocked on the all-reduce (per round) |"
echo "|---|---|---|---|"
for v in base threads ranks; do
  vals=() ratios=()
  for ((r = 1; r <= rounds; ++r)); do
    vals+=("${results[$v,$r]}")
    ratios+=("$(awk -v a="${results[$v,$r]}" -v b="${results[base,$r]}" 'BEGIN {printf "%.2f", a / b}')")
  done
  case $v in
    base) label="1 process, 1 thread, accumulate 2" ;;
    threads) label="1 process, 2 threads, accumulate 2" ;;
    ranks) label="mpirun -np 2, 1 thread per rank" ;;
  esac
  shares=()
  for ((r = 1; r <= rounds; ++r)); do shares+=("${waited[$v,$r]}"); done
  echo "| $label | $(median "${vals[@]}") | $(printf '%.2f' "$(median "${ratios[@]}")")x |" \
       "${shares[*]} |"
done
echo "(steps $steps per run, updates of 2 x data.max_tokens tokens; $(nproc) cores)"
