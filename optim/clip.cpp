#include "optim/clip.h"

#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "kernels/reduce.h"

namespace loom::optim {

double grad_norm(const ag::NamedTensors& params) {
  ag::NoGrad no_grad;
  // Contiguous gradients, grouped by device: one pass over each device's list (one
  // parallel region on the CPU, two launches and one transfer on a GPU; the parameters
  // hold the gradients' storage meanwhile). Any other (strided, integer): sum(g * g).
  std::map<std::pair<int, int>, std::vector<kernels::TensorRef>> by_device;
  double sum_sq = 0;
  for (const ag::NamedTensor& p : params) {
    const ag::Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    const bool listed = g.is_contiguous() &&
                        (g.dtype() == ag::DType::F32 || g.dtype() == ag::DType::F64 ||
                         (g.dtype() == ag::DType::BF16 && g.device().is_cuda()));
    if (listed) {
      by_device[{int(g.device().kind), g.device().index}].push_back(g.ref());
    } else {
      sum_sq += ag::sum(g * g).item<double>();
    }
  }
  for (const auto& [device, refs] : by_device) sum_sq += kernels::sum_of_squares(refs);
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
