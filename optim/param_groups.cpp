#include "optim/param_groups.h"

namespace loom::optim {

bool is_embedding(const std::string& name) {
  const std::string suffix = "embed.weight";
  const bool embed = name.size() >= suffix.size() &&
                     name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  return embed || name == "output.weight";
}

std::vector<ParamGroup> decay_groups(const ag::NamedTensors& params, double weight_decay,
                                     bool decay_embeddings) {
  LOOM_CHECK(weight_decay >= 0, "decay_groups: weight_decay ", weight_decay,
             ": must be non-negative");
  std::vector<ParamGroup> groups(2);
  groups[0].weight_decay = weight_decay;
  groups[1].weight_decay = 0.0;
  for (const ag::NamedTensor& p : params) {
    LOOM_CHECK(p.tensor.defined(), "decay_groups: parameter '", p.name, "' is undefined");
    const bool decay = p.tensor.dim() >= 2 && (decay_embeddings || !is_embedding(p.name));
    groups[decay ? 0 : 1].params.push_back(p);
  }
  return groups;
}

}  // namespace loom::optim
