// Module: registration names, state_dict keys = DESIGN.md's (checked against the PyTorch
// reference's key sets in model_golden.h5), strict loading reports, train/eval, dtype.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "autograd/ops.h"
#include "common/specs.h"
#include "nn/transformer.h"
#include "recipes/h5.h"
#include "recipes/model_config.h"

namespace loom::test {
namespace {

using ag::Tensor;

std::set<std::string> names(const ag::NamedTensors& v) {
  std::set<std::string> s;
  for (const auto& t : v) s.insert(t.name);
  return s;
}

TEST_CASE("state_dict keys and shapes equal the PyTorch reference's for every golden config") {
  const auto f = recipes::h5::File::open(spec_path("model_golden.h5"));
  for (const char* name : {"sinusoidal_mha_pre", "rope_yarn_gqa_gelu", "rope_plain_mha",
                           "alibi_mqa_post_untied", "nopos_pre"}) {
    INFO("case ", name);
    const auto g = f.group(name);
    const nn::ModelConfig cfg = recipes::parse_model_config(g.string_attr("config"), name);
    const nn::Transformer model(cfg, 1);
    std::set<std::string> want;
    for (const auto& p : g.group("model").children()) {
      want.insert(p);
      const auto sd = model.state_dict();
      const auto it = std::find_if(sd.begin(), sd.end(), [&](const auto& t) { return t.name == p; });
      REQUIRE(it != sd.end());
      CHECK(it->tensor.sizes().vec() == g.group("model").dataset(p).shape());
    }
    CHECK(names(model.state_dict()) == want);
  }
}

TEST_CASE("named_parameters in registration order, tied embeddings appear once") {
  nn::ModelConfig cfg;
  cfg.vocab = 10, cfg.d_model = 8, cfg.heads = 2, cfg.kv_heads = 1, cfg.ffn = 16;
  cfg.encoder_layers = 1, cfg.decoder_layers = 1;
  const nn::Transformer model(cfg, 1);
  const auto params = model.named_parameters();
  CHECK(params.front().name == "embed.weight");
  CHECK(params[1].name == "encoder.layers.0.self_attn.q_proj.weight");
  CHECK(params.back().name == "decoder.norm.bias");
  CHECK(std::count_if(params.begin(), params.end(),
                      [](const auto& p) { return p.name.find("embed") != std::string::npos; }) == 1);
  const auto kv = std::find_if(params.begin(), params.end(), [](const auto& p) {
    return p.name == "decoder.layers.0.cross_attn.k_proj.weight";
  });
  REQUIRE(kv != params.end());
  CHECK(kv->tensor.sizes() == kernels::Dims{4, 8});  // kv_heads * head_dim = 1 * 4
}

TEST_CASE("load_state_dict names every missing, unexpected and wrong-shape key") {
  nn::ModelConfig cfg;
  cfg.vocab = 10, cfg.d_model = 8, cfg.heads = 2, cfg.kv_heads = 2, cfg.ffn = 16;
  cfg.encoder_layers = 1, cfg.decoder_layers = 1;
  nn::Transformer model(cfg, 1);
  ag::NamedTensors sd = model.state_dict();
  const Tensor before = model.embed->weight;
  // Loading its own state is exact and keeps member handles.
  nn::Transformer other(cfg, 2);
  other.load_state_dict(sd);
  CHECK(other.embed->weight.to_vector<float>() == before.to_vector<float>());
  // Break it three ways.
  sd.erase(std::remove_if(sd.begin(), sd.end(), [](const auto& t) { return t.name == "decoder.norm.bias"; }),
           sd.end());
  sd.push_back({"decoder.extra.weight", ag::zeros({2})});
  for (auto& t : sd)
    if (t.name == "encoder.norm.weight") t.tensor = ag::zeros({9});
  try {
    other.load_state_dict(sd);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) ==
          "load_state_dict: 1 missing key (decoder.norm.bias), 1 unexpected "
          "(decoder.extra.weight), 1 wrong-shape (encoder.norm.weight: given [9], the model has [8])");
  }
  const nn::LoadReport r = other.load_state_dict(sd, /*strict=*/false);
  CHECK(r.missing.size() == 1);
  CHECK(r.loaded.size() == model.state_dict().size() - 2);
}

TEST_CASE("train/eval reaches every submodule, to(float64) keeps handles") {
  nn::ModelConfig cfg;
  cfg.vocab = 10, cfg.d_model = 8, cfg.heads = 2, cfg.kv_heads = 2, cfg.ffn = 16;
  cfg.encoder_layers = 1, cfg.decoder_layers = 1;
  nn::Transformer model(cfg, 1);
  model.eval();
  CHECK_FALSE(model.decoder->layers->at<nn::DecoderLayer>(0)->ffn->fc1->is_training());
  model.train();
  CHECK(model.decoder->layers->at<nn::DecoderLayer>(0)->ffn->fc1->is_training());
  const Tensor w = model.embed->weight;
  model.to(kernels::DType::F64);
  CHECK(w.dtype() == kernels::DType::F64);
  CHECK(w.requires_grad());
}

TEST_CASE("bad configs and names are clear errors") {
  nn::ModelConfig cfg;
  cfg.kv_heads = 3;
  CHECK_THROWS_WITH_AS(cfg.validate(), "model.kv_heads = 3: heads (4) must be a multiple of kv_heads",
                       Error);
  cfg.kv_heads = 4;
  cfg.position = "rotary";
  CHECK_THROWS_WITH_AS(cfg.validate(),
                       "model.position = \"rotary\": expected one of sinusoidal, rope, alibi, none",
                       Error);
  CHECK_THROWS_WITH_AS(
      recipes::parse_model_config("[model]\nd_modle = 4\n", "x.toml"),
      "x.toml: model.d_modle: unknown key; did you mean model.d_model?", Error);
  CHECK_THROWS_WITH_AS(recipes::parse_model_config("[model]\nheads = \"four\"\n", "x.toml"),
                       "x.toml: model.heads: expected an integer", Error);
}

TEST_CASE("model config TOML round trip") {
  nn::ModelConfig cfg;
  cfg.position = "rope";
  cfg.rope.scaling = "yarn";
  cfg.rope.factor = 4;
  cfg.rope.mscale = 1.25;
  const nn::ModelConfig back = recipes::parse_model_config(recipes::model_config_to_toml(cfg), "rt");
  CHECK(recipes::model_config_to_toml(back) == recipes::model_config_to_toml(cfg));
  CHECK(back.rope.mscale.value() == 1.25);
}

}  // namespace
}  // namespace loom::test
