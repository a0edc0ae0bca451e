// [model.attention] kind = "sliding_window", "linear", "block_sparse" and "infini": the
// Transformer with these self-attentions. Incremental decoding equals the full forward pass
// while the state stays bounded (the window's keys; linear attention's sums; the global
// keys and two blocks; Infini's memory and one segment); a window, block or global span
// longer than the sequence gives full attention's logits; the window hides what it should (a token
// beyond it changes nothing); config round trip and errors.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "common/decoding_check.h"
#include "common/op_spec.h"
#include "kernels/error.h"
#include "nn/transformer.h"
#include "recipes/model_config.h"

namespace loom::test {
namespace {

using ag::Tensor;

nn::ModelConfig windowed(const std::string& position, int64_t window,
                         const std::string& layers = "both") {
  nn::ModelConfig c;
  c.vocab = 11, c.d_model = 8, c.heads = 2, c.kv_heads = 1, c.ffn = 12;
  c.encoder_layers = 1, c.decoder_layers = 2, c.dropout = 0.0, c.position = position;
  c.rope.original_max_len = 4;
  c.attention.kind = "sliding_window", c.attention.window = window, c.attention.layers = layers;
  return c;
}

// The self-attention keys a decoding state holds once `fed` target tokens went in.
int64_t kept_keys(const std::string& kind, int64_t fed) {
  if (kind == "sliding_window") return std::min<int64_t>(fed, 3);  // window 3
  if (kind == "linear") return 0;                                  // the sums instead
  if (kind == "infini") return fed % 3;                            // segment 3: this segment
  // block_sparse, blocks of 2, 1 global: key 0 and the previous and current blocks
  const int64_t tail_from = std::max<int64_t>(0, (fed / 2 - 1) * 2);
  return tail_from <= 1 ? fed : 1 + fed - tail_from;
}

TEST_CASE("bounded patterns: incremental decoding equals the full pass, bounded state") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 9, 8, 3, 7, 3, 0, 0, 0, 0}, {2, 7});
  const Tensor tgt =
      ag::from_vector<int64_t>({2, 8, 9, 4, 6, 5, 7, 10, 2, 10, 5, 5, 7, 4, 4, 9}, {2, 8});
  for (const std::string kind : {"sliding_window", "linear", "block_sparse", "infini"})
    for (const std::string pos : {"sinusoidal", "rope", "alibi", "none", "dynamic"}) {
      const bool linear = kind == "linear", dynamic = pos == "dynamic";
      // refused by validate(): no scores to bias (linear), or a T x T bias (block-sparse)
      if ((linear || kind == "block_sparse") && pos == "alibi") continue;
      // Linear attention folds each key into its sums with the rotation of its own step, so
      // Dynamic NTK (whose frequencies change with the length) cannot be recomputed: as HF's
      // rotated-key cache, it differs from a full pass past original_max_len (nn/config.h).
      // Infini's memory reads unrotated keys, so it can.
      if (linear && dynamic) continue;
      INFO(kind, ", position ", pos);
      nn::ModelConfig cfg = windowed(dynamic ? "rope" : pos, 3);
      cfg.attention.kind = kind, cfg.attention.block = 2, cfg.attention.global = 1;
      cfg.attention.segment = 3;
      // Dynamic NTK: one layer, as in the KV-cache test of test_layers.cpp: a deeper layer's
      // cached keys come from hidden states computed with an earlier length's frequencies,
      // which a full recomputation at the new length does not reproduce.
      if (dynamic) cfg.rope.scaling = "dynamic", cfg.rope.factor = 2.0, cfg.decoder_layers = 1;
      nn::Transformer model(cfg, 5);
      model.eval();
      ag::NoGrad no_grad;
      nn::DecoderState state = model.start_decoding(src);
      for (int64_t t = 0; t < 8; ++t) {
        check_decode_step(model, state, src, tgt, t);
        const int64_t kept = kept_keys(kind, t + 1);
        CHECK(state.layers[0].self.length() == kept);
        CHECK(state.tgt_mask.size(1) == kept);
        CHECK(state.cached.count(t + 1) == kept);
        CHECK(state.layers[0].self.linear.empty() == !linear);
        if (linear) CHECK(state.layers[0].self.linear.kv.sizes() == kernels::Dims{2, 2, 4, 4});
        CHECK(state.layers[0].self.memory.empty() == (kind != "infini"));
        if (kind == "infini")  // per kv head (1), head dim 4
          CHECK(state.layers[0].self.memory.M.sizes() == kernels::Dims{2, 1, 4, 4});
      }
    }
}

TEST_CASE("block-sparse: a block or global span covering the sequence is full attention") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 9, 3, 0}, {2, 4});
  const Tensor tgt = ag::from_vector<int64_t>({2, 8, 9, 4, 6, 2, 10, 5, 5, 7}, {2, 5});
  nn::ModelConfig full_cfg = windowed("rope", 1), sparse_cfg = full_cfg;
  full_cfg.attention.kind = "full";
  sparse_cfg.attention.kind = "block_sparse";
  nn::Transformer full(full_cfg, 6);
  ag::NoGrad no_grad;
  const Tensor want = full.forward(src, tgt);
  for (const auto& [block, global, same] :
       std::vector<std::tuple<int64_t, int64_t, bool>>{{8, 0, true}, {1, 5, true}, {1, 0, false}}) {
    INFO("block ", block, ", global ", global);
    sparse_cfg.attention.block = block, sparse_cfg.attention.global = global;
    const double diff = max_abs_diff(nn::Transformer(sparse_cfg, 6).forward(src, tgt), want);
    if (same)
      CHECK(diff < 1e-5);
    else
      CHECK(diff > 1e-3);
  }
}

