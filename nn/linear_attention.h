// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs", arXiv 2006.16236):
// softmax(q kᵀ) is replaced by the kernel φ(q) φ(k)ᵀ with φ(x) = elu(x) + 1 > 0, so
//   out_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / (φ(q_i)ᵀ Σ_j φ(k_j) + eps)
// with j over every key (non-causal) or j <= i (causal). The sums make it O(T D²) instead
// of O(T² D). The causal form is computed chunk by chunk: inside a chunk of C queries the
// (C, C) masked products directly, across chunks a running state kv = Σ φ(k) vᵀ (D, Dv)
// and z = Σ φ(k) (D) - O(T C D + T D²) work and no (T, T) matrix, differentiable as a
// composite of tested ops. Decoding carries (kv, z) from call to call: a fixed-size state
// however long the sequence.
#pragma once

#include <cstdint>

#include "autograd/tensor.h"

namespace loom::nn {

using ag::Tensor;

// (B, KV, S, X) -> (B, KV * G, S, X): each kv head repeated for its G query heads.
Tensor repeat_kv_heads(const Tensor& x, int64_t G);

// φ(x) = elu(x) + 1: x + 1 for x > 0, exp(x) for x <= 0.
Tensor elu_feature_map(const Tensor& x);

// The running sums of a causal linear attention over the keys seen so far.
struct LinearAttentionState {
  Tensor kv;  // (B, H, D, Dv): Σ φ(k_j) v_jᵀ
  Tensor z;   // (B, H, D): Σ φ(k_j)
  bool empty() const { return !kv.defined(); }
};

struct LinearAttentionOptions {
  bool causal = false;
  // Optional key padding mask (B, 1, 1, S) bool, true = a real key: masked keys add nothing.
  Tensor key_mask;
  int64_t chunk = 64;  // causal: queries per chunk
  double eps = 1e-6;   // keeps the denominator away from 0
  // Causal only: the sums of earlier keys on entry, updated with this call's keys on exit
  // (incremental decoding); nullptr starts from zero and keeps nothing.
  LinearAttentionState* state = nullptr;
};

// q: (B, H, T, D) and k: (B, KV, S, D) already feature-mapped (φ >= 0), v: (B, KV, S, Dv),
// H % KV == 0 (query head h reads kv head h / (H / KV)). Causal needs T == S (queries and
// keys are the same new tokens; earlier ones live in options.state). Returns (B, H, T, Dv).
Tensor linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                        const LinearAttentionOptions& options = {});

}  // namespace loom::nn
