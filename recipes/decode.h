// Translation decoding with the decoder's KV cache: greedy and beam search over batches of
// sources, one new target token per step (Transformer::decode_step with (B, 1) tokens).
//
// Beam search is the shrinking beam of Nematus (Sennrich et al. 2017, "Nematus: a Toolkit
// for Neural Machine Translation", https://github.com/EdinburghNLP/nematus, after
// Bahdanau et al.'s GroundHog): each live hypothesis is one batch row of the DecoderState;
// per sentence the `width` best one-token extensions of its live hypotheses (by sum of
// log-probs) are kept, where width = beam minus the hypotheses finished so far; an
// extension by eos is finished and set aside, the others stay live, and
// DecoderState::select reorders/replicates the rows. A sentence is done when all its
// beams are finished, or at its length cap, where every live hypothesis is finished with
// a forced eos. The answer is the finished hypothesis of best normalised score (see
// DecodeOptions::length_penalty). With beam 1 this is exactly greedy search.
// pad and bos are never generated.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/transformer.h"

namespace loom::recipes {

struct DecodeOptions {
  int beam = 1;  // 1 = greedy (argmax at every step)
  // Absolute cap on generated tokens (eos not counted).
  int max_len = 256;
  // Per-sentence cap, fairseq's --max-len-a/--max-len-b: at most floor(a * src_len + b)
  // tokens (eos not counted), src_len = the source's ids including its eos; the smaller of
  // the two caps applies. Per sentence, not per batch, so results do not depend on which
  // sentences share a batch.
  double max_len_a = 1.2, max_len_b = 10;
  // fairseq's length penalty (fairseq/sequence_generator.py, Ott et al. 2019,
  // https://github.com/facebookresearch/fairseq): a finished hypothesis of n tokens plus eos is
  // ranked by (sum of its n + 1 log-probs) / (n + 1)^length_penalty. 0 = raw sum (favours short
  // outputs), 1 = mean log-prob per token. Beam search only; greedy takes the argmax.
  double length_penalty = 1.0;
};

// The best hypothesis' ids (without bos/eos) for each source (pieces + eos), in input
// order. The model must be a seq2seq Transformer in eval mode (checked); runs under
// ag::NoGrad. Sources are sorted by length and batched so that (sentences * beam) times
// the longest source in the batch stays within max_batch_tokens (a longer single source
// gets a batch of its own); greedy when opts.beam == 1, beam search otherwise.
std::vector<std::vector<int32_t>> translate_ids(const nn::Transformer& model,
                                                const std::vector<std::vector<int32_t>>& sources,
                                                const DecodeOptions& opts,
                                                int64_t max_batch_tokens = 4000);

// The two searches on one batch (sources as above, decoded together, no sorting);
// translate_ids calls them. beam_search with opts.beam == 1 gives greedy_search's output.
std::vector<std::vector<int32_t>> greedy_search(const nn::Transformer& model,
                                                const std::vector<std::vector<int32_t>>& sources,
                                                const DecodeOptions& opts);
std::vector<std::vector<int32_t>> beam_search(const nn::Transformer& model,
                                              const std::vector<std::vector<int32_t>>& sources,
                                              const DecodeOptions& opts);

}  // namespace loom::recipes
