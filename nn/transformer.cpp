#include "nn/transformer.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/positions.h"

namespace loom::nn {

// ---- layers ------------------------------------------------------------------------------

EncoderLayer::EncoderLayer(const ModelConfig& cfg, Generator& init,
                           std::shared_ptr<Generator> dropout_gen)
    : Module("EncoderLayer"), pre_norm_(cfg.norm == "pre") {
  self_attn = register_module(
      "self_attn", std::make_shared<Attention>(cfg.d_model, cfg.heads, cfg.kv_heads, cfg.dropout,
                                               init, dropout_gen, cfg.attention.infini(true)));
  self_attn_norm = register_module("self_attn_norm", std::make_shared<LayerNorm>(cfg.d_model));
  ffn = register_module("ffn", std::make_shared<FeedForward>(cfg.d_model, cfg.ffn, cfg.activation,
                                                             cfg.dropout, init, dropout_gen));
  ffn_norm = register_module("ffn_norm", std::make_shared<LayerNorm>(cfg.d_model));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout, dropout_gen));
}

Tensor EncoderLayer::forward(const Tensor& x, const AttentionContext& ctx) const {
  if (pre_norm_) {
    const Tensor z = self_attn_norm->forward(x);
    Tensor h = x + dropout_->forward(self_attn->forward(z, z, ctx));
    return h + dropout_->forward(ffn->forward(ffn_norm->forward(h)));
  }
  Tensor h = self_attn_norm->forward(x + dropout_->forward(self_attn->forward(x, x, ctx)));
  return ffn_norm->forward(h + dropout_->forward(ffn->forward(h)));
}

DecoderLayer::DecoderLayer(const ModelConfig& cfg, Generator& init,
                           std::shared_ptr<Generator> dropout_gen)
    : Module("DecoderLayer"), pre_norm_(cfg.norm == "pre") {
  self_attn = register_module(
      "self_attn", std::make_shared<Attention>(cfg.d_model, cfg.heads, cfg.kv_heads, cfg.dropout,
                                               init, dropout_gen, cfg.attention.infini(false)));
  self_attn_norm = register_module("self_attn_norm", std::make_shared<LayerNorm>(cfg.d_model));
  if (cfg.is_seq2seq()) {
    cross_attn = register_module(
        "cross_attn", std::make_shared<Attention>(cfg.d_model, cfg.heads, cfg.kv_heads, cfg.dropout,
                                                  init, dropout_gen));
    cross_attn_norm = register_module("cross_attn_norm", std::make_shared<LayerNorm>(cfg.d_model));
  }
  ffn = register_module("ffn", std::make_shared<FeedForward>(cfg.d_model, cfg.ffn, cfg.activation,
                                                             cfg.dropout, init, dropout_gen));
  ffn_norm = register_module("ffn_norm", std::make_shared<LayerNorm>(cfg.d_model));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout, dropout_gen));
}

template <class F>
Tensor DecoderLayer::block(const Tensor& x, const LayerNorm& norm, F&& f) const {
  if (pre_norm_) return x + dropout_->forward(f(norm.forward(x)));
  return norm.forward(x + dropout_->forward(f(x)));
}

Tensor DecoderLayer::forward(const Tensor& x, const Tensor& memory,
                             const AttentionContext& self_ctx, const AttentionContext& cross_ctx,
                             LayerCache* cache) const {
  Tensor h = block(x, *self_attn_norm, [&](const Tensor& z) {
    return self_attn->forward(z, z, self_ctx, cache ? &cache->self : nullptr);
  });
  if (cross_attn) {
    h = block(h, *cross_attn_norm, [&](const Tensor& z) {
      return cross_attn->forward(z, memory, cross_ctx, cache ? &cache->cross : nullptr,
                                 /*static_kv=*/true);
    });
  }
  return block(h, *ffn_norm, [&](const Tensor& z) { return ffn->forward(z); });
}

// ---- stacks -------------------------------------------------------------------------------

