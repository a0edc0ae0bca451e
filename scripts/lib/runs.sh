# Shell functions shared by scripts/long-context and scripts/attention-variants (sourced).
# They expect: $out (the results folder), the arrays cap (--set options added to every
# training run) and sweep_args (options of every `loom eval --context-sweep`).

# complete RUN: true when RUN's training ended with its test pass.
complete() { [ -f "$1/metrics.jsonl" ] && grep -q '"type":"test"' "$1/metrics.jsonl"; }

# train RECIPE RUN [--set ...]: trains unless RUN is complete; resumes a stopped RUN.
train() {
  local recipe=$1 run=$2
  shift 2
  if complete "$run"; then echo "== $run: complete, reused"; return; fi
  echo "== training $run ($recipe $*)"
  build/loom train "$recipe" --out "$run" --resume auto "${cap[@]}" "$@" | grep -E '^(step|eval|done|init|resume)' | tail -5
}

# sweep KIND NAME CHECKPOINT [--set ...]: one row set per method into $out/KIND.csv
# (the document test set: target side for translation, Spanish text for the LM).
sweep() {
  local kind=$1 name=$2 ckpt=$3 split
  shift 3
  [ "$kind" = lm ] && split=data/bible/docs.test.es || split=docs-test
  echo "== sweep $kind $name"
  build/loom eval --checkpoint "$ckpt" --split "$split" --context-sweep --beam 1 \
    "${sweep_args[@]}" --out "$out/$kind-$name" "$@" > "$out/$kind-$name.txt"
  tail -n +2 "$out/$kind-$name.csv" | sed "s/^[^,]*,/$name,/" >> "$out/$kind.csv"
}

# report KIND TITLE INTRO: $out/KIND.md (a table of perplexity by target position block and
# one by document length, with BLEU for translation) and $out/KIND.png from $out/KIND.csv.
report() {
  local kind=$1 title=$2 intro=$3
  local csv=$out/$kind.csv
  {
    echo "# $title ($(date -u +%Y-%m-%d))"
    echo
    echo "$intro"
    echo
    awk -F, '$2 == "position" && $6 > 0 {
        if (!($3 in seen)) { seen[$3] = 1; cols[++n] = $3; hi[$3] = $4 }
        if (!($1 in rowseen)) { rowseen[$1] = 1; rows[++m] = $1 }
        v[$1, $3] = sprintf("%.2f", $8) }
      END {
        printf "| method |"; for (i = 1; i <= n; i++) printf " %d-%d |", cols[i], hi[cols[i]]; print ""
        printf "|---|"; for (i = 1; i <= n; i++) printf "---|"; print ""
        for (j = 1; j <= m; j++) { printf "| %s |", rows[j]
          for (i = 1; i <= n; i++) printf " %s |", ((rows[j], cols[i]) in v ? v[rows[j], cols[i]] : "-"); print "" } }' "$csv"
    echo
    echo "By document length (target tokens): perplexity, and BLEU of whole documents decoded greedily."
    echo
    awk -F, '$2 == "length" && $6 > 0 {
        key = $3 "-" $4; if (!(key in seen)) { seen[key] = 1; cols[++n] = key }
        if (!($1 in rowseen)) { rowseen[$1] = 1; rows[++m] = $1 }
        v[$1, key] = ($9 >= 0 ? sprintf("%.2f / %.1f", $8, $9) : sprintf("%.2f", $8)); docs[key] = $5 }
      END {
        printf "| method |"; for (i = 1; i <= n; i++) printf " %s (%d docs) |", cols[i], docs[cols[i]]; print ""
        printf "|---|"; for (i = 1; i <= n; i++) printf "---|"; print ""
        for (j = 1; j <= m; j++) { printf "| %s |", rows[j]
          for (i = 1; i <= n; i++) printf " %s |", ((rows[j], cols[i]) in v ? v[rows[j], cols[i]] : "-"); print "" } }' "$csv"
  } > "$out/$kind.md"
  cat "$out/$kind.md"
  if command -v gnuplot > /dev/null; then
    local plot="set terminal pngcairo size 900,500 noenhanced; set output '$out/$kind.png'; set datafile separator ','"
    plot="$plot; set xlabel 'target position'; set ylabel 'perplexity'; set logscale y; set key left top; plot"
    local first=1
    for m in $(awk -F, '$2 == "position" {print $1}' "$csv" | awk '!s[$0]++'); do
      [ $first = 1 ] || plot="$plot,"
      plot="$plot '$csv' using (strcol(1) eq '$m' && strcol(2) eq 'position' ? \$3 : 1/0):8 with linespoints title '$m'"
      first=0
    done
    gnuplot -e "$plot" 2>/dev/null || true
  fi
}
