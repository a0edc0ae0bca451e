// decay_groups: which parameters get weight decay (matrices), which not (biases,
// LayerNorm, embeddings unless asked), and an AdamW built from them.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "optim/adamw.h"

namespace loom::optim {
namespace {

std::vector<std::string> names(const ParamGroup& g) {
  std::vector<std::string> out;
  for (const ag::NamedTensor& p : g.params) out.push_back(p.name);
  return out;
}

ag::NamedTensors transformer_like() {
  return {{"embed.weight", ag::zeros({10, 4})},
          {"encoder.layers.0.self_attn.q_proj.weight", ag::zeros({4, 4})},
          {"encoder.layers.0.self_attn.q_proj.bias", ag::zeros({4})},
          {"encoder.norm.weight", ag::zeros({4})},
          {"decoder.embed.weight", ag::zeros({10, 4})},
          {"decoder.layers.0.ffn.fc1.weight", ag::zeros({8, 4})},
          {"output.weight", ag::zeros({10, 4})}};
}

TEST_CASE("decay_groups: matrices decay, biases, LayerNorm and embeddings do not") {
  const std::vector<ParamGroup> g = decay_groups(transformer_like(), 0.1, false);
  REQUIRE(g.size() == 2);
  CHECK(*g[0].weight_decay == 0.1);
  CHECK(*g[1].weight_decay == 0.0);
  CHECK_FALSE(g[0].lr.has_value());
  CHECK(names(g[0]) == std::vector<std::string>{"encoder.layers.0.self_attn.q_proj.weight",
                                                "decoder.layers.0.ffn.fc1.weight"});
  CHECK(names(g[1]) ==
        std::vector<std::string>{"embed.weight", "encoder.layers.0.self_attn.q_proj.bias",
                                 "encoder.norm.weight", "decoder.embed.weight", "output.weight"});
}

TEST_CASE("decay_groups: embeddings decay when asked") {
  const std::vector<ParamGroup> g = decay_groups(transformer_like(), 0.01, true);
  CHECK(names(g[0]) ==
        std::vector<std::string>{"embed.weight", "encoder.layers.0.self_attn.q_proj.weight",
                                 "decoder.embed.weight", "decoder.layers.0.ffn.fc1.weight",
                                 "output.weight"});
  CHECK(names(g[1]) ==
        std::vector<std::string>{"encoder.layers.0.self_attn.q_proj.bias", "encoder.norm.weight"});
  CHECK(is_embedding("decoder.embed.weight"));
  CHECK_FALSE(is_embedding("output.bias"));
  CHECK_FALSE(is_embedding("embed.weights"));
}

TEST_CASE("decay_groups: an AdamW over the groups decays only group 0") {
  ag::Tensor w = ag::ones({2, 2}).set_requires_grad(true);
  ag::Tensor b = ag::ones({2}).set_requires_grad(true);
  AdamW opt(decay_groups({{"w", w}, {"b", b}}, 0.5, false), {.lr = 0.1});
  CHECK(opt.lr(0) == 0.1);
  CHECK(opt.lr(1) == 0.1);
  w.set_grad(ag::zeros({2, 2}));
  b.set_grad(ag::zeros({2}));
  opt.step();  // zero gradients: only the decay moves w, by lr * wd = 5%
  CHECK(w.to_vector<float>() == std::vector<float>(4, 0.95f));
  CHECK(b.to_vector<float>() == std::vector<float>(2, 1.0f));
  CHECK_THROWS_WITH_AS(decay_groups({{"w", w}}, -0.1, false),
                       "decay_groups: weight_decay -0.1: must be non-negative", Error);
}

}  // namespace
}  // namespace loom::optim
