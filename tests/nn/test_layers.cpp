// Modules: finite-difference gradient checks (float64) of every layer and of a whole tiny
// Transformer for each position type, MQA/GQA = MHA with repeated K/V heads, and
// incremental decoding (KV cache) = the full forward pass.
#include <doctest/doctest.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "common/decoding_check.h"
#include "nn/transformer.h"

namespace loom::test {
namespace {

using ag::Tensor;
using kernels::DType;

// Gradient check of f over the module's parameters (moved to float64) and extra inputs.
void check_module_grads(nn::Module& m, std::vector<Tensor> extra,
                        const std::function<Tensor()>& f) {
  m.to(DType::F64);
  std::vector<Tensor> inputs = extra;
  for (const auto& p : m.named_parameters()) inputs.push_back(p.tensor);
  const ag::GradcheckResult r =
      ag::gradcheck([&](const std::vector<Tensor>&) { return f(); }, inputs);
  INFO(r.message);
  CHECK(r.ok);
}

Tensor rand64(kernels::Dims shape, uint64_t seed) {
  kernels::Generator g(seed);
  return (ag::rand(shape, g, DType::F64) * 2.0 - 1.0).detach().set_requires_grad();
}

nn::ModelConfig tiny(const std::string& position, int64_t heads = 2, int64_t kv_heads = 2) {
  nn::ModelConfig c;
  c.vocab = 11, c.d_model = 8, c.heads = heads, c.kv_heads = kv_heads, c.ffn = 12;
  c.encoder_layers = 1, c.decoder_layers = 1, c.dropout = 0.0, c.position = position;
  c.rope.original_max_len = 3;
  return c;
}

TEST_CASE("Linear, LayerNorm and FeedForward: gradients") {
  kernels::Generator init(1);
  auto gen = std::make_shared<kernels::Generator>(2);
  nn::Linear lin(5, 3, init);
  const Tensor x = rand64({2, 4, 5}, 3);
  check_module_grads(lin, {x}, [&] { return lin.forward(x); });
  nn::LayerNorm ln(5);
  check_module_grads(ln, {x}, [&] { return ln.forward(x) * ln.forward(x); });
  for (const char* act : {"relu", "gelu"}) {
    nn::FeedForward ffn(5, 7, act, 0.0, init, gen);
    check_module_grads(ffn, {x}, [&] { return ffn.forward(x); });
  }
}

TEST_CASE("Attention: gradients with each mask, GQA/MQA, RoPE and ALiBi") {
  kernels::Generator init(4);
  auto gen = std::make_shared<kernels::Generator>(5);
  const Tensor x = rand64({2, 3, 8}, 6), mem = rand64({2, 4, 8}, 7);
  const Tensor pad = ag::from_vector<int64_t>({1, 1, 1, 0, 1, 1, 0, 0}, {2, 4});
  const Tensor key_mask = ag::ne(pad, ag::full({}, 0, DType::I64)).view({2, 1, 1, 4});
  for (int64_t kv : {4, 2, 1}) {
    INFO("kv_heads ", kv);
    nn::Attention attn(8, 4, kv, 0.0, init, gen);
    nn::AttentionContext self_causal;
    self_causal.causal = true;
    check_module_grads(attn, {x}, [&] { return attn.forward(x, x, self_causal); });
    nn::AttentionContext cross;
    cross.key_mask = key_mask;
    check_module_grads(attn, {x, mem}, [&] { return attn.forward(x, mem, cross); });
    nn::AttentionContext rope;
    nn::RopeConfig rc;
    const auto f = nn::rope_frequencies(rc, 2, 3);
    std::tie(rope.rope_cos_q, rope.rope_sin_q) = nn::rope_tables(f, 0, 3, DType::F64);
    std::tie(rope.rope_cos_k, rope.rope_sin_k) = nn::rope_tables(f, 0, 3, DType::F64);
    check_module_grads(attn, {x}, [&] { return attn.forward(x, x, rope); });
    nn::AttentionContext alibi;
    alibi.bias = nn::alibi_bias(nn::alibi_slopes(4), 3, 3, false, DType::F64);
    check_module_grads(attn, {x}, [&] { return attn.forward(x, x, alibi); });
  }
}

TEST_CASE("MQA and GQA equal MHA with the K/V heads repeated") {
  kernels::Generator init(8);
  auto gen = std::make_shared<kernels::Generator>(9);
  const Tensor x = rand64({2, 5, 8}, 10).detach().to(DType::F32);
  for (int64_t kv : {1, 2}) {
    nn::Attention grouped(8, 4, kv, 0.0, init, gen), full(8, 4, 4, 0.0, init, gen);
    ag::NoGrad no_grad;
    // Copy q/o; build k/v of MHA by repeating each KV head's rows heads/kv times.
    full.q_proj->weight.copy_(grouped.q_proj->weight);
    full.q_proj->bias.copy_(grouped.q_proj->bias);
    full.o_proj->weight.copy_(grouped.o_proj->weight);
    full.o_proj->bias.copy_(grouped.o_proj->bias);
    const int64_t D = 2, rep = 4 / kv;
    for (auto [src, dst] :
         {std::pair{grouped.k_proj, full.k_proj}, std::pair{grouped.v_proj, full.v_proj}}) {
      for (int64_t h = 0; h < 4; ++h) {
        dst->weight.slice(0, h * D, (h + 1) * D)
            .copy_(src->weight.slice(0, (h / rep) * D, (h / rep + 1) * D));
        dst->bias.slice(0, h * D, (h + 1) * D)
            .copy_(src->bias.slice(0, (h / rep) * D, (h / rep + 1) * D));
      }
    }
    nn::AttentionContext ctx;
    ctx.causal = true;
    const auto a = grouped.forward(x, x, ctx).to_vector<float>();
    const auto b = full.forward(x, x, ctx).to_vector<float>();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-5));
  }
}

