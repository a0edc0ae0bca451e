// The encoder-decoder Transformer of DESIGN.md ("Model specification") and its
// decoder-only variant (arch = "decoder"). Layer names, layouts, pre/post-LN, positions,
// init and tied embeddings follow DESIGN.md exactly, so state_dict keys are the
// checkpoint's /model/<name> datasets and a PyTorch re-implementation loads them as is.
//
//   pre-LN:  x = x + drop(attn(ln(x)));   x = x + drop(ffn(ln(x)))   (+ final norm)
//   post-LN: x = ln(x + drop(attn(x)));   x = ln(x + drop(ffn(x)))
#pragma once

#include <memory>
#include <vector>

#include "nn/attention.h"
#include "nn/config.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/ffn.h"
#include "nn/layer_norm.h"

namespace loom::nn {

// Special token ids (DESIGN.md "Vocabulary").
constexpr int64_t kPad = 0, kUnk = 1, kBos = 2, kEos = 3;

class EncoderLayer : public Module {
 public:
  EncoderLayer(const ModelConfig& cfg, Generator& init, std::shared_ptr<Generator> dropout_gen);
  Tensor forward(const Tensor& x, const AttentionContext& ctx) const;  // x: (B, S, C)

  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<LayerNorm> self_attn_norm;
  std::shared_ptr<FeedForward> ffn;
  std::shared_ptr<LayerNorm> ffn_norm;

 private:
  bool pre_norm_;
  std::shared_ptr<Dropout> dropout_;
};

// Per-layer decoding state: self-attention keys/values so far, cross-attention ones once.
struct LayerCache {
  KVCache self, cross;
};

class DecoderLayer : public Module {
 public:
  DecoderLayer(const ModelConfig& cfg, Generator& init, std::shared_ptr<Generator> dropout_gen);
  // x: (B, T, C); memory: (B, S, C) or undefined for a language model.
  Tensor forward(const Tensor& x, const Tensor& memory, const AttentionContext& self_ctx,
                 const AttentionContext& cross_ctx, LayerCache* cache = nullptr) const;

  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<LayerNorm> self_attn_norm;
  std::shared_ptr<Attention> cross_attn;       // seq2seq only
  std::shared_ptr<LayerNorm> cross_attn_norm;  // seq2seq only
  std::shared_ptr<FeedForward> ffn;
  std::shared_ptr<LayerNorm> ffn_norm;

 private:
  // residual block: pre-LN x + drop(f(ln(x))), post-LN ln(x + drop(f(x)))
  template <class F>
  Tensor block(const Tensor& x, const LayerNorm& norm, F&& f) const;
  bool pre_norm_;
  std::shared_ptr<Dropout> dropout_;
};

class Encoder : public Module {
 public:
  Encoder(const ModelConfig& cfg, Generator& init, std::shared_ptr<Generator> dropout_gen);
  Tensor forward(const Tensor& x, const AttentionContext& ctx) const;

  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;  // pre-LN only
};

class Decoder : public Module {
 public:
  Decoder(const ModelConfig& cfg, Generator& init, std::shared_ptr<Generator> dropout_gen);
  Tensor forward(const Tensor& x, const Tensor& memory, const AttentionContext& self_ctx,
                 const AttentionContext& cross_ctx, std::vector<LayerCache>* caches) const;

  std::shared_ptr<Embedding> embed;  // untied seq2seq only (decoder.embed.weight)
  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;  // pre-LN only
};

// Which target positions a decoding state's self-attention cache holds: the first
// `prefix` ones (block-sparse's global keys), then every one from `start` on.
struct CachedKeys {
  int64_t prefix = 0, start = 0;  // prefix <= start
  int64_t count(int64_t length) const { return prefix + length - start; }
  int64_t position(int64_t index) const { return index < prefix ? index : start + index - prefix; }
  int64_t index(int64_t pos) const { return pos < prefix ? pos : prefix + pos - start; }
};

// Incremental decoding state (greedy or beam search): the encoder output and per-layer
// caches; `length` target tokens have been fed so far.
struct DecoderState {
  Tensor memory;    // (B, S, C); undefined for a language model
  Tensor src_mask;  // (B, 1, 1, S) bool
  Tensor tgt_mask;  // (B, length) bool: target tokens fed so far that are not pad
  std::vector<LayerCache> layers;
  int64_t length = 0;
  // The self-attention keys (and tgt_mask columns) still cached: all, or with a bounded
  // pattern (sliding window, block-sparse, linear, Infini) the ones later queries see.
  CachedKeys cached;

  // Keeps batch rows `rows` (1-D int64/int32, repeats allowed) of every tensor above, in
  // that order: row i of the new state is row rows[i] of the old (beam search reorders
  // and replicates hypotheses with it). Differentiable like ag::index_select.
  void select(const Tensor& rows);
};

class Transformer : public Module {
 public:
  // init seeds the parameters; the dropout stream is separate (dropout_generator()).
  Transformer(const ModelConfig& cfg, uint64_t init_seed, uint64_t dropout_seed = 0);

  // seq2seq: src (B, S) and tgt_in (B, T) ids -> logits (B, T, V).
  Tensor forward(const Tensor& src, const Tensor& tgt_in) const;
  // decoder-only: tokens (B, T) -> logits (B, T, V).
  Tensor forward_lm(const Tensor& tokens) const;

  // Incremental decoding: start from a source (seq2seq) or nothing (language model), then
  // feed (B, T) tokens and get their logits (B, T, V); equals forward() on the whole prefix.
  DecoderState start_decoding(const Tensor& src) const;
  Tensor decode_step(DecoderState& state, const Tensor& tokens) const;

  const ModelConfig& config() const { return cfg_; }
  // Where the weights are (Module::to moves them); token ids given on another device are
  // moved here by forward, forward_lm, start_decoding and decode_step.
  Device device() const { return embed->weight.device(); }
  Generator& dropout_generator() const { return *dropout_gen_; }

  std::shared_ptr<Embedding> embed;
  std::shared_ptr<Encoder> encoder;  // seq2seq only
  std::shared_ptr<Decoder> decoder;
  std::shared_ptr<Linear> output;  // untied only: "output.weight" [V, C], no bias

 private:
  // embed(ids) * sqrt(C) (+ sinusoidal rows for positions [start, start + T)), dropout
  Tensor embed_tokens(const Embedding& table, const Tensor& ids, int64_t start) const;
  // Self-attention of queries at positions [q_start, q_start + T) over S keys at the
  // positions `keys` names; `encoder` picks the side of model.attention.layers.
  AttentionContext self_context(int64_t q_start, int64_t T, const CachedKeys& keys, int64_t S,
                                bool causal, bool encoder, const Tensor& key_mask) const;
  Tensor encode(const Tensor& src, Tensor* src_mask) const;
  Tensor logits(const Tensor& h) const;

  ModelConfig cfg_;
  std::shared_ptr<Generator> dropout_gen_;
  std::shared_ptr<Dropout> dropout_;
  std::vector<double> alibi_slopes_;
  mutable Tensor sinusoidal_;  // (n, C) table, grown on demand
};

}  // namespace loom::nn