Encoder::Encoder(const ModelConfig& cfg, Generator& init, std::shared_ptr<Generator> dropout_gen)
    : Module("Encoder") {
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < cfg.encoder_layers; ++i)
    layers->push_back(std::make_shared<EncoderLayer>(cfg, init, dropout_gen));
  if (cfg.norm == "pre") norm = register_module("norm", std::make_shared<LayerNorm>(cfg.d_model));
}

Tensor Encoder::forward(const Tensor& x, const AttentionContext& ctx) const {
  Tensor h = x;
  for (size_t i = 0; i < layers->size(); ++i) h = layers->at<EncoderLayer>(i)->forward(h, ctx);
  return norm ? norm->forward(h) : h;
}

Decoder::Decoder(const ModelConfig& cfg, Generator& init, std::shared_ptr<Generator> dropout_gen)
    : Module("Decoder") {
  if (cfg.is_seq2seq() && !cfg.tie_embeddings)
    embed = register_module("embed", std::make_shared<Embedding>(cfg.vocab, cfg.d_model, init));
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < cfg.decoder_layers; ++i)
    layers->push_back(std::make_shared<DecoderLayer>(cfg, init, dropout_gen));
  if (cfg.norm == "pre") norm = register_module("norm", std::make_shared<LayerNorm>(cfg.d_model));
}

Tensor Decoder::forward(const Tensor& x, const Tensor& memory, const AttentionContext& self_ctx,
                        const AttentionContext& cross_ctx, std::vector<LayerCache>* caches) const {
  Tensor h = x;
  for (size_t i = 0; i < layers->size(); ++i)
    h = layers->at<DecoderLayer>(i)->forward(h, memory, self_ctx, cross_ctx,
                                             caches ? &(*caches)[i] : nullptr);
  return norm ? norm->forward(h) : h;
}

// ---- model -------------------------------------------------------------------------------

Transformer::Transformer(const ModelConfig& cfg, uint64_t init_seed, uint64_t dropout_seed)
    : Module("Transformer"), cfg_(cfg), dropout_gen_(std::make_shared<Generator>(dropout_seed)) {
  cfg_.validate();
  Generator init(init_seed);
  embed = register_module("embed", std::make_shared<Embedding>(cfg.vocab, cfg.d_model, init));
  if (cfg.is_seq2seq())
    encoder = register_module("encoder", std::make_shared<Encoder>(cfg, init, dropout_gen_));
  decoder = register_module("decoder", std::make_shared<Decoder>(cfg, init, dropout_gen_));
  if (!cfg.tie_embeddings)
    output =
        register_module("output", std::make_shared<Linear>(cfg.d_model, cfg.vocab, init, false));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout, dropout_gen_));
  if (cfg.position == "alibi") alibi_slopes_ = alibi_slopes(cfg.heads);
}

Tensor Transformer::embed_tokens(const Embedding& table, const Tensor& ids, int64_t start) const {
  const int64_t T = ids.size(1), C = cfg_.d_model;
  Tensor x = table.forward(ids) * std::sqrt(double(C));  // (B, T, C)
  if (cfg_.position == "sinusoidal") {
    if (!sinusoidal_.defined() || sinusoidal_.size(0) < start + T ||
        sinusoidal_.dtype() != x.dtype() || sinusoidal_.device() != x.device())
      sinusoidal_ =
          sinusoidal_table(std::max(start + T, cfg_.max_len), C, x.dtype()).to(x.device());
    x = x + sinusoidal_.slice(0, start, start + T);
  }
  return dropout_->forward(x);
}

