// Embedding lookup (a gather of weight rows) and its backward (a scatter-add of gradient
// rows). ids are int32 or int64 of any shape and strides; their N elements, in row-major
// order, index the rows of weight [V, C]. Outputs first, then inputs.
#pragma once

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

namespace cpu {
void embedding_forward(TensorRef out, TensorRef ids, TensorRef weight);
void embedding_backward(TensorRef grad_weight, TensorRef grad_out, TensorRef ids);
}  // namespace cpu

namespace cuda {
void embedding_forward(TensorRef out, TensorRef ids, TensorRef weight);
void embedding_backward(TensorRef grad_weight, TensorRef grad_out, TensorRef ids);
}  // namespace cuda

// out [N, C]: out[i, :] = weight[ids[i], :]. An id outside [0, V) is a loom::Error naming
// the id, its position in ids and V; nothing is written then.
inline void embedding_forward(TensorRef out, TensorRef ids, TensorRef weight) {
  profile::Scope scope(profile::Kind::Embedding);
  if (weight.device.is_cpu()) return cpu::embedding_forward(out, ids, weight);
  LOOM_ON_CUDA(cuda::embedding_forward(out, ids, weight));
}

// grad_weight [V, C] += scatter of grad_out [N, C]: grad_weight[ids[i], :] += grad_out[i, :].
// Deterministic: every row sums its contributions in order of i, whatever the thread count.
inline void embedding_backward(TensorRef grad_weight, TensorRef grad_out, TensorRef ids) {
  profile::Scope scope(profile::Kind::Embedding);
  if (grad_weight.device.is_cpu()) return cpu::embedding_backward(grad_weight, grad_out, ids);
  LOOM_ON_CUDA(cuda::embedding_backward(grad_weight, grad_out, ids));
}

}  // namespace loom::kernels