TEST_CASE("sliding window: a window longer than the sequence gives full attention's logits") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 9, 3, 0}, {2, 4});
  const Tensor tgt = ag::from_vector<int64_t>({2, 8, 9, 4, 6, 2, 10, 5, 5, 7}, {2, 5});
  for (const char* pos : {"rope", "alibi"}) {
    INFO("position ", std::string(pos));
    nn::ModelConfig full_cfg = windowed(pos, 1);
    full_cfg.attention.kind = "full";
    nn::Transformer full(full_cfg, 6), wide(windowed(pos, 8), 6), narrow(windowed(pos, 1), 6);
    ag::NoGrad no_grad;
    const Tensor want = full.forward(src, tgt);
    CHECK(max_abs_diff(wide.forward(src, tgt), want) < 1e-5);
    CHECK(max_abs_diff(narrow.forward(src, tgt), want) > 1e-3);  // the window matters
  }
}

TEST_CASE("sliding window: a token outside every window changes nothing downstream of it") {
  // Language model, 2 layers, window 1: position t sees t - 1 and t, so through two layers
  // it depends on t - 2 .. t only. Changing token 0 leaves positions 3.. untouched.
  nn::ModelConfig cfg = windowed("rope", 1);
  cfg.arch = "decoder", cfg.encoder_layers = 0;
  nn::Transformer model(cfg, 7);
  ag::NoGrad no_grad;
  const Tensor a = ag::from_vector<int64_t>({2, 8, 9, 4, 6, 5, 7}, {1, 7});
  const Tensor b = ag::from_vector<int64_t>({2, 10, 9, 4, 6, 5, 7}, {1, 7});
  const Tensor la = model.forward_lm(a), lb = model.forward_lm(b);
  CHECK(max_abs_diff(la.slice(1, 4, 7), lb.slice(1, 4, 7)) == 0);
  CHECK(max_abs_diff(la.slice(1, 1, 4), lb.slice(1, 1, 4)) > 1e-4);
}

TEST_CASE("sliding window: the encoder or the decoder alone, by attention.layers") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 9, 8, 3}, {1, 8});
  const Tensor tgt = ag::from_vector<int64_t>({2, 8, 9, 4, 6}, {1, 5});
  nn::ModelConfig full_cfg = windowed("rope", 1);
  full_cfg.attention.kind = "full";
  nn::Transformer full(full_cfg, 8), enc(windowed("rope", 1, "encoder"), 8),
      dec(windowed("rope", 1, "decoder"), 8);
  ag::NoGrad no_grad;
  const Tensor want = full.forward(src, tgt);
  // The target's first position sees only itself in the decoder: a decoder-only window
  // leaves its logits alone, an encoder window changes them (through cross-attention).
  CHECK(max_abs_diff(dec.forward(src, tgt).slice(1, 0, 1), want.slice(1, 0, 1)) < 1e-6);
  CHECK(max_abs_diff(enc.forward(src, tgt).slice(1, 0, 1), want.slice(1, 0, 1)) > 1e-4);
}

TEST_CASE("[model.attention]: TOML round trip, defaults and errors") {
  const nn::ModelConfig cfg = windowed("rope", 64, "decoder");
  const nn::ModelConfig back =
      recipes::parse_model_config(recipes::model_config_to_toml(cfg), "round trip");
  CHECK(back.attention.kind == "sliding_window");
  CHECK(back.attention.window == 64);
  CHECK(back.attention.layers == "decoder");
  for (const std::string kind : {"block_sparse", "infini"}) {
    nn::ModelConfig c = windowed("rope", 0, "encoder");
    c.attention.kind = kind, c.attention.block = 32, c.attention.global = 2;
    c.attention.segment = 128, c.attention.delta_rule = false;
    const nn::ModelConfig r =
        recipes::parse_model_config(recipes::model_config_to_toml(c), "round trip");
    CHECK(r.attention.kind == kind);
    CHECK(r.attention.block == 32);
    CHECK(r.attention.global == 2);
    CHECK(r.attention.segment == 128);
    CHECK(!r.attention.delta_rule);
    CHECK(r.attention.layers == "encoder");
  }
  CHECK(recipes::model_config_to_toml(nn::ModelConfig{}).find("[model.attention]") ==
        std::string::npos);  // full attention: the table is left out
  CHECK(recipes::parse_model_config("[model]\n", "x.toml").attention.kind == "full");
  struct BadTable {
    const char* position;  // [model] position
    const char* table;     // [model.attention] body
    const char* message;
  };
  const BadTable errors[] = {
      {"rope", "kind = \"sparse\"",
       "model.attention.kind = \"sparse\": expected one of full, sliding_window, block_sparse, "
       "linear, infini"},
      {"rope", "kind = \"sliding_window\"",
       "model.attention.window = 0: a sliding window needs window >= 1"},
      {"rope", "windw = 3", "model.attention.windw"},
      {"rope", "kind = \"block_sparse\"",
       "model.attention.block = 0: block_sparse needs block >= 1"},
      {"rope", "kind = \"infini\"", "model.attention.segment = 0: infini needs segment >= 1"},
      {"alibi", "kind = \"linear\"", "linear attention has no scores to bias"},
      {"alibi", "kind = \"block_sparse\"\nblock = 4",
       "model.attention.kind = \"block_sparse\" with position = \"alibi\": not implemented"},
  };
  for (const BadTable& e : errors) {
    const std::string toml = std::string("[model]\nposition = \"") + e.position +
                             "\"\n[model.attention]\n" + e.table + "\n";
    INFO(toml);
    CHECK_THROWS_WITH_AS(recipes::parse_model_config(toml, "x.toml"), doctest::Contains(e.message),
                         Error);
  }
}

}  // namespace
}  // namespace loom::test
