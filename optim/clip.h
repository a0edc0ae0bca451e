// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_(params, max_norm,
// norm_type=2): with the total norm N = sqrt(sum over all gradients of sum(g^2)),
//   coef = min(max_norm / (N + 1e-6), 1),   g <- g * coef   (in place, every gradient)
// Parameters without a gradient are skipped. N is accumulated in double.
// https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_norm_.html
#pragma once

#include "autograd/named_tensor.h"

namespace loom::optim {

// The total 2-norm of all defined gradients (0 when there are none).
double grad_norm(const ag::NamedTensors& params);

// Scales the gradients as above and returns the total norm before clipping. A non-finite
// norm is returned as is, and scales the gradients as PyTorch does (error_if_nonfinite
// is not offered); check the return value to skip such steps.
double clip_grad_norm(const ag::NamedTensors& params, double max_norm);

}  // namespace loom::optim
