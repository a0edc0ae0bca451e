// [model.attention] kind = "sliding_window" and "linear": the Transformer with windowed or
// linear self-attention. Incremental decoding equals the full forward pass while the state
// stays bounded (the window's keys; linear attention's sums); a window longer than the
// sequence gives full attention's logits; the window hides what it should (a token beyond
// it changes nothing); config round trip and errors.
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

TEST_CASE("sliding window and linear: incremental decoding equals the full pass, bounded state") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 9, 8, 3, 7, 3, 0, 0, 0, 0}, {2, 7});
  const Tensor tgt =
      ag::from_vector<int64_t>({2, 8, 9, 4, 6, 5, 7, 10, 2, 10, 5, 5, 7, 4, 4, 9}, {2, 8});
  for (const char* kind : {"sliding_window", "linear"})
    for (const char* pos : {"sinusoidal", "rope", "alibi", "none", "dynamic"}) {
      const bool linear = std::string(kind) == "linear", dynamic = std::string(pos) == "dynamic";
      if (linear && std::string(pos) == "alibi") continue;  // refused by validate()
      // Linear attention folds each key into its sums with the rotation of its own step, so
      // Dynamic NTK (whose frequencies change with the length) cannot be recomputed: as HF's
      // rotated-key cache, it differs from a full pass past original_max_len (nn/config.h).
      if (linear && dynamic) continue;
      const std::string label = std::string(kind) + ", position " + pos;
      INFO(label);
      nn::ModelConfig cfg = windowed(dynamic ? "rope" : pos, 3);
      cfg.attention.kind = kind;
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
        // The window: the next query sees 3 keys before it, no more are kept. Linear: sums.
        const int64_t kept = linear ? 0 : std::min<int64_t>(t + 1, 3);
        CHECK(state.layers[0].self.length() == kept);
        CHECK(state.tgt_mask.size(1) == kept);
        CHECK(state.cache_start == t + 1 - kept);
        CHECK(state.layers[0].self.linear.empty() == !linear);
        if (linear) CHECK(state.layers[0].self.linear.kv.sizes() == kernels::Dims{2, 2, 4, 4});
      }
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
  CHECK(recipes::model_config_to_toml(nn::ModelConfig{}).find("[model.attention]") ==
        std::string::npos);  // full attention: the table is left out
  CHECK(recipes::parse_model_config("[model]\n", "x.toml").attention.kind == "full");
  CHECK_THROWS_WITH_AS(
      recipes::parse_model_config("[model]\n[model.attention]\nkind = \"sparse\"\n", "x.toml"),
      doctest::Contains(
          "model.attention.kind = \"sparse\": expected one of full, sliding_window, linear"),
      Error);
  CHECK_THROWS_WITH_AS(
      recipes::parse_model_config("[model]\n[model.attention]\nkind = \"sliding_window\"\n",
                                  "x.toml"),
      doctest::Contains("model.attention.window = 0: a sliding window needs window >= 1"), Error);
  CHECK_THROWS_WITH_AS(
      recipes::parse_model_config("[model]\n[model.attention]\nwindw = 3\n", "x.toml"),
      doctest::Contains("model.attention.windw"), Error);
  CHECK_THROWS_WITH_AS(
      recipes::parse_model_config(
          "[model]\nposition = \"alibi\"\n[model.attention]\nkind = \"linear\"\n", "x.toml"),
      doctest::Contains("linear attention has no scores to bias"), Error);
}

}  // namespace
}  // namespace loom::test
