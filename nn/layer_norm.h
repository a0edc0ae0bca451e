// LayerNorm over the last dim with learned weight (ones) and bias (zeros), eps 1e-5
// (torch.nn.LayerNorm(dim); names weight, bias).
#pragma once

#include <cstdint>

#include "nn/module.h"

namespace loom::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;  // x: (..., C)

  Tensor weight, bias;

 private:
  int64_t dim_;
  double eps_;
};

}  // namespace loom::nn
