// Strided batched GEMM: c[..., M, N] = alpha * a[..., M, K] @ b[..., K, N] + beta * c.
//
// All three operands have the same rank >= 2 and the same batch sizes (the caller
// broadcasts: stride 0 on a batch dim of a or b reuses one matrix). Stride 0 on a batch
// dim of c means "sum over that dim" (the backward of broadcasting): beta applies once,
// every batch that writes the same c matrix adds into it, in batch order.
//
// The last two dims of every operand must be a BLAS matrix, see gemm_operand_ok(); the
// op layer calls contiguous() on the others before coming here, so a copy is always
// visible where it happens. Transposed views are passed to BLAS as transposes, never
// copied. On the CPU this is OpenBLAS's sgemm (float32) and dgemm (float64). On cuda,
// a and b may also be bfloat16 with c float32 (float accumulation): mixed precision.
#pragma once

#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

// True when the last two dims (R, C) of x, with strides (rs, cs), are a matrix BLAS takes
// as is: row-major (cs == 1, rs >= C) or column-major (rs == 1, cs >= R). The stride of a
// size-1 dim is irrelevant and is normalised.
bool gemm_operand_ok(const TensorRef& x);

namespace cpu {
void gemm(TensorRef c, TensorRef a, TensorRef b, double alpha, double beta);
}

namespace cuda {
void gemm(TensorRef c, TensorRef a, TensorRef b, double alpha, double beta);
}

inline void gemm(TensorRef c, TensorRef a, TensorRef b, double alpha, double beta) {
  profile::Scope scope(profile::Kind::Gemm);
  if (c.device.is_cpu()) return cpu::gemm(c, a, b, alpha, beta);
  LOOM_ON_CUDA(cuda::gemm(c, a, b, alpha, beta));
}

}  // namespace loom::kernels
