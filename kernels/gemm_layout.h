// How a GEMM operand's last two dims map onto BLAS (row-major / transposed, leading
// dimension) and how batch dims fold into a matrix dim: the planning the CPU (OpenBLAS)
// and CUDA (cuBLAS) GEMMs share (see kernels/gemm.h for the semantics).
#pragma once

#include <algorithm>
#include <climits>
#include <utility>
#include <vector>

#include "kernels/pointwise.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels::gemm_layout {

// One operand's matrix as BLAS sees it: transposed or not, and its leading dimension.
struct Layout {
  bool ok = false;
  bool trans = false;  // stored column-major: pass as CblasTrans
  int64_t ld = 1;
};

// The (rows, cols) matrix with strides (rs, cs). The stride of a size-1 dim is irrelevant,
// so such a leading dimension is normalised to the smallest value BLAS accepts.
inline Layout classify(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  const int64_t r1 = std::max<int64_t>(rows, 1), c1 = std::max<int64_t>(cols, 1);
  if (rows == 0 || cols == 0) return {true, false, c1};  // no element is ever read
  if ((cols <= 1 || cs == 1) && (rows <= 1 || rs >= c1)) return {true, false, rows <= 1 ? c1 : rs};
  if ((rows <= 1 || rs == 1) && (cols <= 1 || cs >= r1)) return {true, true, cols <= 1 ? r1 : cs};
  return {};
}

inline Layout classify(const TensorRef& x) {
  const int n = x.dim();
  return classify(x.sizes[n - 2], x.sizes[n - 1], x.strides[n - 2], x.strides[n - 1]);
}

// x with its last two dims swapped (a view of x^T).
inline TensorRef transposed(TensorRef x) {
  const int n = x.dim();
  std::swap(x.sizes[n - 2], x.sizes[n - 1]);
  std::swap(x.strides[n - 2], x.strides[n - 1]);
  return x;
}

// x's matrix alone: the last two dims, batch dims dropped.
inline TensorRef matrix_of(TensorRef x) {
  const int n = x.dim();
  x.sizes = {x.sizes[n - 2], x.sizes[n - 1]};
  x.strides = {x.strides[n - 2], x.strides[n - 1]};
  return x;
}

