#include "nn/attention.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/positions.h"

namespace loom::nn {

Attention::Attention(int64_t dim, int64_t heads, int64_t kv_heads, double dropout, Generator& init,
                     std::shared_ptr<Generator> dropout_gen, bool memory_gate)
    : Module("Attention"),
      heads_(heads),
      kv_heads_(kv_heads),
      dropout_(dropout),
      dropout_gen_(std::move(dropout_gen)) {
  LOOM_CHECK(heads > 0 && dim % heads == 0, "Attention: dim ", dim, ", heads ", heads,
             ": dim must be a positive multiple of heads");
  LOOM_CHECK(kv_heads > 0 && heads % kv_heads == 0, "Attention: heads ", heads, ", kv_heads ",
             kv_heads, ": heads must be a multiple of kv_heads");
  head_dim_ = dim / heads;
  q_proj = register_module("q_proj", std::make_shared<Linear>(dim, heads * head_dim_, init));
  k_proj = register_module("k_proj", std::make_shared<Linear>(dim, kv_heads * head_dim_, init));
  v_proj = register_module("v_proj", std::make_shared<Linear>(dim, kv_heads * head_dim_, init));
  o_proj = register_module("o_proj", std::make_shared<Linear>(heads * head_dim_, dim, init));
  if (memory_gate) gate = register_parameter("gate", ag::zeros({heads}));
}

Tensor Attention::forward(const Tensor& x, const Tensor& memory, const AttentionContext& ctx,
                          KVCache* cache, bool static_kv) const {
  const int64_t B = x.size(0), T = x.size(1), S = memory.size(1);
  // (B, len, n*D) -> (B, n, len, D): a view, no copy
  auto split_heads = [&](const Tensor& t, int64_t n, int64_t len) {
    return t.view({B, len, n, head_dim_}).transpose(1, 2);
  };
  Tensor q = split_heads(q_proj->forward(x), heads_, T);  // (B, H, T, D)
  Tensor k, v;                                            // (B, KV, S_total, D)
  if (cache != nullptr && static_kv && cache->length() > 0) {
    k = cache->k;
    v = cache->v;
  } else {
    k = split_heads(k_proj->forward(memory), kv_heads_, S);
    v = split_heads(v_proj->forward(memory), kv_heads_, S);
    if (cache != nullptr && !ctx.linear) {  // linear attention keeps sums instead (below)
      if (!static_kv && cache->length() > 0) {
        k = ag::concat({cache->k, k}, 2);
        v = ag::concat({cache->v, v}, 2);
      }
      cache->k = k;
      cache->v = v;
    }
  }
  const Tensor q_unrotated = q, k_unrotated = k;  // Infini-attention's memory reads these
  if (ctx.rope_cos_q.defined()) {
    q = apply_rope(q, ctx.rope_cos_q, ctx.rope_sin_q);
    k = apply_rope(k, ctx.rope_cos_k, ctx.rope_sin_k);
  }
  auto merge_heads = [&](const Tensor& y) {  // (B, H, T, D) -> o_proj((B, T, H * D))
    return o_proj->forward(y.transpose(1, 2).reshape({B, T, heads_ * head_dim_}));
  };
  const bool drop = is_training() && dropout_ > 0;
  if (ctx.linear) {
    LOOM_CHECK(!ctx.bias.defined(), "Attention: linear attention takes no additive bias (ALiBi)");
    LinearAttentionOptions lo{.causal = ctx.causal, .key_mask = ctx.key_mask};
    if (cache != nullptr && ctx.causal) lo.state = &cache->linear;
    return merge_heads(linear_attention(elu_feature_map(q), elu_feature_map(k), v, lo));
  }
  if (ctx.block > 0) {
    LOOM_CHECK(!ctx.bias.defined(), "Attention: block-sparse attention takes no additive bias");
    LOOM_CHECK(k.size(2) == T, "Attention: block-sparse over ", T, " queries and ", k.size(2),
               " keys: the one-shot form needs the same positions (decode through a mask)");
    BlockSparseOptions bo{
        .block = ctx.block, .global = ctx.global, .causal = ctx.causal, .key_mask = ctx.key_mask};
    if (drop) bo.dropout_p = dropout_, bo.generator = dropout_gen_.get();
    return merge_heads(block_sparse_attention(q, k, v, bo));
  }
  if (ctx.segment > 0) {
    LOOM_CHECK(gate.defined(), "Attention: Infini-attention needs the layer built with a gate");
    InfiniOptions io{.segment = ctx.segment,
                     .delta_rule = ctx.delta_rule,
                     .causal = ctx.causal,
                     .q_start = ctx.q_start,
                     .k_start = ctx.k_start,
                     .key_mask = ctx.key_mask,
                     .bias = ctx.bias};
    if (drop) io.dropout_p = dropout_, io.generator = dropout_gen_.get();
    if (cache != nullptr) io.memory = &cache->memory;
    return merge_heads(infini_attention(q, k, q_unrotated, k_unrotated, v, gate, io));
  }
  ag::AttentionOptions opt;
  opt.mask = ctx.key_mask;
  opt.bias = ctx.bias;
  opt.causal = ctx.causal;
  opt.window_left = ctx.window_left;
  opt.window_right = ctx.window_right;
  if (drop) {
    opt.dropout_p = dropout_;
    opt.generator = dropout_gen_.get();
  }
  return merge_heads(ag::scaled_dot_product_attention(q, k, v, opt));
}

}  // namespace loom::nn
