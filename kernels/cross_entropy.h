// Fused cross-entropy with label smoothing over rows of contiguous logits [M, V] and
// contiguous class indices target [M] (int64 or int32). Row r with t = target[r] and
// lse = log(sum_v exp(logits[r, v])) has
//   loss[r] = (1 - eps) * (lse - logits[r, t]) + eps * (lse - mean_v logits[r, v])
// and loss[r] = 0 when t == ignore_index.
#pragma once

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

namespace cpu {
int64_t cross_entropy_forward(TensorRef loss, TensorRef lse, TensorRef logits, TensorRef target,
                              int64_t ignore_index, double label_smoothing);
void cross_entropy_backward(TensorRef grad_logits, TensorRef grad_loss, double scale,
                            TensorRef logits, TensorRef lse, TensorRef target, int64_t ignore_index,
                            double label_smoothing);
}  // namespace cpu

namespace cuda {
int64_t cross_entropy_forward(TensorRef loss, TensorRef lse, TensorRef logits, TensorRef target,
                              int64_t ignore_index, double label_smoothing);
void cross_entropy_backward(TensorRef grad_logits, TensorRef grad_loss, double scale,
                            TensorRef logits, TensorRef lse, TensorRef target, int64_t ignore_index,
                            double label_smoothing);
}  // namespace cuda

// The rows whose target is not ignore_index, each checked against [0, V): both backends
// validate (on the host) before computing anything.
template <class I>
int64_t count_valid_targets(const I* target, int64_t M, int64_t V, int64_t ignore_index) {
  int64_t count = 0;
  for (int64_t r = 0; r < M; ++r) {
    const int64_t t = int64_t(target[r]);
    if (t == ignore_index) continue;
    LOOM_CHECK(t >= 0 && t < V, "cross_entropy: target ", t, " at row ", r, " (of ", M,
               ") is out of range for V = ", V, " classes; expected 0 <= target < ", V,
               " or ignore_index (", ignore_index, ")");
    ++count;
  }
  return count;
}

// Writes loss [M] and lse [M] (lse is left 0 at ignored rows) and returns the number of
// rows that are not ignored. A target outside [0, V) that is not ignore_index throws
// loom::Error naming the value, the row and V, before anything is computed.
inline int64_t cross_entropy_forward(TensorRef loss, TensorRef lse, TensorRef logits,
                                     TensorRef target, int64_t ignore_index,
                                     double label_smoothing) {
  profile::Scope scope(profile::Kind::SoftmaxLoss);
  LOOM_ASSERT(logits.dim() == 2 && logits.is_contiguous() && target.is_contiguous());
  const int64_t M = logits.sizes[0];
  LOOM_ASSERT(target.numel() == M && loss.numel() == M && lse.numel() == M);
  LOOM_ASSERT(loss.is_contiguous() && lse.is_contiguous());
  if (logits.device.is_cpu())
    return cpu::cross_entropy_forward(loss, lse, logits, target, ignore_index, label_smoothing);
  LOOM_ON_CUDA(
      cuda::cross_entropy_forward(loss, lse, logits, target, ignore_index, label_smoothing));
}

// grad_logits[r] = w_r * (softmax(logits[r]) - (1 - eps) * onehot(t) - eps / V), with
// w_r = scale * grad_loss[r] (grad_loss is [M], stride 0 for a broadcast scalar), and
// 0 for ignored rows.
inline void cross_entropy_backward(TensorRef grad_logits, TensorRef grad_loss, double scale,
                                   TensorRef logits, TensorRef lse, TensorRef target,
                                   int64_t ignore_index, double label_smoothing) {
  profile::Scope scope(profile::Kind::SoftmaxLoss);
  LOOM_ASSERT(logits.dim() == 2 && logits.is_contiguous() && target.is_contiguous());
  LOOM_ASSERT(grad_logits.sizes == logits.sizes && grad_logits.is_contiguous());
  const int64_t M = logits.sizes[0];
  LOOM_ASSERT(grad_loss.dim() == 1 && grad_loss.sizes[0] == M && lse.numel() == M);
  if (logits.device.is_cpu())
    return cpu::cross_entropy_backward(grad_logits, grad_loss, scale, logits, lse, target,
                                       ignore_index, label_smoothing);
  LOOM_ON_CUDA(cuda::cross_entropy_backward(grad_logits, grad_loss, scale, logits, lse, target,
                                            ignore_index, label_smoothing));
}

}  // namespace loom::kernels
