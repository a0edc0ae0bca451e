#include "optim/clip.h"

#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "kernels/reduce.h"

namespace loom::optim {

double grad_norm(const ag::NamedTensors& params) {
  ag::NoGrad no_grad;
  // Contiguous CPU gradients (all of them in CPU training): one pass over their memory in
  // one parallel region (the parameters hold their gradients' storage meanwhile). Any
  // other (GPU, strided): sum(g * g), its float sums in double.
  std::vector<kernels::TensorRef> cpu;
  double sum_sq = 0;
  for (const ag::NamedTensor& p : params) {
    const ag::Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    if (g.device().is_cpu() && g.is_contiguous() &&
        (g.dtype() == ag::DType::F32 || g.dtype() == ag::DType::F64)) {
      cpu.push_back(g.ref());
    } else {
      sum_sq += ag::sum(g * g).item<double>();
    }
  }
  return std::sqrt(sum_sq + kernels::cpu::sum_of_squares(cpu));
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
