// Sequence losses (DESIGN.md "Loss"): label-smoothed cross-entropy with PyTorch's
// semantics, (1-ε)·nll + ε·mean_over_vocab(-log p), pad targets ignored, mean over the
// non-pad target tokens; plus the plain NLL (for perplexity) and token accuracy.
#pragma once

#include "nn/module.h"

namespace loom::nn {

struct SequenceLoss {
  Tensor loss;         // scalar, label-smoothed, differentiable
  double nll = 0;      // mean NLL per non-pad target token (eos included); 0 if not asked for
  int64_t tokens = 0;  // non-pad target tokens
};

// logits: (B, T, V); target: (B, T) int64 with pad = 0. With label smoothing the plain
// NLL costs a second cross-entropy pass over the logits; training steps, which only need
// the loss, pass with_nll = false.
SequenceLoss sequence_loss(const Tensor& logits, const Tensor& target, double label_smoothing,
                           int64_t pad = 0, bool with_nll = true);

// Fraction of non-pad targets whose argmax logit is the target.
double token_accuracy(const Tensor& logits, const Tensor& target, int64_t pad = 0);

}  // namespace loom::nn
