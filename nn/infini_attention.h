// Infini-attention (Munkhdalai, Faruqui and Gopal 2024, "Leave No Context Behind",
// arXiv 2404.07143). The sequence is processed in segments of N positions. Inside a
// segment, ordinary softmax attention (causal in the decoder) over the segment's keys;
// across segments, a compressive memory of all earlier segments, per head:
//   retrieval   A_mem = σ(q) M / (σ(q) z + eps),            σ = elu + 1 (nn/linear_attention.h)
//   update      M += σ(K)ᵀ V                     (linear)
//               M += σ(K)ᵀ (V - σ(K) M / (σ(K) z + eps))   (delta rule: only what M lacks)
//               z += Σ_t σ(K_t)
//   output      A = sigmoid(β) A_mem + (1 - sigmoid(β)) A_local
// with β a learned scalar per head (the paper's eq. 10). Memory starts at zero (the first
// segment retrieves 0). Training backpropagates through the memory across segments, as
// the paper does. The memory reads unrotated q and k (no RoPE): it holds content, not
// positions; the local attention uses the rotated ones.
//
// A composite of tested ops (one scaled_dot_product_attention per segment, matmuls for
// the memory), so gradients come from the tape. Decoding carries (M, z) and the current
// segment's keys: a state bounded by N keys plus a (D, Dv) matrix per head.
#pragma once

#include <cstdint>

#include "autograd/tensor.h"

namespace loom::nn {

using ag::Tensor;

// The compressive memory after the completed segments so far, per kv head.
struct InfiniMemory {
  Tensor M;  // (B, KV, D, Dv)
  Tensor z;  // (B, KV, D, 1)
  bool empty() const { return !M.defined(); }
};

struct InfiniOptions {
  int64_t segment = 512;  // positions per segment, >= 1
  bool delta_rule = true;
  bool causal = false;
  // Absolute positions: queries are q_start .. q_start + T - 1, keys k_start .. k_start + S - 1
  // and both end together (k_start + S == q_start + T). Keys must reach back to the start
  // of the first query's segment (the decoder's cache keeps the current segment).
  int64_t q_start = 0, k_start = 0;
  Tensor key_mask;  // optional (B, 1, 1, S) bool, true = a real key (masked keys: not stored)
  Tensor bias;      // optional additive (1, H, T, S) for the local scores (ALiBi)
  double dropout_p = 0.0;              // on the local attention weights
  ag::Generator* generator = nullptr;  // required when dropout_p > 0
  double eps = 1e-6;
  // In: the memory of the segments before k_start's (empty: zero). Out: with the segments
  // this call completed folded in. nullptr: start from zero, keep nothing.
  InfiniMemory* memory = nullptr;
};

// q_local, k_local: q (B, H, T, D) and k (B, KV, S, D) for the local softmax attention
// (rotated when RoPE is on); q_mem, k_mem: the same, unrotated, for the memory; v
// (B, KV, S, Dv); gate: β (H). Returns (B, H, T, Dv).
Tensor infini_attention(const Tensor& q_local, const Tensor& k_local, const Tensor& q_mem,
                        const Tensor& k_mem, const Tensor& v, const Tensor& gate,
                        const InfiniOptions& options);

}  // namespace loom::nn