// x's batch dims merged into matrix dim `which` (0: rows, 1: cols), as a 2-D ref in `out`,
// when x's strides allow it; false (out untouched) otherwise. x has a batch dim.
inline bool fold_batch(const TensorRef& x, int which, TensorRef& out) {
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

// c = beta * c on every distinct element of c (stride-0 dims visited once): the whole
// product when K is 0.
inline void scale_by_beta(TensorRef c, double beta) {
  for (int d = 0; d < c.dim(); ++d)
    if (c.strides[d] == 0) c.sizes[d] = 1;
  if (c.numel() == 0 || beta == 1.0) return;
  if (beta == 0.0)
    fill(c, 0.0);
  else
    unary_forward(c, c, Affine{beta, 0.0});
}

inline bool all_batch_strides_zero(const TensorRef& x) {
  for (int d = 0; d < x.dim() - 2; ++d)
    if (x.strides[d] != 0) return false;
  return true;
}

// One batched BLAS call: for each batch i, c_i (M, N) = alpha * op(a_i) op(b_i) + beta * c_i
// with c_i row-major; a_i, b_i, c_i start at the element offsets oa[i], ob[i], oc[i].
struct MatrixCall {
  int64_t M = 0, N = 0, K = 0;
  Layout la, lb;
  int64_t ldc = 1;
  double beta = 0;
  std::vector<int64_t> oc, oa, ob;
};

// What a gemm(c, a, b, alpha, beta) does, device-agnostic: nothing (M or N is 0), only
// c = beta * c (K is 0), or `calls` in order. c, a, b are the normalised operands the
// offsets refer to (data pointers unchanged: a column-major c was turned into c^T = b^T a^T).
struct GemmPlan {
  bool scale_only = false;
  TensorRef c, a, b;
  std::vector<MatrixCall> calls;
};

// Checks the operands (see kernels/gemm.h) and plans the calls. Batches fold into one
// matrix when strides allow (c and a as [B*M, ...] row blocks with b shared, or a sum over
// the batch folded into K); otherwise one call per "visit" of c: a c matrix shared by
// several batches (stride-0 batch dims: a sum) gets them in batch order, the first with
// beta and the rest with beta = 1.
inline GemmPlan plan_gemm(TensorRef c, TensorRef a, TensorRef b, double beta) {
  const int n = c.dim();
  LOOM_ASSERT(n >= 2 && a.dim() == n && b.dim() == n);
  LOOM_ASSERT(a.dtype == b.dtype &&
              (a.dtype == c.dtype || (a.dtype == DType::BF16 && c.dtype == DType::F32)));
  LOOM_ASSERT(a.device == c.device && b.device == c.device);
  const int64_t M = c.sizes[n - 2], N = c.sizes[n - 1], K = a.sizes[n - 1];
  LOOM_ASSERT(a.sizes[n - 2] == M && b.sizes[n - 2] == K && b.sizes[n - 1] == N);
  for (int d = 0; d < n - 2; ++d) LOOM_ASSERT(a.sizes[d] == c.sizes[d] && b.sizes[d] == c.sizes[d]);
  for (const TensorRef* x : {&c, &a, &b}) LOOM_ASSERT(classify(*x).ok);
  for (int64_t v : {M, N, K, classify(c).ld, classify(a).ld, classify(b).ld})
    LOOM_CHECK(v <= INT_MAX, "gemm: c ", c.sizes, " = a ", a.sizes, " @ b ", b.sizes,
               ": a size or leading dimension exceeds BLAS's 32-bit int range");
  GemmPlan plan;
  if (M == 0 || N == 0) return plan;
  if (K == 0 || c.numel() == 0) {  // an empty sum: c = beta * c
    plan.scale_only = true;
    plan.c = c;
    return plan;
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
  plan.c = c, plan.a = a, plan.b = b;
  const int nb = c.dim() - 2;
  TensorRef c2 = matrix_of(c), a2 = matrix_of(a), b2 = matrix_of(b);
  bool folded = nb == 0;
  if (nb > 0 && all_batch_strides_zero(b))
    folded = fold_batch(c, 0, c2) && fold_batch(a, 0, a2);
  else if (nb > 0 && all_batch_strides_zero(c))
    folded = fold_batch(a, 1, a2) && fold_batch(b, 0, b2);
  if (folded) {
    LOOM_ASSERT(!classify(c2).trans);
    MatrixCall call{c2.sizes[0],     c2.sizes[1], a2.sizes[1], classify(a2), classify(b2),
                    classify(c2).ld, beta,        {0},         {0},          {0}};
    plan.calls.push_back(std::move(call));
    return plan;
  }
  // visit: the batch's linear index over c's stride-0 batch dims (0 for its first use).
  const Layout lc = classify(c), la = classify(a), lb = classify(b);
  const int64_t batches = Dims(c.sizes.begin(), c.sizes.begin() + nb).numel();
  int64_t idx[Dims::kMax] = {};
  for (int64_t i = 0; i < batches; ++i) {
    int64_t oc = 0, oa = 0, ob = 0, visit = 0;
    for (int d = 0; d < nb; ++d) {
      oc += idx[d] * c.strides[d];
      oa += idx[d] * a.strides[d];
      ob += idx[d] * b.strides[d];
      if (c.strides[d] == 0) visit = visit * c.sizes[d] + idx[d];
    }
    while (int64_t(plan.calls.size()) <= visit)
      plan.calls.push_back({M, N, K, la, lb, lc.ld, plan.calls.empty() ? beta : 1.0, {}, {}, {}});
    MatrixCall& call = plan.calls[size_t(visit)];
    call.oc.push_back(oc), call.oa.push_back(oa), call.ob.push_back(ob);
    for (int d = nb - 1; d >= 0 && ++idx[d] == c.sizes[d]; --d) idx[d] = 0;
  }
  return plan;
}

}  // namespace loom::kernels::gemm_layout
