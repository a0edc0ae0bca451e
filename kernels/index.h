// index_select along one dimension (a gather of slices) and its backward (a scatter-add of
// gradient slices). x and out have any strides; index is 1-D int32 or int64, any stride.
// Outputs first, then inputs.
#pragma once

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

namespace cpu {
void index_select_forward(TensorRef out, TensorRef x, int dim, TensorRef index);
void index_select_backward(TensorRef grad_x, TensorRef grad_out, int dim, TensorRef index);
}  // namespace cpu

namespace cuda {
void index_select_forward(TensorRef out, TensorRef x, int dim, TensorRef index);
void index_select_backward(TensorRef grad_x, TensorRef grad_out, int dim, TensorRef index);
}  // namespace cuda

// out has x's sizes except out.sizes[dim] = K = index.numel():
// out[..., k, ...] = x[..., index[k], ...]. Any dtype the CPU stores. An index outside
// [0, x.sizes[dim]) is a loom::Error naming it, its position and the size; nothing is
// written then.
inline void index_select_forward(TensorRef out, TensorRef x, int dim, TensorRef index) {
  profile::Scope scope(profile::Kind::Copy);
  if (x.device.is_cpu()) return cpu::index_select_forward(out, x, dim, index);
  LOOM_ON_CUDA(cuda::index_select_forward(out, x, dim, index));
}

// grad_x[..., index[k], ...] += grad_out[..., k, ...] for every k (floating dtypes).
// Deterministic: each slice of grad_x is owned by one thread and sums its contributions
// in order of k, whatever the thread count.
inline void index_select_backward(TensorRef grad_x, TensorRef grad_out, int dim, TensorRef index) {
  profile::Scope scope(profile::Kind::Copy);
  if (grad_x.device.is_cpu()) return cpu::index_select_backward(grad_x, grad_out, dim, index);
  LOOM_ON_CUDA(cuda::index_select_backward(grad_x, grad_out, dim, index));
}

}  // namespace loom::kernels
