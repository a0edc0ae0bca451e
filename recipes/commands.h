// The `loom` subcommands other than train and demo, as functions the CLI (and tests) call.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "recipes/decode.h"
#include "recipes/recipe.h"

namespace loom::recipes {

// `loom translate --checkpoint CKPT`: one source sentence per input line, one translation
// per output line, in order.
void translate_stream(const std::string& checkpoint, const DecodeOptions& decode, std::istream& in,
                      std::ostream& out);

// The [source, target] files of an eval split (EvalOptions::split) for a recipe's data; a
// docs- split of a recipe whose files are documents already (docs.test.en) keeps them.
std::vector<std::string> split_files(const std::string& split, const DataConfig& data);

struct EvalOptions {
  // dev | test | docs-dev | docs-test | SRC,TGT (or one TEXT file for a language model).
  // docs-X: the document-level set `prepare bible` writes beside split X
  // (data/bible/test.en -> data/bible/docs.test.en).
  std::string split = "test";
  DecodeOptions decode;
  bool json = false;
  // Model keys applied at evaluation time, e.g. "model.rope.scaling=yarn" (the weights
  // must still fit: only position settings and max_len make sense).
  std::vector<std::string> sets;
  bool context_sweep = false;
  std::vector<int64_t> buckets = {128, 256, 512, 1024};
  int64_t block = 128;     // sweep: target positions per block
  std::string out_prefix;  // sweep: writes PREFIX.csv and PREFIX.json when set
};

// `loom eval --checkpoint CKPT`: a split of the recipe's data (as saved in the
// checkpoint's config) or files; loss, perplexity, BLEU and chrF as a table or one JSON
// object; with context_sweep, the per-length and per-position tables
// (recipes/context_sweep.h).
void eval_command(const std::string& checkpoint, const EvalOptions& options, std::ostream& out);

}  // namespace loom::recipes
