// The whole model on the GPU against specs/model_golden.h5 (the CPU's golden test, moved
// with Module::to(device)), and AdamW steps on the GPU against the CPU.
#include <algorithm>

#include "common/specs.h"
#include "cuda/compare.h"
#include "nn/loss.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "recipes/h5.h"
#include "recipes/model_config.h"

namespace loom::test {
namespace {

void check_golden_on_gpu(const std::string& name) {
  INFO("case ", name);
  const recipes::h5::File f = recipes::h5::File::open(spec_path("model_golden.h5"));
  const recipes::h5::Group g = f.group(name);
  const nn::ModelConfig cfg = recipes::parse_model_config(g.string_attr("config"), name);
  ag::NamedTensors weights;
  for (const std::string& p : g.group("model").children())
    weights.push_back({p, g.group("model").read_tensor(p)});
  nn::Transformer model(cfg, /*init_seed=*/123);
  model.eval();
  model.load_state_dict(weights);
  model.to(gpu());
  const Tensor logits = model.forward(g.read_tensor("inputs/src").to(gpu()),
                                      g.read_tensor("inputs/tgt_in").to(gpu()));
  CHECK(logits.device() == gpu());
  CHECK(rel_error(logits, g.read_tensor("expected/logits"), 1e-4) < 1e-4);
  nn::SequenceLoss loss =
      nn::sequence_loss(logits, g.read_tensor("inputs/tgt_out").to(gpu()), cfg.label_smoothing);
  const double want = g.read_tensor("expected/loss").to(DType::F64).item<double>();
  CHECK(loss.loss.item<float>() == doctest::Approx(want).epsilon(1e-4));
  loss.loss.backward();
  const ag::NamedTensors params = model.named_parameters();
  for (const std::string& p : g.group("expected/grad").children()) {
    INFO("gradient of ", p);
    const auto it = std::find_if(params.begin(), params.end(),
                                 [&](const ag::NamedTensor& n) { return n.name == p; });
    REQUIRE(it != params.end());
    REQUIRE(it->tensor.grad().defined());
    CHECK(rel_error(it->tensor.grad(), g.group("expected/grad").read_tensor(p), 1e-4) < 1e-3);
  }
}

TEST_CASE("cuda: golden model, sinusoidal + MHA + pre-LN") {
  check_golden_on_gpu("sinusoidal_mha_pre");
}
TEST_CASE("cuda: golden model, RoPE + YaRN + GQA + GELU") {
  check_golden_on_gpu("rope_yarn_gqa_gelu");
}
TEST_CASE("cuda: golden model, ALiBi + MQA + post-LN") {
  check_golden_on_gpu("alibi_mqa_post_untied");
}

TEST_CASE("cuda: AdamW steps match the CPU") {
  const Tensor w0 = random({64, 48}, 70, DType::F32, -1, 1, false);
  const Tensor b0 = random({48}, 71, DType::F32, -1, 1, false);
  auto run = [&](Device dev) {
    // clone: to(cpu) of a cpu tensor is the tensor itself, which the steps would update.
    Tensor w = w0.clone().to(dev).detach().set_requires_grad();
    Tensor b = b0.clone().to(dev).detach().set_requires_grad();
    optim::AdamWOptions o;
    o.lr = 1e-2;
    o.weight_decay = 0.1;
    optim::AdamW opt({{"w", w}, {"b", b}}, o);
    for (int step = 0; step < 5; ++step) {
      const Tensor x = random({16, 64}, 80 + uint64_t(step), DType::F32, -1, 1, false).to(dev);
      // Gradients well away from 0, so rounding cannot flip an update's sign.
      const Tensor y = ag::matmul(x, w) * 0.1 + b - 0.5;
      const Tensor loss = ag::sum(y * y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    return std::pair{w, b};
  };
  const auto [wc, bc] = run(Device::cpu());
  const auto [wg, bg] = run(gpu());
  CHECK(rel_error(wg, wc) < 1e-5);
  CHECK(rel_error(bg, bc) < 1e-5);
}

}  // namespace
}  // namespace loom::test
