// Building blocks of the fused CPU attention kernels (kernels/cpu/attention.cpp for full
// attention, kernels/cpu/window_attention.cpp for sliding windows): row-major blocks and
// their BLAS products, head matrices of (B, heads, rows, D) operands, one row's masked
// softmax, attention dropout and the softmax backward of one row.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/row_reduce.h"
#include "kernels/cpu/vector_exp.h"
#include "kernels/random.h"

namespace loom::kernels::cpu::attention_blocks {

// A row-major block: rows x cols, rows ld elements apart, columns contiguous.
template <class T>
struct Mat {
  T* p;
  int64_t rows, cols, ld;
  T* row(int64_t i) const { return p + i * ld; }
  operator Mat<const T>() const { return {p, rows, cols, ld}; }
  // Rows [r0, r0 + n) and the first `c` columns.
  Mat sub(int64_t r0, int64_t n, int64_t c) const { return {row(r0), n, c, ld}; }
};

// c = alpha * op(a) op(b) + beta * c on one BLAS call (op: transpose when ta / tb), with
// K the inner dimension; c = beta * c when K is 0 (beta is 0 or 1 here).
template <class T>
inline void blas(bool ta, bool tb, Mat<T> c, Mat<const T> a, Mat<const T> b, int64_t K, T alpha,
                 T beta) {
  if (c.rows == 0 || c.cols == 0) return;
  if (K == 0) {
    if (beta == T(0))
      for (int64_t i = 0; i < c.rows; ++i) std::fill(c.row(i), c.row(i) + c.cols, T(0));
    return;
  }
  const auto oa = ta ? CblasTrans : CblasNoTrans, ob = tb ? CblasTrans : CblasNoTrans;
  const int M = int(c.rows), N = int(c.cols), lda = int(a.ld), ldb = int(b.ld), ldc = int(c.ld);
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, oa, ob, M, N, int(K), alpha, a.p, lda, b.p, ldb, beta, c.p, ldc);
  else
    cblas_dgemm(CblasRowMajor, oa, ob, M, N, int(K), alpha, a.p, lda, b.p, ldb, beta, c.p, ldc);
}

// c (M, N) = alpha * a (M, K) bᵀ + beta * c, b (N, K).
template <class T>
inline void gemm_nt(Mat<T> c, Mat<const T> a, Mat<const T> b, T alpha, T beta) {
  blas(false, true, c, a, b, a.cols, alpha, beta);
}
// c (M, N) = alpha * a (M, K) b (K, N) + beta * c.
template <class T>
inline void gemm_nn(Mat<T> c, Mat<const T> a, Mat<const T> b, T alpha, T beta) {
  blas(false, false, c, a, b, a.cols, alpha, beta);
}
// c (M, N) = alpha * aᵀ b + beta * c, a (K, M), b (K, N).
template <class T>
inline void gemm_tn(Mat<T> c, Mat<const T> a, Mat<const T> b, T alpha, T beta) {
  blas(true, false, c, a, b, a.rows, alpha, beta);
}

// Sizes of one call, from q (B, H, T, D) and k (B, KV, S, D).
struct Shape {
  int64_t B, H, KV, T, S, D;
  int64_t group() const { return H / KV; }
};

inline Shape shape_of(const TensorRef& q, const TensorRef& k) {
  LOOM_ASSERT(q.dim() == 4 && k.dim() == 4);
  return {q.sizes[0], q.sizes[1], k.sizes[1], q.sizes[2], k.sizes[2], q.sizes[3]};
}

// The (rows, D) matrix of head `h` of batch `b` in a (B, heads, rows, D) operand.
template <class T>
inline Mat<T> head(const TensorRef& x, int64_t b, int64_t h) {
  LOOM_DEBUG_ASSERT(x.sizes[3] <= 1 || x.strides[3] == 1);
  const int64_t rows = x.sizes[2], cols = x.sizes[3];
  T* p = x.ptr<T>() + b * x.strides[0] + h * x.strides[1];
  return {p, rows, cols, rows <= 1 ? cols : x.strides[2]};
}

// The head's matrix of a gradient the backward accumulates into, zeroed; an empty Mat when
// the gradient is not wanted (x.data null). Gradients may be strided views like the inputs
// (e.g. heads of a (B, S, KV * D) buffer), so rows are cleared one by one.
template <class T>
inline Mat<T> zeroed_head(const TensorRef& x, int64_t b, int64_t h) {
  if (!x.data) return Mat<T>{};
  const Mat<T> m = head<T>(x, b, h);
  for (int64_t i = 0; i < m.rows; ++i) std::fill(m.row(i), m.row(i) + m.cols, T(0));
  return m;
}

