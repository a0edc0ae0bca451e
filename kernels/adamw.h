// Fused multi-tensor AdamW step (torch.optim.AdamW, decoupled weight decay). For each
// tensor, with t its step count after the increment, lr and weight decay its group's:
//   p   <- p * (1 - lr * weight_decay)
//   m   <- lerp(m, g, 1 - beta1)                  (= beta1 * m + (1 - beta1) * g)
//   v   <- beta2 * v + (1 - beta2) * g * g
//   p   <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// in the element type, in PyTorch's order of operations (its single-tensor CPU path).
// Reference: https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html
#pragma once

#include <cstdint>
#include <span>

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

// One tensor of the step. param, exp_avg, exp_avg_sq (updated in place) and grad are
// contiguous, of equal element counts and one floating dtype; tensors of one call may
// differ in dtype, but share a device.
struct AdamWTensor {
  TensorRef param, exp_avg, exp_avg_sq, grad;
  double lr = 0, weight_decay = 0;
  int64_t step = 1;  // t >= 1, this tensor's step count including this step
};

namespace cpu {
void adamw_step(std::span<const AdamWTensor> tensors, double beta1, double beta2, double eps);
}

namespace cuda {
void adamw_step(std::span<const AdamWTensor> tensors, double beta1, double beta2, double eps);
}

// All tensors in one pass: the elements of every tensor form one index range split over
// threads, so many small tensors cost one parallel region. Elementwise, hence independent
// of the thread count.
inline void adamw_step(std::span<const AdamWTensor> tensors, double beta1, double beta2,
                       double eps) {
  profile::Scope scope(profile::Kind::Optimizer);
  if (tensors.empty()) return;
  if (tensors[0].param.device.is_cpu()) return cpu::adamw_step(tensors, beta1, beta2, eps);
  LOOM_ON_CUDA(cuda::adamw_step(tensors, beta1, beta2, eps));
}

}  // namespace loom::kernels