AttentionContext Transformer::self_context(int64_t q_start, int64_t T, const CachedKeys& keys,
                                           int64_t S, bool causal, bool encoder,
                                           const Tensor& key_mask) const {
  const AttentionPattern& pattern = cfg_.attention;
  AttentionContext ctx;
  ctx.key_mask = key_mask;
  ctx.causal = causal;
  if (pattern.windowed(encoder)) {
    ctx.window_left = pattern.window;
    ctx.window_right = causal ? 0 : pattern.window;
  }
  ctx.linear = pattern.linear(encoder);
  if (pattern.infini(encoder)) {
    ctx.segment = pattern.segment, ctx.delta_rule = pattern.delta_rule;
    ctx.q_start = q_start, ctx.k_start = keys.start;
  }
  const DType dtype = embed->weight.dtype();
  const Device device = embed->weight.device();  // tables are built on the host, then moved
  if (pattern.block_sparse(encoder)) {
    if (keys.start == 0 && q_start == 0) {  // queries and keys: the same positions
      ctx.block = pattern.block, ctx.global = pattern.global;
    } else {  // decoding after a cache: the pattern over the cached keys as a mask
      std::vector<double> seen(size_t(T * S));
      for (int64_t i = 0; i < T; ++i)
        for (int64_t c = 0; c < S; ++c)
          seen[size_t(i * S + c)] = block_sparse_visible(q_start + i, keys.position(c),
                                                         pattern.block, pattern.global, causal);
      const Tensor pattern_mask = ag::from_vector(seen, {1, 1, T, S}).to(dtype).to(device);
      ctx.key_mask = ag::gt(key_mask.to(dtype) * pattern_mask, ag::zeros({}, dtype, device));
    }
  }
  if (cfg_.position == "rope") {
    const int64_t tail = S - keys.prefix, end = keys.start + tail;
    const RopeFrequencies f = rope_frequencies(cfg_.rope, cfg_.head_dim(), end);
    std::tie(ctx.rope_cos_q, ctx.rope_sin_q) = rope_tables(f, q_start, T, dtype);
    std::tie(ctx.rope_cos_k, ctx.rope_sin_k) = rope_tables(f, keys.start, tail, dtype);
    if (keys.prefix > 0) {  // the leading keys kept before the tail
      const auto [cos_p, sin_p] = rope_tables(f, 0, keys.prefix, dtype);
      ctx.rope_cos_k = ag::concat({cos_p, ctx.rope_cos_k}, 0);
      ctx.rope_sin_k = ag::concat({sin_p, ctx.rope_sin_k}, 0);
    }
    for (Tensor* t : {&ctx.rope_cos_q, &ctx.rope_sin_q, &ctx.rope_cos_k, &ctx.rope_sin_k})
      *t = t->to(device);
  } else if (cfg_.position == "alibi") {
    ctx.bias = alibi_bias(alibi_slopes_, T, S, causal, dtype).to(device);
  }
  return ctx;
}

Tensor Transformer::encode(const Tensor& src_ids, Tensor* src_mask) const {
  const Tensor src = src_ids.to(device());  // ids made on the host follow the weights
  const int64_t B = src.size(0), S = src.size(1);
  *src_mask = ag::ne(src, ag::full({}, double(kPad), src.dtype(), src.device())).view({B, 1, 1, S});
  const Tensor x = embed_tokens(*embed, src, 0);
  return encoder->forward(
      x, self_context(0, S, CachedKeys{}, S, /*causal=*/false, /*encoder=*/true, *src_mask));
}

Tensor Transformer::logits(const Tensor& h) const {
  return output ? output->forward(h) : ag::linear(h, embed->weight);
}

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt_in) const {
  LOOM_CHECK(cfg_.is_seq2seq(), "Transformer::forward: arch = \"", cfg_.arch,
             "\" has no encoder; use forward_lm(tokens)");
  LOOM_CHECK(src.dim() == 2 && tgt_in.dim() == 2 && src.size(0) == tgt_in.size(0),
             "Transformer::forward: src ", src.sizes(), ", tgt_in ", tgt_in.sizes(),
             ": expected (B, S) and (B, T) token ids with the same B");
  DecoderState state = start_decoding(src);
  return decode_step(state, tgt_in);
}

Tensor Transformer::forward_lm(const Tensor& tokens) const {
  LOOM_CHECK(!cfg_.is_seq2seq(),
             "Transformer::forward_lm: arch = \"seq2seq\" needs a source; "
             "use forward(src, tgt_in)");
  DecoderState state = start_decoding(Tensor());
  return decode_step(state, tokens);
}

