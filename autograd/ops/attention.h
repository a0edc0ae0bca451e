// Fused scaled-dot-product attention (torch.nn.functional.scaled_dot_product_attention with
// enable_gqa=True and a bool mask where true = attend), forward and backward in one op.
#pragma once

#include <cstdint>

#include "autograd/tensor.h"

namespace loom::ag {

struct AttentionOptions {
  // Optional bool mask broadcastable to (B, H, T, S), true = attend, e.g. key padding
  // (B, 1, 1, S).
  Tensor mask;
  // Optional additive bias in q's dtype, broadcastable to (B, H, T, S), e.g. ALiBi
  // (1, H, T, S). It is not differentiated: a bias that requires grad is an error.
  Tensor bias;
  // Query i (absolute position S - T + i) attends keys j <= S - T + i: aligned at the end,
  // as for a KV cache (PyTorch's is_causal aligns at the start; equal when T == S).
  bool causal = false;
  // Sliding window (FlashAttention's window_size = (left, right)): query i, at end-aligned
  // position i' = S - T + i, attends only keys i' - window_left <= j <= i' + window_right;
  // -1 leaves that side unbounded (with causal the right side is 0). With a window the op
  // keeps only each query's band of probabilities, (B, H, T, left + right + 1): memory and
  // work grow linearly in T. CPU only for now.
  int64_t window_left = -1, window_right = -1;
  double scale = 0.0;              // multiplies q kᵀ; 0 means 1 / sqrt(D)
  double dropout_p = 0.0;          // dropout on the attention weights, in [0, 1); pass 0 in eval
  Generator* generator = nullptr;  // required when dropout_p > 0; advanced by B * H * T * S
};

// q: (B, H, T, D); k, v: (B, KV, S, D) with H % KV == 0 (MHA: KV == H, MQA: KV == 1, GQA:
// between); query head h uses kv head h / (H / KV). Returns (B, H, T, D):
//   out = dropout(softmax(scale * q kᵀ + bias, hidden keys -inf)) v.
// Inputs may be strided views (e.g. (B, T, H, D) transposed to (B, H, T, D)); only a head
// dim that is not contiguous is copied. Unlike PyTorch (NaN), a query row that sees no key
// at all outputs zeros and gets zero gradients. Gradients flow to q, k and v (k and v
// summed over the query heads that share them).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt = {});

}  // namespace loom::ag
