// `loom train RECIPE`: the training loop. Reads the corpus and tokenizer the recipe names,
// builds the Transformer, and runs AdamW updates with the recipe's schedule, clipping and
// gradient accumulation, printing a progress line and appending JSON lines to
// OUT/metrics.jsonl; every eval_every updates it measures dev loss / NLL and dev BLEU /
// chrF on eval_sentences decoded sentences (with sample translations), writes
// OUT/checkpoints/last.h5 (and best.h5 on a new best dev BLEU), and stops early after
// `patience` evaluations without improvement. Non-finite losses skip the update; several
// in a row stop training with an error. Everything printed also goes to OUT/train.log;
// at the end OUT/curves.png plots the loss and dev BLEU (when gnuplot is installed).
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
  std::string stop_reason;                  // "max_steps", "max_minutes", "patience"
};

TrainResult train(const Recipe& recipe, const std::string& out_dir, std::ostream& console);

}  // namespace loom::recipes
