// Evaluation of a model on a parallel corpus: teacher-forced loss / NLL / perplexity over
// every pair, and BLEU / chrF (sacreBLEU defaults) of decoded translations.
#pragma once

#include <string>
#include <vector>

#include "data/batcher.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "recipes/decode.h"

namespace loom::recipes {

struct EvalResult {
  double loss = 0, nll = 0, ppl = 0;  // per non-pad target token (eos included)
  int64_t tokens = 0, sentences = 0;
  double bleu = -1, chrf = -1;        // -1: not decoded
  std::vector<std::string> hypotheses;  // decoded lines (when decoded)
};

// The logits of a batch: the encoder-decoder on (src, tgt_in), or a language model
// (arch "decoder") on tgt_in alone.
ag::Tensor batch_logits(const nn::Transformer& model, const data::Batch& batch);

// Loss over all examples (batched by max_tokens, no dropout); then, when decode_limit > 0,
// decodes the first decode_limit sources and scores them against `references` (the raw
// target lines of those examples' line numbers). Language models are not decoded.
EvalResult evaluate(const nn::Transformer& model, const std::vector<data::Example>& examples,
                    const data::Tokenizer& tokenizer, const std::vector<std::string>& references,
                    int64_t max_tokens, int64_t decode_limit, const DecodeOptions& decode);

// "{"loss": …, "nll": …, "ppl": …, "tokens": …, "sentences": …[, "bleu": …, "chrf": …]}"
std::string eval_json(const EvalResult& r);

}  // namespace loom::recipes
