// Reductions over any set of axes. `out` has x's rank with size 1 on every reduced axis
// (keepdim layout) and is contiguous; x may be strided. Float sums accumulate in double.
#pragma once

#include <span>

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

enum class ReduceOp : uint8_t { Sum, Max };

namespace cpu {
void reduce(TensorRef out, TensorRef x, ReduceOp op);
// Σ x² over every element of contiguous float32 / float64 CPU tensors, in double (for
// gradient norms): fixed chunks of 16384 elements, each over eight lane accumulators,
// added in tensor then chunk order, so the result does not depend on the thread count.
// One parallel region for the whole list; no temporaries.
double sum_of_squares(std::span<const TensorRef> xs);
}

namespace cuda {
void reduce(TensorRef out, TensorRef x, ReduceOp op);
// The same sum for contiguous float32 / float64 / bfloat16 tensors on one GPU: two
// launches and one transfer for the whole list (kernels/cuda/sum_of_squares.cu).
double sum_of_squares(std::span<const TensorRef> xs);
}

// Σ x² over contiguous tensors all on one device, in double (see the two above).
inline double sum_of_squares(std::span<const TensorRef> xs) {
  profile::Scope scope(profile::Kind::Reduce);
  if (xs.empty() || xs[0].device.is_cpu()) return cpu::sum_of_squares(xs);
  LOOM_ON_CUDA(cuda::sum_of_squares(xs));
}

inline void reduce(TensorRef out, TensorRef x, ReduceOp op) {
  profile::Scope scope(profile::Kind::Reduce);
  if (x.device.is_cpu()) return cpu::reduce(out, x, op);
  LOOM_ON_CUDA(cuda::reduce(out, x, op));
}

}  // namespace loom::kernels
