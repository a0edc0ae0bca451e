// A tensor with its state_dict name ("encoder.layers.0.ffn.fc1.weight"): what
// nn::Module::named_parameters() returns and what optim/ takes, so optimizers work on
// any named tensors without knowing about modules.
#pragma once

#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace loom::ag {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

using NamedTensors = std::vector<NamedTensor>;

}  // namespace loom::ag