// One row of a (B, H, T, S) ref stretched by broadcasting: pointer and column stride.
template <class T>
struct RowRef {
  const T* p = nullptr;
  int64_t stride = 0;
};
template <class T>
inline RowRef<T> row_of(const TensorRef& x, int64_t b, int64_t h, int64_t i) {
  if (!x.data) return {};
  return {x.ptr<const T>() + b * x.strides[0] + h * x.strides[1] + i * x.strides[2], x.strides[3]};
}

// Number of keys query i may see under the causal rule (all S without it): j <= S - T + i.
inline int64_t visible_keys(const Shape& s, int64_t i, bool causal) {
  return causal ? std::clamp<int64_t>(s.S - s.T + i + 1, 0, s.S) : s.S;
}

// Scores z (scale already applied) of one query row -> probabilities, in place: add the
// bias, set hidden keys to -inf, then a stable softmax (sum in double). Keys from
// `visible` on (causally hidden) get 0 without being computed. A row with no visible key
// becomes zeros rather than NaN.
template <class T>
inline void softmax_row(T* z, int64_t S, int64_t visible, RowRef<bool> mask, RowRef<T> bias) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  std::fill(z + visible, z + S, T(0));
  if (bias.p)
    for (int64_t j = 0; j < visible; ++j) z[j] += bias.p[j * bias.stride];
  if (mask.p)
    for (int64_t j = 0; j < visible; ++j)
      if (!mask.p[j * mask.stride]) z[j] = kNegInf;
  const T m = row_max(z, visible);
  if (m == kNegInf) {
    std::fill(z, z + visible, T(0));
    return;
  }
  // exp in its own loop: a running sum beside the call would be spilled around it.
  exp_shifted(z, z, m, visible);
  const double sum = lane_sum(visible, [&](int64_t j) { return double(z[j]); });
  const T inv = T(1.0 / sum);
  for (int64_t j = 0; j < visible; ++j) z[j] *= inv;
}

// Note [Dropped weights keep their sign]: the backward needs P everywhere (dZ = P * (dP -
// rowsum(dP * P)) is not zero where a weight was dropped) and which weights were dropped.
// Rather than regenerate the mask or save it beside P, the saved probs hold -P where the
// weight was dropped: P >= 0, so the sign bit (set on -0 too) is free to carry it.

// Dropout on one (T, S) block of probabilities P whose first weight uses Philox counter
// `counter`: w = P * keep / (1 - p). With `mark`, dropped entries of P are negated (see
// the Note); w may be P when not marking. Zero weights (hidden keys) stay zero, and
// unmarked, whatever the draw. The keep bits come 64 at a time from
// philox_bernoulli_bits: fill_bernoulli's stream, without making the uniforms.
template <class T>
inline void dropout_block(T* w, T* P, int64_t n, uint64_t counter, const AttentionParams& p,
                          bool mark) {
  const double keep = 1.0 - p.dropout_p;
  const T scale = T(1.0 / keep);
  for (int64_t j0 = 0; j0 < n; j0 += 64) {
    const int64_t m = std::min<int64_t>(64, n - j0);
    uint64_t bits;
    philox_bernoulli_bits(&bits, m, counter + uint64_t(j0), p.seed, keep);
    for (int64_t j = j0; j < j0 + m; ++j) {
      const T pj = P[j];
      const bool kept = (bits >> (j - j0)) & 1u;
      w[j] = kept ? pj * scale : T(0);
      if (mark && !kept && pj != T(0)) P[j] = -pj;
    }
  }
}

// The forward's weights from saved, sign-marked probs: w = P / (1 - p) where kept, else 0.
template <class T>
inline void weights_from_marked(T* w, const T* P, int64_t n, T scale) {
  for (int64_t j = 0; j < n; ++j) w[j] = std::signbit(P[j]) ? T(0) : P[j] * scale;
}

// One row of dZ = P * (dP - rowsum(dP * P)), in place over dPw = grad_out vᵀ (the gradient
// of the weights applied to v); dP = dPw / (1 - p) where kept, 0 where dropped (marked P).
template <class T>
inline void grad_scores_row(T* z, const T* P, int64_t S, bool drop, T scale) {
  if (drop) {
    for (int64_t j = 0; j < S; ++j) z[j] = std::signbit(P[j]) ? T(0) : z[j] * scale;
    const T d = T(lane_sum(S, [&](int64_t j) { return double(z[j]) * double(std::abs(P[j])); }));
    for (int64_t j = 0; j < S; ++j) z[j] = std::abs(P[j]) * (z[j] - d);
    return;
  }
  const T d = T(lane_sum(S, [&](int64_t j) { return double(z[j]) * double(P[j]); }));
  for (int64_t j = 0; j < S; ++j) z[j] = P[j] * (z[j] - d);
}

// exp and the row passes cost several times a multiply-add: weigh a score accordingly.
constexpr int64_t kScoreCost = 8;

}  // namespace loom::kernels::cpu::attention_blocks