TEST_CASE("whole tiny Transformer: gradients for each position type") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 3, 0, 0}, {2, 4});
  const Tensor tgt_in = ag::from_vector<int64_t>({2, 8, 9, 2, 10, 0}, {2, 3});
  const Tensor tgt_out = ag::from_vector<int64_t>({8, 9, 3, 10, 3, 0}, {2, 3});
  for (const char* pos : {"sinusoidal", "rope", "alibi", "none"}) {
    INFO("position ", std::string(pos));
    nn::ModelConfig cfg = tiny(pos);
    cfg.label_smoothing = 0.1;
    nn::Transformer model(cfg, 3);
    check_module_grads(
        model, {}, [&] { return ag::cross_entropy(model.forward(src, tgt_in), tgt_out, 0, 0.1); });
  }
  nn::ModelConfig lm = tiny("rope", 2, 1);
  lm.arch = "decoder";
  lm.encoder_layers = 0;
  lm.tie_embeddings = false;
  nn::Transformer model(lm, 4);
  check_module_grads(model, {},
                     [&] { return ag::cross_entropy(model.forward_lm(tgt_in), tgt_out, 0, 0.0); });
}

TEST_CASE(
    "whole tiny Transformer: gradients with windowed, linear, block-sparse, Infini "
    "self-attention") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 3, 0, 0}, {2, 4});
  const Tensor tgt_in = ag::from_vector<int64_t>({2, 8, 9, 2, 10, 0}, {2, 3});
  const Tensor tgt_out = ag::from_vector<int64_t>({8, 9, 3, 10, 3, 0}, {2, 3});
  for (const char* kind : {"sliding_window", "linear", "block_sparse", "infini"}) {
    INFO("attention ", std::string(kind));
    nn::ModelConfig cfg = tiny("rope", 2, 1);
    cfg.attention.kind = kind, cfg.attention.window = 1;
    cfg.attention.block = 1, cfg.attention.global = 1, cfg.attention.segment = 2;
    nn::Transformer model(cfg, 3);
    check_module_grads(
        model, {}, [&] { return ag::cross_entropy(model.forward(src, tgt_in), tgt_out, 0, 0.1); });
  }
}

TEST_CASE("incremental decoding with the KV cache equals the full forward pass") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 3, 0, 0}, {2, 4});
  const Tensor tgt = ag::from_vector<int64_t>({2, 8, 9, 4, 6, 2, 10, 5, 5, 7}, {2, 5});
  for (const char* pos : {"sinusoidal", "rope", "alibi", "none", "dynamic", "yarn"}) {
    INFO("position ", std::string(pos));
    const bool scaled = std::string(pos) == "dynamic" || std::string(pos) == "yarn";
    nn::ModelConfig cfg = tiny(scaled ? "rope" : pos, 2, 1);    // head_dim 4
    if (scaled) cfg.rope.scaling = pos, cfg.rope.factor = 2.0;  // original_max_len 3 < 5
    nn::Transformer model(cfg, 5);
    model.eval();
    ag::NoGrad no_grad;
    nn::DecoderState state = model.start_decoding(src);
    // Against a full recomputation on the prefix of length t + 1 (for Dynamic NTK the
    // base depends on that length, specs/positions.md).
    for (int64_t t = 0; t < 5; ++t) check_decode_step(model, state, src, tgt, t);
  }
}

}  // namespace
}  // namespace loom::test
