// Row-major batched GEMM on cuBLAS, the building block of the CUDA gemm and attention.
// Host code (no CUDA headers needed by callers).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/dtype.h"

namespace loom::kernels::cuda {

// For each i < a.size(): c[i] (M, N) = alpha * op(a[i]) op(b[i]) + beta * c[i], all
// row-major with leading dimensions lda, ldb, ldc; op transposes when ta / tb (the
// operand is stored as the transpose, cblas's CblasTrans). a, b, c hold device pointers.
// float32 (TF32 when cuda::allow_tf32()), float64, bfloat16 (float accumulation); with
// `c_dtype` float32 and `dtype` bfloat16, bfloat16 operands give a float32 result.
void gemm_rows(DType dtype, int device, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               double alpha, const std::vector<const void*>& a, int64_t lda,
               const std::vector<const void*>& b, int64_t ldb, double beta,
               const std::vector<void*>& c, int64_t ldc);
void gemm_rows(DType dtype, DType c_dtype, int device, bool ta, bool tb, int64_t M, int64_t N,
               int64_t K, double alpha, const std::vector<const void*>& a, int64_t lda,
               const std::vector<const void*>& b, int64_t ldb, double beta,
               const std::vector<void*>& c, int64_t ldc);

}  // namespace loom::kernels::cuda
