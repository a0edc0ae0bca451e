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
#include "kernels/pointwise.h"

namespace loom::kernels {
namespace {

// One operand's matrix as BLAS sees it: transposed or not, and its leading dimension.
struct Layout {
  bool ok = false;
  bool trans = false;  // stored column-major: pass as CblasTrans
  int64_t ld = 1;
};

// The (rows, cols) matrix with strides (rs, cs). The stride of a size-1 dim is irrelevant,
// so such a leading dimension is normalised to the smallest value BLAS accepts.
Layout classify(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  const int64_t r1 = std::max<int64_t>(rows, 1), c1 = std::max<int64_t>(cols, 1);
  if (rows == 0 || cols == 0) return {true, false, c1};  // no element is ever read
  if ((cols <= 1 || cs == 1) && (rows <= 1 || rs >= c1)) return {true, false, rows <= 1 ? c1 : rs};
  if ((rows <= 1 || rs == 1) && (cols <= 1 || cs >= r1)) return {true, true, cols <= 1 ? r1 : cs};
  return {};
}

Layout classify(const TensorRef& x) {
  const int n = x.dim();
  return classify(x.sizes[n - 2], x.sizes[n - 1], x.strides[n - 2], x.strides[n - 1]);
}

// x with its last two dims swapped (a view of x^T).
TensorRef transposed(TensorRef x) {
  const int n = x.dim();
  std::swap(x.sizes[n - 2], x.sizes[n - 1]);
  std::swap(x.strides[n - 2], x.strides[n - 1]);
  return x;
}

// x's matrix alone: the last two dims, batch dims dropped.
TensorRef matrix_of(TensorRef x) {
  const int n = x.dim();
  x.sizes = {x.sizes[n - 2], x.sizes[n - 1]};
  x.strides = {x.strides[n - 2], x.strides[n - 1]};
  return x;
}

// x's batch dims merged into matrix dim `which` (0: rows, 1: cols), as a 2-D ref in `out`,
// when x's strides allow it; false (out untouched) otherwise. x has a batch dim.
bool fold_batch(const TensorRef& x, int which, TensorRef& out) {
  const int n = x.dim(), nb = n - 2, md = nb + which;
  int64_t size = x.sizes[md];
  const int64_t stride = size == 1 ? x.strides[nb - 1] : x.strides[md];
  for (int d = nb - 1; d >= 0; --d) {
    if (x.strides[d] != size * stride) return false;
    size *= x.sizes[d];
  }
  TensorRef m = matrix_of(x);
  m.sizes[which] = size;
  m.strides[which] = stride;
  if (size > INT_MAX || !classify(m).ok) return false;
  out = m;
  return true;
}

bool all_batch_strides_zero(const TensorRef& x) {
  for (int d = 0; d < x.dim() - 2; ++d)
    if (x.strides[d] != 0) return false;
  return true;
}

// c = beta * c on every distinct element of c (stride-0 dims visited once).
void scale(TensorRef c, double beta) {
  for (int d = 0; d < c.dim(); ++d)
    if (c.strides[d] == 0) c.sizes[d] = 1;
  if (c.numel() == 0 || beta == 1.0) return;
  if (beta == 0.0)
    cpu::fill(c, 0.0);
  else
    cpu::unary_forward(c, c, Affine{beta, 0.0});
}

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

// Runs the (already normalised) problem: c row-major, no size-1 batch dims.
template <class T>
void run(const TensorRef& c, const TensorRef& a, const TensorRef& b, double alpha, double beta) {
  const int n = c.dim(), nb = n - 2;
  const int64_t M = c.sizes[n - 2], N = c.sizes[n - 1], K = a.sizes[n - 1];
  TensorRef c2 = matrix_of(c), a2 = matrix_of(a), b2 = matrix_of(b);
  bool folded = false;
  if (nb > 0 && all_batch_strides_zero(b))
    folded = fold_batch(c, 0, c2) && fold_batch(a, 0, a2);
  else if (nb > 0 && all_batch_strides_zero(c))
    folded = fold_batch(a, 1, a2) && fold_batch(b, 0, b2);
  if (folded) {  // one call
    LOOM_ASSERT(!classify(c2).trans);
    blas<T>(c2.ptr<T>(), classify(c2).ld, a2.ptr<T>(), classify(a2), b2.ptr<T>(), classify(b2),
            c2.sizes[0], N, a2.sizes[1], alpha, beta);
    return;
  }
  const Layout lc = classify(c), la = classify(a), lb = classify(b);
  const int64_t batches = Dims(c.sizes.begin(), c.sizes.begin() + nb).numel();
  int64_t idx[Dims::kMax] = {};
  for (int64_t i = 0; i < batches; ++i) {
    int64_t oc = 0, oa = 0, ob = 0;
    bool first_visit = true;  // of this c matrix: later visits (stride-0 dims) accumulate
    for (int d = 0; d < nb; ++d) {
      oc += idx[d] * c.strides[d];
      oa += idx[d] * a.strides[d];
      ob += idx[d] * b.strides[d];
      if (c.strides[d] == 0 && idx[d] != 0) first_visit = false;
    }
    blas<T>(c.ptr<T>() + oc, lc.ld, a.ptr<T>() + oa, la, b.ptr<T>() + ob, lb, M, N, K, alpha,
            first_visit ? beta : 1.0);
    for (int d = nb - 1; d >= 0 && ++idx[d] == c.sizes[d]; --d) idx[d] = 0;
  }
}

}  // namespace

bool gemm_operand_ok(const TensorRef& x) { return x.dim() >= 2 && classify(x).ok; }

void cpu::gemm(TensorRef c, TensorRef a, TensorRef b, double alpha, double beta) {
  const int n = c.dim();
  LOOM_ASSERT(n >= 2 && a.dim() == n && b.dim() == n);
  LOOM_ASSERT(a.dtype == c.dtype && b.dtype == c.dtype);
  const int64_t M = c.sizes[n - 2], N = c.sizes[n - 1], K = a.sizes[n - 1];
  LOOM_ASSERT(a.sizes[n - 2] == M && b.sizes[n - 2] == K && b.sizes[n - 1] == N);
  for (int d = 0; d < n - 2; ++d) LOOM_ASSERT(a.sizes[d] == c.sizes[d] && b.sizes[d] == c.sizes[d]);
  LOOM_ASSERT(gemm_operand_ok(c) && gemm_operand_ok(a) && gemm_operand_ok(b));
  for (int64_t v : {M, N, K, classify(c).ld, classify(a).ld, classify(b).ld})
    LOOM_CHECK(v <= INT_MAX, "gemm: c ", c.sizes, " = a ", a.sizes, " @ b ", b.sizes,
               ": a size or leading dimension exceeds BLAS's 32-bit int range");

  if (M == 0 || N == 0) return;
  if (K == 0 || c.numel() == 0) {  // an empty sum: c = beta * c
    scale(c, beta);
    return;
  }
  // Column-major c: compute c^T = b^T a^T instead, so c is row-major below.
  if (classify(c).trans) {
    const TensorRef at = transposed(a);
    a = transposed(b);
    b = at;
    c = transposed(c);
  }
  // Size-1 batch dims carry nothing.
  for (int d = n - 3; d >= 0; --d) {
    if (c.sizes[d] != 1) continue;
    for (TensorRef* x : {&c, &a, &b}) {
      x->sizes.erase(d);
      x->strides.erase(d);
    }
  }
  dispatch_floating(c.dtype, "gemm", [&]<class T>() { run<T>(c, a, b, alpha, beta); });
}

}  // namespace loom::kernels
