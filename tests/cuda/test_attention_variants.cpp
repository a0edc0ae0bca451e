// The self-attention variants of issue 10 on the GPU against the CPU: block-sparse, linear
// and Infini-attention (composites of ops with CUDA kernels) forward and backward, the
// sliding window's refusal on CUDA, and a Transformer with each variant moved to the GPU
// (logits of a full pass and of incremental decoding).
#include "cuda/compare.h"
#include "kernels/error.h"
#include "nn/block_sparse_attention.h"
#include "nn/infini_attention.h"
#include "nn/linear_attention.h"
#include "nn/transformer.h"

namespace loom::test {
namespace {

constexpr double kTol = 2e-5;  // float32, relative to the tensor's scale

TEST_CASE("cuda: block-sparse, linear and Infini attention equal the CPU's") {
  const int64_t B = 2, H = 4, KV = 2, T = 37, D = 16;
  const Tensor key_mask =
      ag::gt(random({B, 1, 1, T}, 50, DType::F32, -0.2, 1, false), ag::zeros({}));
  for (const bool causal : {false, true}) {
    INFO("causal ", causal);
    compare_devices(
        [&](const Tensors& t) {
          return nn::block_sparse_attention(
              t[0], t[1], t[2],
              {.block = 8, .global = 3, .causal = causal, .key_mask = key_mask.to(t[0].device())});
        },
        {random({B, H, T, D}, 51), random({B, KV, T, D}, 52), random({B, KV, T, D}, 53)}, kTol);
    compare_devices(
        [&](const Tensors& t) {
          return nn::linear_attention(nn::elu_feature_map(t[0]), nn::elu_feature_map(t[1]), t[2],
                                      {.causal = causal, .chunk = 16});
        },
        {random({B, H, T, D}, 54), random({B, KV, T, D}, 55), random({B, KV, T, D}, 56)}, kTol);
    compare_devices(
        [&](const Tensors& t) {
          return nn::infini_attention(
              t[0], t[1], t[0], t[1], t[2], t[3],
              {.segment = 10, .causal = causal, .key_mask = key_mask.to(t[0].device())});
        },
        {random({B, H, T, D}, 57), random({B, KV, T, D}, 58), random({B, KV, T, D}, 59),
         random({H}, 60)},
        kTol);
  }
}

TEST_CASE("cuda: a sliding window is refused with the documented error") {
  const Tensor q = random({1, 2, 5, 8}, 61, DType::F32, -1, 1, false).to(gpu());
  ag::AttentionOptions o;
  o.window_left = 2;
  CHECK_THROWS_WITH_AS(ag::scaled_dot_product_attention(q, q, q, o),
                       doctest::Contains("a sliding window is implemented on the CPU only"), Error);
}

TEST_CASE("cuda: a Transformer with each variant gives the CPU's logits, full pass and decoding") {
  const Tensor src = ag::from_vector<int64_t>({4, 5, 6, 3, 7, 9, 8, 3, 7, 3, 0, 0, 0, 0}, {2, 7});
  const Tensor tgt =
      ag::from_vector<int64_t>({2, 8, 9, 4, 6, 5, 7, 10, 2, 10, 5, 5, 7, 4, 4, 9}, {2, 8});
  for (const char* kind : {"block_sparse", "linear", "infini"}) {
    INFO(kind);
    nn::ModelConfig cfg;
    cfg.vocab = 11, cfg.d_model = 16, cfg.heads = 2, cfg.kv_heads = 1, cfg.ffn = 24;
    cfg.encoder_layers = 1, cfg.decoder_layers = 2, cfg.dropout = 0, cfg.position = "rope";
    cfg.attention.kind = kind, cfg.attention.block = 2, cfg.attention.global = 1;
    cfg.attention.segment = 3;
    nn::Transformer cpu(cfg, 5), gpu_model(cfg, 5);
    gpu_model.to(gpu());
    ag::NoGrad no_grad;
    CHECK(rel_error(gpu_model.forward(src, tgt).to(Device::cpu()), cpu.forward(src, tgt)) <= kTol);
    nn::DecoderState a = cpu.start_decoding(src), b = gpu_model.start_decoding(src);
    for (int64_t t = 0; t < 8; ++t) {
      const Tensor token = tgt.slice(1, t, t + 1).contiguous();
      CHECK(rel_error(gpu_model.decode_step(b, token).to(Device::cpu()),
                      cpu.decode_step(a, token)) <= kTol);
    }
  }
}

}  // namespace
}  // namespace loom::test
