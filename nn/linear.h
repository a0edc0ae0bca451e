// Linear: y = x W^T + b with W [out, in] (torch.nn.Linear's layout and names: weight,
// bias). Init as DESIGN.md: Xavier-uniform weight, U(-a, a) with a = sqrt(6/(in+out))
// (Glorot & Bengio 2010), zero bias.
#pragma once

#include "nn/module.h"

namespace loom::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& init, bool bias = true);
  Tensor forward(const Tensor& x) const;  // x: (..., in) -> (..., out)

  Tensor weight, bias;  // bias undefined when constructed without
};

}  // namespace loom::nn
