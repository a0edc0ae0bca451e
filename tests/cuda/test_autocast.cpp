// Mixed precision (autograd/autocast.h) on the GPU: linear under Autocast(BF16) computes
// exactly float32 products of bfloat16-rounded operands (the products of two bfloat16
// values are exact in float32, so only the summation order differs from the CPU's
// float32 reference on rounded inputs); scopes nest and leave cpu tensors alone; a whole
// Transformer under bf16 stays close to float32 and trains.
#include "autograd/autocast.h"
#include "common/temp_dir.h"
#include "cuda/compare.h"
#include "nn/loss.h"
#include "nn/transformer.h"
#include "optim/adamw.h"

namespace loom::test {
namespace {

// t rounded to bfloat16 (on the GPU: the CPU has no bfloat16 kernels), as float32 on the cpu.
Tensor rounded(const Tensor& t) {
  return t.to(gpu()).to(DType::BF16).to(DType::F32).to(Device::cpu());
}

TEST_CASE("cuda: linear under Autocast(BF16) = float32 products of bfloat16-rounded operands") {
  for (bool strided : {false, true}) {
    CAPTURE(strided);
    // x [4, 37, 96] (or a transposed view of [4, 96, 37]), W [80, 96], b [80].
    const Tensor x_cpu = strided ? random({4, 96, 37}, 1, DType::F32, -2, 2, false).transpose(1, 2)
                                 : random({4, 37, 96}, 1, DType::F32, -2, 2, false);
    const Tensor w_cpu = random({80, 96}, 2, DType::F32, -1, 1, false);
    const Tensor b_cpu = random({80}, 3, DType::F32, -1, 1, false);
    const Tensor g_cpu = random({4, 37, 80}, 4, DType::F32, -1, 1, false);  // upstream gradient

    Tensor x = same_layout_on(x_cpu, gpu()).set_requires_grad();
    Tensor w = w_cpu.to(gpu()).detach().set_requires_grad();
    Tensor b = b_cpu.to(gpu()).detach().set_requires_grad();
    Tensor y;
    {
      const ag::Autocast autocast(DType::BF16);
      y = ag::linear(x, w, b);
    }
    CHECK(y.dtype() == DType::F32);
    ag::sum(y * g_cpu.to(gpu())).backward();

    // The reference: the CPU's float32 ops on the rounded operands.
    const Tensor xr = rounded(x_cpu), wr = rounded(w_cpu), gr = rounded(g_cpu);
    const Tensor y_ref = ag::linear(xr, wr, b_cpu);
    const Tensor gx_ref = ag::matmul(gr, wr);                                        // [4, 37, 96]
    const Tensor gw_ref = ag::matmul(gr.reshape({148, 80}).transpose(0, 1), xr.reshape({148, 96}));
    const Tensor gb_ref = ag::sum(g_cpu, {0, 1});
    CHECK(rel_error(y, y_ref) < 1e-5);
    CHECK(rel_error(x.grad(), gx_ref) < 1e-5);
    CHECK(rel_error(w.grad(), gw_ref) < 1e-5);
    CHECK(rel_error(b.grad(), gb_ref) < 1e-5);
    CHECK(x.grad().dtype() == DType::F32);
    CHECK(w.grad().dtype() == DType::F32);
    // And it is not the float32 product: bfloat16 rounding is visible (~1e-3).
    ag::NoGrad no_grad;
    CHECK(rel_error(y, ag::linear(x_cpu, w_cpu, b_cpu)) > 1e-4);
  }
}

TEST_CASE("cuda: Autocast scopes nest and restore; cpu tensors are not affected") {
  CHECK(ag::autocast_dtype() == DType::F32);
  const Tensor x = random({5, 16}, 5, DType::F32, -1, 1, false);
  const Tensor w = random({8, 16}, 6, DType::F32, -1, 1, false);
  const Tensor plain = ag::linear(x, w);
  const Tensor xg = x.to(gpu()), wg = w.to(gpu());
  const Tensor gpu_plain = ag::linear(xg, wg);
  {
    const ag::Autocast on(DType::BF16);
    CHECK(ag::autocast_dtype() == DType::BF16);
    CHECK(bitwise_equal(ag::linear(x, w), plain));  // cpu: float32 as before
    CHECK(!bitwise_equal(ag::linear(xg, wg), gpu_plain));
    {
      const ag::Autocast off(DType::F32);
      CHECK(ag::autocast_dtype() == DType::F32);
      CHECK(bitwise_equal(ag::linear(xg, wg), gpu_plain));
    }
    CHECK(ag::autocast_dtype() == DType::BF16);
    CHECK(!bitwise_equal(ag::linear(xg, wg), gpu_plain));
  }
  CHECK(ag::autocast_dtype() == DType::F32);
  CHECK(error_of([] { ag::Autocast bad(DType::F64); }) ==
        "Autocast: float64: expected bfloat16 (mixed precision) or float32 (off)");
}

TEST_CASE("cuda: a Transformer under bf16 autocast stays within 2% of float32 and trains") {
  nn::ModelConfig cfg;
  cfg.vocab = 64, cfg.d_model = 64, cfg.heads = 4, cfg.kv_heads = 2, cfg.ffn = 128;
  cfg.encoder_layers = 2, cfg.decoder_layers = 2, cfg.dropout = 0, cfg.position = "rope";
  nn::Transformer model(cfg, 7);
  model.to(gpu());
  std::vector<int64_t> ids;  // token ids 3..62 from a fixed LCG: no pads
  uint64_t state = 8;
  for (int i = 0; i < 8 * 12 + 8 * 11; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    ids.push_back(3 + int64_t((state >> 33) % 60));
  }
  const Tensor src =
      ag::from_vector<int64_t>(std::vector<int64_t>(ids.begin(), ids.begin() + 96), {8, 12}).to(gpu());
  const Tensor tgt =
      ag::from_vector<int64_t>(std::vector<int64_t>(ids.begin() + 96, ids.end()), {8, 11}).to(gpu());
  const Tensor tgt_in = tgt.slice(1, 0, 10).contiguous(), tgt_out = tgt.slice(1, 1, 11).contiguous();
  auto loss_of = [&](DType autocast) {
    const ag::Autocast scope(autocast);
    return nn::sequence_loss(model.forward(src, tgt_in), tgt_out, 0.1).loss;
  };
  double l32 = 0, l16 = 0;
  {
    ag::NoGrad no_grad;
    l32 = loss_of(DType::F32).item<double>();
    l16 = loss_of(DType::BF16).item<double>();
  }
  INFO("float32 loss ", l32, ", bf16 loss ", l16);
  CHECK(std::abs(l16 - l32) / l32 < 2e-2);
  CHECK(l16 != l32);
  optim::AdamW adam(model.named_parameters(), {.lr = 3e-3});
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    const Tensor loss = loss_of(DType::BF16);
    last = loss.item<double>();
    if (step == 0) first = last;
    loss.backward();
    adam.step();
    adam.zero_grad();
  }
  INFO("bf16 training loss ", first, " -> ", last);
  CHECK(last < 0.6 * first);
  for (const auto& p : model.named_parameters()) CHECK(p.tensor.dtype() == DType::F32);
}

}  // namespace
}  // namespace loom::test
