// Parameter groups (torch.optim's param_groups): named parameters sharing a learning rate
// and weight decay. decay_groups() builds the two groups every Transformer recipe uses:
// weight decay on matrices, none on biases and LayerNorm parameters (rank 1) and, unless
// asked, none on embeddings (names ending in "embed.weight", and "output.weight").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autograd/named_tensor.h"

namespace loom::optim {

struct ParamGroup {
  ag::NamedTensors params;
  // Unset: the optimizer's default (its options' lr / weight_decay), as in PyTorch.
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

// True for embedding tables by DESIGN.md's names: "embed.weight", "decoder.embed.weight",
// and the untied output projection "output.weight".
bool is_embedding(const std::string& name);

// {decay, no_decay}, always two groups (either may be empty), parameters in input order:
// group 0 gets `weight_decay` and holds the tensors of rank >= 2 (embeddings only when
// decay_embeddings); group 1 gets weight decay 0 and holds the rest. Learning rates are
// left to the optimizer's default.
std::vector<ParamGroup> decay_groups(const ag::NamedTensors& params, double weight_decay,
                                     bool decay_embeddings);

}  // namespace loom::optim
