// Softmax and log-softmax over the last axis of a contiguous tensor (rows of length L =
// sizes.back()). Numerically stable: each row is shifted by its maximum before exp.
// Row sums accumulate in double, so float results do not drift with long rows.
#pragma once

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

namespace cpu {
void softmax_forward(TensorRef y, TensorRef x, bool log);
void softmax_backward(TensorRef grad_x, TensorRef grad_out, TensorRef y, bool log);
}  // namespace cpu

namespace cuda {
void softmax_forward(TensorRef y, TensorRef x, bool log);
void softmax_backward(TensorRef grad_x, TensorRef grad_out, TensorRef y, bool log);
}  // namespace cuda

// y = softmax(x) (log = false) or log_softmax(x) (log = true), row by row.
inline void softmax_forward(TensorRef y, TensorRef x, bool log) {
  profile::Scope scope(profile::Kind::SoftmaxLoss);
  if (x.device.is_cpu()) return cpu::softmax_forward(y, x, log);
  LOOM_ON_CUDA(cuda::softmax_forward(y, x, log));
}

// From the forward output y: softmax grad_x = y * (grad_out - sum(grad_out * y));
// log_softmax grad_x = grad_out - exp(y) * sum(grad_out). Sums are per row.
inline void softmax_backward(TensorRef grad_x, TensorRef grad_out, TensorRef y, bool log) {
  profile::Scope scope(profile::Kind::SoftmaxLoss);
  if (y.device.is_cpu()) return cpu::softmax_backward(grad_x, grad_out, y, log);
  LOOM_ON_CUDA(cuda::softmax_backward(grad_x, grad_out, y, log));
}

}  // namespace loom::kernels
