// Fused attention on the CPU (see kernels/attention.h). Threads split (batch, head) blocks
// in the forward and (batch, kv head) blocks in the backward, so the kv-head gradients sum
// their query heads in order on one thread. Within a block the products are small matrix
// products: the scores and dP are "a bᵀ" products, the rest "a b" and "aᵀ b".
#include "kernels/attention.h"

#include <vector>

#include "kernels/cpu/attention_blocks.h"
#include "kernels/cpu/common.h"

namespace loom::kernels::cpu {
namespace {
using namespace attention_blocks;

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
  const int64_t TS = s.T * s.S;
  parallel_for(s.B * s.KV, s.group() * TS * (4 * s.D + kScoreCost), [&](int64_t r0, int64_t r1) {
    std::vector<T> w(size_t(p.dropout_p > 0 ? TS : 0)), dz(static_cast<size_t>(TS));
    for (int64_t bk = r0; bk < r1; ++bk) {
      const int64_t b = bk / s.KV, kvh = bk % s.KV;
      // dk, dv: (S, D) sums over the group's query heads, in head order.
      const Mat<T> dK = zeroed_head<T>(grad_k, b, kvh), dV = zeroed_head<T>(grad_v, b, kvh);
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
