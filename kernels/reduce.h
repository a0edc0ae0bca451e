// Reductions over any set of axes. `out` has x's rank with size 1 on every reduced axis
// (keepdim layout) and is contiguous; x may be strided. Float sums accumulate in double.
#pragma once

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

enum class ReduceOp : uint8_t { Sum, Max };

namespace cpu {
void reduce(TensorRef out, TensorRef x, ReduceOp op);
}

namespace cuda {
void reduce(TensorRef out, TensorRef x, ReduceOp op);
}

inline void reduce(TensorRef out, TensorRef x, ReduceOp op) {
  profile::Scope scope(profile::Kind::Reduce);
  if (x.device.is_cpu()) return cpu::reduce(out, x, op);
  LOOM_ON_CUDA(cuda::reduce(out, x, op));
}

}  // namespace loom::kernels
