// Fused attention on the CPU (see kernels/attention.h). Threads split (batch, head) blocks
// in the forward and (batch, kv head) blocks in the backward, so the kv-head gradients sum
// their query heads in order on one thread. Within a block the products are small matrix
// products: the scores and dP are "a bᵀ" products, the rest "a b" and "aᵀ b".
#include "kernels/attention.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/cpu/row_reduce.h"
#include "kernels/cpu/vector_exp.h"
#include "kernels/random.h"

namespace loom::kernels::cpu {
namespace {

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
void blas(bool ta, bool tb, Mat<T> c, Mat<const T> a, Mat<const T> b, int64_t K, T alpha, T beta) {
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
void gemm_nt(Mat<T> c, Mat<const T> a, Mat<const T> b, T alpha, T beta) {
  blas(false, true, c, a, b, a.cols, alpha, beta);
}
// c (M, N) = alpha * a (M, K) b (K, N) + beta * c.
template <class T>
void gemm_nn(Mat<T> c, Mat<const T> a, Mat<const T> b, T alpha, T beta) {
  blas(false, false, c, a, b, a.cols, alpha, beta);
}
// c (M, N) = alpha * aᵀ b + beta * c, a (K, M), b (K, N).
template <class T>
void gemm_tn(Mat<T> c, Mat<const T> a, Mat<const T> b, T alpha, T beta) {
  blas(true, false, c, a, b, a.rows, alpha, beta);
}

// Sizes of one call, from q (B, H, T, D) and k (B, KV, S, D).
struct Shape {
  int64_t B, H, KV, T, S, D;
  int64_t group() const { return H / KV; }
};

Shape shape_of(const TensorRef& q, const TensorRef& k) {
  LOOM_ASSERT(q.dim() == 4 && k.dim() == 4);
  return {q.sizes[0], q.sizes[1], k.sizes[1], q.sizes[2], k.sizes[2], q.sizes[3]};
}

// The (rows, D) matrix of head `h` of batch `b` in a (B, heads, rows, D) operand.
template <class T>
Mat<T> head(const TensorRef& x, int64_t b, int64_t h) {
  LOOM_DEBUG_ASSERT(x.sizes[3] <= 1 || x.strides[3] == 1);
  const int64_t rows = x.sizes[2], cols = x.sizes[3];
  T* p = x.ptr<T>() + b * x.strides[0] + h * x.strides[1];
  return {p, rows, cols, rows <= 1 ? cols : x.strides[2]};
}

// One row of a (B, H, T, S) ref stretched by broadcasting: pointer and column stride.
template <class T>
struct RowRef {
  const T* p = nullptr;
  int64_t stride = 0;
};
template <class T>
RowRef<T> row_of(const TensorRef& x, int64_t b, int64_t h, int64_t i) {
  if (!x.data) return {};
  return {x.ptr<const T>() + b * x.strides[0] + h * x.strides[1] + i * x.strides[2], x.strides[3]};
}

// Number of keys query i may see under the causal rule (all S without it): j <= S - T + i.
int64_t visible_keys(const Shape& s, int64_t i, bool causal) {
  return causal ? std::clamp<int64_t>(s.S - s.T + i + 1, 0, s.S) : s.S;
}

// Scores z (scale already applied) of one query row -> probabilities, in place: add the
// bias, set hidden keys to -inf, then a stable softmax (sum in double). Keys from
// `visible` on (causally hidden) get 0 without being computed. A row with no visible key
// becomes zeros rather than NaN.
template <class T>
void softmax_row(T* z, int64_t S, int64_t visible, RowRef<bool> mask, RowRef<T> bias) {
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
// unmarked, whatever the draw. The uniforms are drawn 64 at a time (vectorised Philox).
template <class T>
void dropout_block(T* w, T* P, int64_t n, uint64_t counter, const AttentionParams& p, bool mark) {
  const double keep = 1.0 - p.dropout_p;
  const T scale = T(1.0 / keep);
  double u[64];  // the uniforms of fill_bernoulli's stream for this block, 64 at a time
  for (int64_t j0 = 0; j0 < n; j0 += 64) {
    const int64_t m = std::min<int64_t>(64, n - j0);
    philox_uniform01(u, m, counter + uint64_t(j0), p.seed);
    for (int64_t j = j0; j < j0 + m; ++j) {
      const T pj = P[j];
      const bool kept = u[j - j0] < keep;
      w[j] = kept ? pj * scale : T(0);
      if (mark && !kept && pj != T(0)) P[j] = -pj;
    }
  }
}

// The forward's weights from saved, sign-marked probs: w = P / (1 - p) where kept, else 0.
template <class T>
void weights_from_marked(T* w, const T* P, int64_t n, T scale) {
  for (int64_t j = 0; j < n; ++j) w[j] = std::signbit(P[j]) ? T(0) : P[j] * scale;
}

// One row of dZ = P * (dP - rowsum(dP * P)), in place over dPw = grad_out vᵀ (the gradient
// of the weights applied to v); dP = dPw / (1 - p) where kept, 0 where dropped (marked P).
template <class T>
void grad_scores_row(T* z, const T* P, int64_t S, bool drop, T scale) {
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

// Note [Causal row chunks]: under the causal rule the keys a query sees grow with i, so
// each block's rows are processed in chunks of kCausalRows, every product limited to the
// keys the chunk's last row sees: for T = S about half the multiply-adds are skipped. The
// keys beyond are zero weights and are never computed. Without the rule one chunk is the
// whole block.
constexpr int64_t kCausalRows = 32;

struct Chunk {
  int64_t i0, rows, keys;  // query rows [i0, i0 + rows) see at most keys [0, keys)
};
template <class F>
void for_each_chunk(const Shape& s, bool causal, F f) {
  const int64_t n = causal ? kCausalRows : std::max<int64_t>(s.T, 1);
  for (int64_t i0 = 0; i0 < s.T; i0 += n) {
    const int64_t rows = std::min(n, s.T - i0);
    f(Chunk{i0, rows, visible_keys(s, i0 + rows - 1, causal)});
  }
}

template <class T>
void forward(const TensorRef& out, const TensorRef& probs, const TensorRef& q, const TensorRef& k,
             const TensorRef& v, const TensorRef& mask, const TensorRef& bias,
             const AttentionParams& p) {
  const Shape s = shape_of(q, k);
  const int64_t TS = s.T * s.S;
  const bool drop = p.dropout_p > 0, save = probs.data != nullptr;
  parallel_for(s.B * s.H, TS * (2 * s.D + kScoreCost), [&](int64_t r0, int64_t r1) {
    // P when it is not saved, else dropout(P) when there is dropout.
    std::vector<T> scratch(size_t(!save || drop ? TS : 0));
    for (int64_t bh = r0; bh < r1; ++bh) {
      const int64_t b = bh / s.H, h = bh % s.H, kvh = h / s.group();
      const Mat<T> P{save ? probs.ptr<T>() + bh * TS : scratch.data(), s.T, s.S, s.S};
      const Mat<const T> Q = head<const T>(q, b, h), K = head<const T>(k, b, kvh);
      for_each_chunk(s, p.causal, [&](Chunk c) {
        gemm_nt<T>(P.sub(c.i0, c.rows, c.keys), Q.sub(c.i0, c.rows, s.D), K.sub(0, c.keys, s.D),
                   T(p.scale), T(0));
        for (int64_t i = c.i0; i < c.i0 + c.rows; ++i)
          softmax_row(P.row(i), s.S, visible_keys(s, i, p.causal), row_of<bool>(mask, b, h, i),
                      row_of<T>(bias, b, h, i));
      });
      Mat<T> W = P;  // the weights applied to v: P, or dropout(P)
      if (drop) {
        W.p = scratch.data();
        dropout_block(W.p, P.p, TS, p.offset + uint64_t(bh * TS), p, save);
      }
      const Mat<T> O = head<T>(out, b, h);
      const Mat<const T> V = head<const T>(v, b, kvh);
      for_each_chunk(s, p.causal, [&](Chunk c) {
        gemm_nn<T>(O.sub(c.i0, c.rows, s.D), W.sub(c.i0, c.rows, c.keys), V.sub(0, c.keys, s.D),
                   T(1), T(0));
      });
    }
  });
}

// The gradients of one query head h of batch b, accumulated into its kv head's dk and dv
// (dZ, w: (T, S) scratch).
template <class T>
void backward_head(const TensorRef& grad_q, Mat<T> dK, Mat<T> dV, const TensorRef& grad_out,
                   const TensorRef& q, Mat<const T> K, Mat<const T> V, const TensorRef& probs,
                   const AttentionParams& p, const Shape& s, int64_t b, int64_t h, T* dz, T* w) {
  const bool drop = p.dropout_p > 0;
  const T keep_scale = T(1.0 / (1.0 - p.dropout_p));
  const Mat<const T> P{probs.ptr<const T>() + (b * s.H + h) * s.T * s.S, s.T, s.S, s.S};
  const Mat<const T> dO = head<const T>(grad_out, b, h), Q = head<const T>(q, b, h);
  const Mat<T> dQ = grad_q.data ? head<T>(grad_q, b, h) : Mat<T>{};
  Mat<const T> W = P;  // the weights the forward applied to v
  if (drop) {
    weights_from_marked(w, P.p, s.T * s.S, keep_scale);
    W.p = w;
  }
  const Mat<T> dZ{dz, s.T, s.S, s.S};
  for_each_chunk(s, p.causal, [&](Chunk c) {
    const Mat<const T> dOc = dO.sub(c.i0, c.rows, s.D);
    if (dV.p) gemm_tn<T>(dV.sub(0, c.keys, s.D), W.sub(c.i0, c.rows, c.keys), dOc, T(1), T(1));
    if (!dQ.p && !dK.p) return;
    const Mat<T> dZc = dZ.sub(c.i0, c.rows, c.keys);
    gemm_nt<T>(dZc, dOc, V.sub(0, c.keys, s.D), T(1), T(0));
    for (int64_t i = 0; i < c.rows; ++i)
      grad_scores_row(dZc.row(i), P.row(c.i0 + i), c.keys, drop, keep_scale);
    if (dQ.p) gemm_nn<T>(dQ.sub(c.i0, c.rows, s.D), dZc, K.sub(0, c.keys, s.D), T(p.scale), T(0));
    if (dK.p) gemm_tn<T>(dK.sub(0, c.keys, s.D), dZc, Q.sub(c.i0, c.rows, s.D), T(p.scale), T(1));
  });
}

template <class T>
void backward(const TensorRef& grad_q, const TensorRef& grad_k, const TensorRef& grad_v,
              const TensorRef& grad_out, const TensorRef& q, const TensorRef& k, const TensorRef& v,
              const TensorRef& probs, const AttentionParams& p) {
  const Shape s = shape_of(q, k);
  const int64_t TS = s.T * s.S, SD = s.S * s.D;
  parallel_for(s.B * s.KV, s.group() * TS * (4 * s.D + kScoreCost), [&](int64_t r0, int64_t r1) {
    std::vector<T> w(size_t(p.dropout_p > 0 ? TS : 0)), dz(static_cast<size_t>(TS));
    for (int64_t bk = r0; bk < r1; ++bk) {
      const int64_t b = bk / s.KV, kvh = bk % s.KV;
      // dk, dv: (S, D) sums over the group's query heads, in head order.
      const Mat<T> dK = grad_k.data ? Mat<T>{grad_k.ptr<T>() + bk * SD, s.S, s.D, s.D} : Mat<T>{};
      const Mat<T> dV = grad_v.data ? Mat<T>{grad_v.ptr<T>() + bk * SD, s.S, s.D, s.D} : Mat<T>{};
      for (const Mat<T>& m : {dK, dV})
        if (m.p) std::fill(m.p, m.p + SD, T(0));
      for (int64_t h = kvh * s.group(); h < (kvh + 1) * s.group(); ++h)
        backward_head<T>(grad_q, dK, dV, grad_out, q, head<const T>(k, b, kvh),
                         head<const T>(v, b, kvh), probs, p, s, b, h, dz.data(), w.data());
    }
  });
}

}  // namespace

void attention_forward(TensorRef out, TensorRef probs, TensorRef q, TensorRef k, TensorRef v,
                       TensorRef mask, TensorRef bias, const AttentionParams& p) {
  dispatch_floating(q.dtype, "scaled_dot_product_attention",
                    [&]<class T>() { forward<T>(out, probs, q, k, v, mask, bias, p); });
}

void attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v, TensorRef grad_out,
                        TensorRef q, TensorRef k, TensorRef v, TensorRef probs,
                        const AttentionParams& p) {
  dispatch_floating(q.dtype, "scaled_dot_product_attention backward", [&]<class T>() {
    backward<T>(grad_q, grad_k, grad_v, grad_out, q, k, v, probs, p);
  });
}

}  // namespace loom::kernels::cpu
