// Layer normalization over the last N elements of each row: x, y and grad tensors are
// contiguous [M, N] (the caller flattens the leading and the normalized dims), mean and
// rstd are contiguous [M], weight and bias contiguous [N] or absent (a TensorRef with
// data == nullptr). Statistics and the weight/bias gradient sums accumulate in double;
// results do not depend on the thread count.
#pragma once

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

namespace cpu {
void layer_norm_forward(TensorRef y, TensorRef mean, TensorRef rstd, TensorRef x, TensorRef w,
                        TensorRef b, double eps);
void layer_norm_backward(TensorRef grad_x, TensorRef grad_w, TensorRef grad_b, TensorRef grad_out,
                         TensorRef x, TensorRef mean, TensorRef rstd, TensorRef w);
}  // namespace cpu

namespace cuda {
void layer_norm_forward(TensorRef y, TensorRef mean, TensorRef rstd, TensorRef x, TensorRef w,
                        TensorRef b, double eps);
void layer_norm_backward(TensorRef grad_x, TensorRef grad_w, TensorRef grad_b, TensorRef grad_out,
                         TensorRef x, TensorRef mean, TensorRef rstd, TensorRef w);
}  // namespace cuda

// [M, N] of a row-major tensor (the layout both backends rely on), asserted.
inline void check_layer_norm_rows(const TensorRef& t, int64_t M, int64_t N) {
  LOOM_ASSERT(t.dim() == 2 && t.sizes[0] == M && t.sizes[1] == N && t.is_contiguous());
}

// y = (x - mean) * rstd * w + b, with mean and rstd = 1 / sqrt(var + eps) (biased
// variance) of each row, which are written out for the backward.
inline void layer_norm_forward(TensorRef y, TensorRef mean, TensorRef rstd, TensorRef x,
                               TensorRef w, TensorRef b, double eps) {
  profile::Scope scope(profile::Kind::LayerNorm);
  LOOM_ASSERT(x.dim() == 2);
  const int64_t M = x.sizes[0], N = x.sizes[1];
  check_layer_norm_rows(x, M, N);
  check_layer_norm_rows(y, M, N);
  LOOM_ASSERT(mean.numel() == M && rstd.numel() == M);
  LOOM_ASSERT((!w.data || w.numel() == N) && (!b.data || b.numel() == N));
  if (x.device.is_cpu()) return cpu::layer_norm_forward(y, mean, rstd, x, w, b, eps);
  LOOM_ON_CUDA(cuda::layer_norm_forward(y, mean, rstd, x, w, b, eps));
}

// With xhat = (x - mean) * rstd and gxhat = grad_out * w (grad_out without w):
//   grad_x = rstd * (gxhat - mean_row(gxhat) - xhat * mean_row(gxhat * xhat))
//   grad_w = sum_rows(grad_out * xhat),  grad_b = sum_rows(grad_out)
// Each output is skipped when its TensorRef has data == nullptr.
inline void layer_norm_backward(TensorRef grad_x, TensorRef grad_w, TensorRef grad_b,
                                TensorRef grad_out, TensorRef x, TensorRef mean, TensorRef rstd,
                                TensorRef w) {
  profile::Scope scope(profile::Kind::LayerNorm);
  LOOM_ASSERT(x.dim() == 2);
  const int64_t M = x.sizes[0], N = x.sizes[1];
  check_layer_norm_rows(x, M, N);
  check_layer_norm_rows(grad_out, M, N);
  if (grad_x.data) check_layer_norm_rows(grad_x, M, N);
  LOOM_ASSERT(mean.numel() == M && rstd.numel() == M);
  if (x.device.is_cpu())
    return cpu::layer_norm_backward(grad_x, grad_w, grad_b, grad_out, x, mean, rstd, w);
  LOOM_ON_CUDA(cuda::layer_norm_backward(grad_x, grad_w, grad_b, grad_out, x, mean, rstd, w));
}

}  // namespace loom::kernels
