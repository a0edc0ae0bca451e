// The whole model against specs/model_golden.h5 (an independent PyTorch implementation of
// DESIGN.md's specification): for each case, load the weights by state_dict name
// (strict: the key sets must be equal), run the forward pass and the loss, and compare
// the logits, loss, NLL and every parameter gradient. Tolerances as specs/model.md says:
// the reference ran in float64 from the float32 weights; loom runs in float32.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "common/specs.h"
#include "nn/loss.h"
#include "nn/transformer.h"
#include "recipes/h5.h"
#include "recipes/model_config.h"

namespace loom::test {
namespace {

using ag::Tensor;

// max |got - want| relative to max |want| (the tensor's scale), with an absolute floor of
// 1e-7: the key projections' bias gradients are exactly zero in exact arithmetic (softmax
// is invariant to adding one constant to a row of scores), so both sides hold only
// rounding noise (~1e-17 in the float64 reference, ~1e-8 in loom's float32) there; 1e-7 is float32
// epsilon times the O(1) scale of the other gradients.
double rel_error(const Tensor& got, const Tensor& want) {
  const auto g = got.to(kernels::DType::F64).to_vector<double>();
  const auto w = want.to(kernels::DType::F64).to_vector<double>();
  REQUIRE(g.size() == w.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    diff = std::max(diff, std::abs(g[i] - w[i]));
    scale = std::max(scale, std::abs(w[i]));
  }
  return diff / std::max(scale, 1e-4);
}

struct GoldenCase {
  nn::ModelConfig cfg;
  ag::NamedTensors weights;
  Tensor src, tgt_in, tgt_out, logits;
  double loss = 0, nll = 0;
  ag::NamedTensors grads;
};

GoldenCase load_case(const std::string& name) {
  const recipes::h5::File f = recipes::h5::File::open(spec_path("model_golden.h5"));
  const recipes::h5::Group g = f.group(name);
  GoldenCase c;
  c.cfg = recipes::parse_model_config(g.string_attr("config"), name + " config");
  for (const std::string& p : g.group("model").children())
    c.weights.push_back({p, g.group("model").read_tensor(p)});
  for (const std::string& p : g.group("expected/grad").children())
    c.grads.push_back({p, g.group("expected/grad").read_tensor(p)});
  c.src = g.read_tensor("inputs/src");
  c.tgt_in = g.read_tensor("inputs/tgt_in");
  c.tgt_out = g.read_tensor("inputs/tgt_out");
  c.logits = g.read_tensor("expected/logits");
  c.loss = g.read_tensor("expected/loss").to(kernels::DType::F64).item<double>();
  c.nll = g.read_tensor("expected/nll").to(kernels::DType::F64).item<double>();
  return c;
}

void check_case(const std::string& name) {
  INFO("case ", name);
  const GoldenCase c = load_case(name);
  nn::Transformer model(c.cfg, /*init_seed=*/123);
  model.eval();  // dropout off, as the reference
  const nn::LoadReport report = model.load_state_dict(c.weights);  // strict
  CHECK(report.loaded.size() == c.weights.size());

  const Tensor logits = model.forward(c.src, c.tgt_in);
  CHECK(logits.sizes() == c.logits.sizes());
  CHECK(rel_error(logits, c.logits) < 1e-4);
  nn::SequenceLoss loss = nn::sequence_loss(logits, c.tgt_out, c.cfg.label_smoothing);
  CHECK(loss.loss.item<float>() == doctest::Approx(c.loss).epsilon(1e-4));
  CHECK(loss.nll == doctest::Approx(c.nll).epsilon(1e-4));

  loss.loss.backward();
  const ag::NamedTensors params = model.named_parameters();
  CHECK(params.size() == c.grads.size());
  for (const auto& [pname, want] : c.grads) {
    INFO("gradient of ", pname);
    const auto it = std::find_if(params.begin(), params.end(),
                                 [&](const ag::NamedTensor& p) { return p.name == pname; });
    REQUIRE(it != params.end());
    REQUIRE(it->tensor.grad().defined());
    CHECK(rel_error(it->tensor.grad(), want) < 1e-3);
  }
}

TEST_CASE("golden model: sinusoidal + MHA + pre-LN") { check_case("sinusoidal_mha_pre"); }
TEST_CASE("golden model: RoPE + YaRN + GQA + GELU") { check_case("rope_yarn_gqa_gelu"); }
TEST_CASE("golden model: plain RoPE") { check_case("rope_plain_mha"); }
TEST_CASE("golden model: ALiBi + MQA + post-LN + untied") { check_case("alibi_mqa_post_untied"); }
TEST_CASE("golden model: no positions, label smoothing 0.2") { check_case("nopos_pre"); }

}  // namespace
}  // namespace loom::test
