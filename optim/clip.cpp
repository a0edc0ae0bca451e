#include "optim/clip.h"

#include <cmath>

#include "autograd/ops.h"

namespace loom::optim {

double grad_norm(const ag::NamedTensors& params) {
  ag::NoGrad no_grad;
  double sum_sq = 0;
  for (const ag::NamedTensor& p : params) {
    const ag::Tensor g = p.tensor.grad();
    if (g.defined()) sum_sq += ag::sum(g * g).item<double>();  // float sums in double
  }
  return std::sqrt(sum_sq);
}

double clip_grad_norm(const ag::NamedTensors& params, double max_norm) {
  LOOM_CHECK(max_norm > 0, "clip_grad_norm: max_norm ", max_norm, ": must be positive");
  const double norm = grad_norm(params);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1 || !std::isfinite(norm)) {
    ag::NoGrad no_grad;
    for (const ag::NamedTensor& p : params) {
      ag::Tensor g = p.tensor.grad();
      if (g.defined()) g.mul_(coef);
    }
  }
  return norm;
}

}  // namespace loom::optim
