// `loom eval --context-sweep` (issue 7): how a model's quality depends on the length of
// what it reads. For every example (typically a document of consecutive verses), the
// teacher-forced NLL of each target token is computed once; then
//   - per length bucket (the example's target length T in (prev, bound]): documents,
//     tokens, NLL and perplexity, and for translation models BLEU / chrF of the bucket's
//     documents decoded whole;
//   - per position block ([0, 128), [128, 256), ... of the target position): the mean
//     NLL of the tokens at those positions, over all examples.
// Positions past the length the model was trained on are where RoPE without scaling
// breaks down; the same checkpoint can be evaluated with another rope.scaling applied at
// evaluation time (no fine-tuning) to compare methods.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "recipes/decode.h"

namespace loom::recipes {

struct SweepOptions {
  std::vector<int64_t> buckets = {128, 256, 512, 1024};  // upper bounds, increasing
  int64_t block = 128;                                    // position block size
  bool decode = true;  // BLEU / chrF per bucket (translation models only)
  DecodeOptions decode_options;
  int64_t max_tokens = 4000;  // padded tokens per teacher-forced batch
};

struct SweepBucket {
  int64_t lo = 0, hi = 0;  // target lengths in (lo, hi]
  int64_t examples = 0, tokens = 0;
  double nll = 0, ppl = 0;      // per token; 0 when empty
  double bleu = -1, chrf = -1;  // -1: not decoded
};

struct SweepBlock {
  int64_t start = 0;  // positions [start, start + block)
  int64_t tokens = 0;
  double nll = 0;
};

struct SweepResult {
  std::vector<SweepBucket> buckets;
  std::vector<SweepBlock> blocks;
  int64_t beyond = 0;  // examples longer than the last bucket (not counted)
  int64_t block = 128;
};

// references: the raw target lines, indexed by Example::line.
SweepResult context_sweep(const nn::Transformer& model, const std::vector<data::Example>& examples,
                          const data::Tokenizer& tokenizer,
                          const std::vector<std::string>& references, const SweepOptions& options);

// Markdown tables; CSV with one row per bucket and per block (kind,lo,hi,...); JSON.
void print_sweep(const SweepResult& r, const std::string& title, std::ostream& out);
std::string sweep_csv(const SweepResult& r, const std::string& method);
std::string sweep_json(const SweepResult& r, const std::string& method);

}  // namespace loom::recipes
