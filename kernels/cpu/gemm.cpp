// Batched GEMM on the CPU through OpenBLAS (cblas_sgemm / cblas_dgemm), see kernels/gemm.h.
//
// Each operand's last two dims are classified as row-major (passed as CblasNoTrans) or
// column-major (CblasTrans, i.e. a transposed view) with its leading dimension; a
// column-major c is handled as c^T = b^T a^T. Batches are then, in order of preference:
//  - folded into M, one call: c and a are [B*M, ...] row blocks, b is shared (stride 0),
//    e.g. x (B, T, C) @ w (C, D);
//  - folded into K, one call: c is shared (stride 0, a sum) and a's columns / b's rows
//    run on through the batch, e.g. the weight gradient x^T (C, B*T) @ g (B*T, D);
//  - otherwise one BLAS call per batch, in batch order (OpenBLAS threads each call).
#include "kernels/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <type_traits>

#include "kernels/cpu/common.h"
#include "kernels/gemm_layout.h"

namespace loom::kernels {
namespace {

using namespace gemm_layout;

// One BLAS call: c (M, N) = alpha * a (M, K) @ b (K, N) + beta * c, c row-major.
template <class T>
void blas(T* c, int64_t ldc, const T* a, Layout la, const T* b, Layout lb, int64_t M, int64_t N,
          int64_t K, double alpha, double beta) {
  const auto ta = la.trans ? CblasTrans : CblasNoTrans, tb = lb.trans ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, int(M), int(N), int(K), float(alpha), a, int(la.ld), b,
                int(lb.ld), float(beta), c, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, int(M), int(N), int(K), alpha, a, int(la.ld), b, int(lb.ld),
                beta, c, int(ldc));
}

}  // namespace

bool gemm_operand_ok(const TensorRef& x) { return x.dim() >= 2 && classify(x).ok; }

void cpu::gemm(TensorRef c, TensorRef a, TensorRef b, double alpha, double beta) {
  const GemmPlan plan = plan_gemm(c, a, b, beta);
  if (plan.scale_only) return scale_by_beta(plan.c, beta);
  dispatch_floating(c.dtype, "gemm", [&]<class T>() {
    T* pc = plan.c.ptr<T>();
    const T *pa = plan.a.ptr<const T>(), *pb = plan.b.ptr<const T>();
    for (const MatrixCall& m : plan.calls)
      for (size_t i = 0; i < m.oc.size(); ++i)
        blas<T>(pc + m.oc[i], m.ldc, pa + m.oa[i], m.la, pb + m.ob[i], m.lb, m.M, m.N, m.K, alpha,
                m.beta);
  });
}

}  // namespace loom::kernels
