// Multi-head attention with grouped K/V heads (MHA: kv_heads == heads, MQA: 1, GQA:
// between), names and layouts as DESIGN.md / PyTorch: q_proj [H*D, C], k_proj and v_proj
// [KV*D, C], o_proj [C, H*D], all with bias. Scores q·kᵀ/sqrt(D) + ALiBi bias + masks,
// softmax, dropout, times v — one fused op (ag::scaled_dot_product_attention).
//
// Positions enter through AttentionContext: RoPE tables rotate q and k (self-attention
// only), an ALiBi bias is added to the scores. With a KVCache the keys are cached
// unrotated and all of them are rotated at every step with the current tables, so Dynamic
// NTK (whose base changes with the length) decodes exactly as a full recomputation
// (specs/positions.md: loom follows the YaRN paper here, not HF's rotated-key cache).
#pragma once

#include "nn/block_sparse_attention.h"
#include "nn/infini_attention.h"
#include "nn/linear.h"
#include "nn/linear_attention.h"

namespace loom::nn {

struct AttentionContext {
  Tensor key_mask;  // bool, broadcastable to (B, H, T, S), true = attend; undefined = all
  bool causal = false;
  // RoPE: cos/sin tables (T, D) for the queries and (S, D) for the keys; undefined = none.
  Tensor rope_cos_q, rope_sin_q, rope_cos_k, rope_sin_k;
  Tensor bias;  // additive (1, H, T, S) (ALiBi), undefined = none
  // Sliding window (ag::AttentionOptions::window_left / window_right); -1: unbounded.
  int64_t window_left = -1, window_right = -1;
  // Linear attention (nn/linear_attention.h) instead of softmax attention: RoPE, when
  // given, rotates q and k before the feature map; key_mask is (B, 1, 1, S).
  bool linear = false;
  // Block-sparse (nn/block_sparse_attention.h) when block > 0: queries and keys are the
  // same positions 0 .. T-1 (an empty cache). Decoding with a cache gets the pattern as a
  // key_mask instead (Transformer::self_context).
  int64_t block = 0, global = 0;
  // Infini-attention (nn/infini_attention.h) when segment > 0, on the Attention's gate;
  // q_start, k_start: absolute positions of the first query and key.
  int64_t segment = 0;
  bool delta_rule = true;
  int64_t q_start = 0, k_start = 0;
};

// Keys and values seen so far by one attention layer during incremental decoding.
struct KVCache {
  Tensor k, v;                  // (B, KV, S, D); k unrotated
  LinearAttentionState linear;  // linear attention: the running sums instead of k and v
  InfiniMemory memory;          // Infini-attention: the earlier segments (k, v: this one)
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
};

class Attention : public Module {
 public:
  // memory_gate: Infini-attention's β per head ("gate" (H), zeros: sigmoid 1/2).
  Attention(int64_t dim, int64_t heads, int64_t kv_heads, double dropout, Generator& init,
            std::shared_ptr<Generator> dropout_gen, bool memory_gate = false);

  // x: (B, T, C) queries; memory: (B, S, C) keys/values (= x for self-attention).
  // With `cache`, memory's new keys/values are appended to it first (self-attention
  // decoding), or, for cross-attention, computed once and reused (`static_kv`).
  Tensor forward(const Tensor& x, const Tensor& memory, const AttentionContext& ctx,
                 KVCache* cache = nullptr, bool static_kv = false) const;

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj;
  Tensor gate;  // Infini-attention only

 private:
  int64_t heads_, kv_heads_, head_dim_;
  double dropout_;
  std::shared_ptr<Generator> dropout_gen_;
};

}  // namespace loom::nn
