// Finite-difference gradient check (library code, usable for users' ops too).
//
// Checks the vector-Jacobian product the tape computes against central differences:
// with a fixed random R of the output's shape, L(inputs) = sum(f(inputs) * R); each input
// element x gets numeric dL/dx = (L(x+eps) - L(x-eps)) / (2 eps) and must match the
// gradient backward() put in x.grad within atol + rtol * |numeric|. Inputs must be
// float64 (defaults as PyTorch's gradcheck, which assume double) and may be
// non-contiguous views, but not expanded (stride-0) ones.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace loom::ag {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 1234;  // for R
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the first mismatch (input, index, analytic, numeric) or ""
  double max_abs_error = 0;
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks every input with requires_grad set; the others are held constant.
GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace loom::ag
