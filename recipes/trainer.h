// `loom train RECIPE`: the training loop. Reads the corpus and tokenizer the recipe names,
// builds the Transformer, and runs AdamW updates with the recipe's schedule, clipping and
// gradient accumulation, printing a progress line and appending JSON lines to
// OUT/metrics.jsonl; every eval_every updates it measures dev loss / NLL and dev BLEU /
// chrF on eval_sentences decoded sentences (with sample translations), and stops early
// after `patience` evaluations without improvement. Non-finite losses skip the update;
// several in a row stop training with an error. Everything printed also goes to
// OUT/train.log; at the end OUT/curves.png plots the loss and dev BLEU (when gnuplot is
// installed).
//
// Checkpoints (recipes/run_checkpoints.h): OUT/checkpoints/step-N.h5 every save_every
// updates, at each evaluation, at the end and on SIGINT/SIGTERM (the step in flight is
// finished, saved, and train returns with stop_reason "signal"); last.h5 and best.h5 (by
// dev BLEU) link to them. Resuming restores the weights, AdamW's moments, the dropout
// stream, the loader position and the counters, so a resumed run continues bit for bit
// as if it had not stopped (same thread count). `train.init_from` starts a new run from
// another checkpoint's weights only.
//
// Data parallel: under `mpirun -np N`, each rank trains on its shard of the batches and
// the gradients are averaged across ranks before every update, so the run equals one
// process with N times optim.accumulate (recipes/distributed.h); rank 0 alone logs and
// saves, checkpoints record the world size, and a resume needs the same one.
#pragma once

#include <ostream>
#include <string>

#include "recipes/recipe.h"

namespace loom::recipes {

struct TrainResult {
  int64_t steps = 0;
  double last_loss = 0;                     // mean training loss of the last log window
  double dev_nll = 0, dev_bleu = 0, dev_chrf = 0;  // last evaluation
  double test_bleu = 0, test_chrf = 0;      // final evaluation on the test split
  std::string stop_reason;                  // "max_steps", "max_minutes", "patience", "signal"
};

struct TrainOptions {
  // "": a new run (an error if OUT already holds checkpoints); "auto": continue from the
  // newest valid checkpoint of OUT (a new run when there is none); else a checkpoint path.
  std::string resume;
};

TrainResult train(const Recipe& recipe, const std::string& out_dir, std::ostream& console,
                  const TrainOptions& options = {});

}  // namespace loom::recipes
