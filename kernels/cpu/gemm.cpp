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
// Large float32 products go to oneDNN's sgemm when loom is built with it (LOOM_HAVE_DNNL):
// its JIT kernels run the model's GEMMs 5-12% faster than OpenBLAS 0.3.21 on Zen 4, while
// OpenBLAS's lower per-call cost wins below ~64x64x64 (bench_matmul, bench/README.md).
#include "kernels/gemm.h"

#include <cblas.h>
#ifdef LOOM_HAVE_DNNL
#include <dnnl.h>
#endif

#include <algorithm>
#include <climits>
#include <type_traits>

#include "kernels/cpu/common.h"
#include "kernels/gemm_layout.h"

namespace loom::kernels {
namespace {

using namespace gemm_layout;

#ifdef LOOM_HAVE_DNNL
constexpr int64_t kDnnlMinProduct = int64_t(64) * 64 * 64;  // M*N*K
#endif

// One BLAS call: c (M, N) = alpha * a (M, K) @ b (K, N) + beta * c, c row-major.
template <class T>
void blas(T* c, int64_t ldc, const T* a, Layout la, const T* b, Layout lb, int64_t M, int64_t N,
          int64_t K, double alpha, double beta) {
#ifdef LOOM_HAVE_DNNL
  if constexpr (std::is_same_v<T, float>) {
    if (M * N * K >= kDnnlMinProduct) {
      const dnnl_status_t s = dnnl_sgemm(la.trans ? 'T' : 'N', lb.trans ? 'T' : 'N', M, N, K,
                                         float(alpha), a, la.ld, b, lb.ld, float(beta), c, ldc);
      LOOM_CHECK(s == dnnl_success, "gemm: oneDNN's sgemm failed (status ", int(s), ") on ", M, "x",
                 N, "x", K);
      return;
    }
  }
#endif
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
  LOOM_CHECK(a.dtype == c.dtype, "gemm: ", a.dtype, " operands with a ", c.dtype,
             " result: mixed precision runs on cuda only; convert the operands on the cpu");
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
