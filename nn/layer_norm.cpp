#include "nn/layer_norm.h"

#include "autograd/ops.h"

namespace loom::nn {

LayerNorm::LayerNorm(int64_t dim, double eps) : Module("LayerNorm"), dim_(dim), eps_(eps) {
  LOOM_CHECK(dim > 0, "LayerNorm: dim ", dim, ": must be positive");
  weight = register_parameter("weight", ag::ones({dim}));
  bias = register_parameter("bias", ag::zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor& x) const {
  return ag::layer_norm(x, {dim_}, weight, bias, eps_);
}

}  // namespace loom::nn