DecoderState Transformer::start_decoding(const Tensor& src) const {
  DecoderState state;
  if (cfg_.is_seq2seq()) {
    LOOM_CHECK(src.defined(), "start_decoding: a seq2seq model needs the source ids");
    state.memory = encode(src, &state.src_mask);
  }
  state.layers.resize(size_t(cfg_.decoder_layers));
  return state;
}

void DecoderState::select(const Tensor& rows) {
  auto pick = [&](Tensor& t) {
    if (t.defined()) t = ag::index_select(t, 0, rows.to(t.device()));
  };
  pick(memory);
  pick(src_mask);
  pick(tgt_mask);
  for (LayerCache& layer : layers)
    for (KVCache* c : {&layer.self, &layer.cross})
      pick(c->k), pick(c->v), pick(c->linear.kv), pick(c->linear.z), pick(c->memory.M),
          pick(c->memory.z);
}

namespace {
// The keys a decoder query at position `next` or later can still see: all (full
// attention), the last `window` (sliding window), none (linear attention: its sums),
// the current segment (Infini-attention: earlier ones are in the memory), the global ones
// and the previous and current blocks (block-sparse).
CachedKeys keys_to_keep(const AttentionPattern& a, int64_t next) {
  CachedKeys keys;
  if (a.windowed(false)) keys.start = std::max<int64_t>(0, next - a.window);
  if (a.linear(false)) keys.start = next;
  if (a.infini(false)) keys.start = next / a.segment * a.segment;
  if (a.block_sparse(false)) {
    keys.start = std::max<int64_t>(0, (next / a.block - 1) * a.block);
    keys.prefix = std::min(a.global, keys.start);        // global keys before the tail
    if (keys.prefix == keys.start) keys = CachedKeys{};  // nothing between them dropped
  }
  return keys;
}
}  // namespace

Tensor Transformer::decode_step(DecoderState& state, const Tensor& token_ids) const {
  LOOM_CHECK(token_ids.dim() == 2, "decode_step: tokens ", token_ids.sizes(),
             ": expected (B, T) ids");
  const Tensor tokens = token_ids.to(device());
  const int64_t T = tokens.size(1), L = state.length;
  const Embedding& table = decoder->embed ? *decoder->embed : *embed;
  const Tensor y = embed_tokens(table, tokens, L);
  AttentionContext cross;
  cross.key_mask = state.src_mask;
  // Pad targets are masked as keys too (queries at pads only produce ignored logits).
  const Tensor not_pad =
      ag::ne(tokens, ag::full({}, double(kPad), tokens.dtype(), tokens.device()));
  state.tgt_mask = L == 0 ? not_pad : ag::concat({state.tgt_mask, not_pad}, 1);
  const CachedKeys keys = state.cached;
  const int64_t K = keys.count(L + T);  // self-attention keys: cached + new
  const Tensor key_mask = state.tgt_mask.view({tokens.size(0), 1, 1, K});
  const Tensor h = decoder->forward(
      y, state.memory, self_context(L, T, keys, K, /*causal=*/true, /*encoder=*/false, key_mask),
      cross, &state.layers);
  state.length = L + T;
  // Bounded decoding state: drop the keys no later query sees, with their tgt_mask columns.
  const CachedKeys next = keys_to_keep(cfg_.attention, state.length);
  if (next.prefix != keys.prefix || next.start != keys.start) {
    LOOM_CHECK(
        (next.prefix <= keys.prefix || keys.start == keys.prefix) && next.start >= keys.start,
        "decode_step: internal: keys to keep that are no longer cached");
    // Index ranges in the cached keys: [0, prefix) and [index(start), K).
    const int64_t from = keys.index(next.start);
    auto keep = [&](const Tensor& t, int dim) {
      if (next.prefix == 0) return t.slice(dim, from, K);
      return ag::concat({t.slice(dim, 0, next.prefix), t.slice(dim, from, K)}, dim);
    };
    for (LayerCache& layer : state.layers)
      for (Tensor* t : {&layer.self.k, &layer.self.v})
        if (t->defined()) *t = keep(*t, 2);
    state.tgt_mask = keep(state.tgt_mask, 1);
    state.cached = next;
  }
  return logits(h);
}

}  // namespace loom::nn
