// Sliding-window attention on the CPU (kernels/attention.h, AttentionParams::window_left /
// window_right). The same products as full attention (kernels/cpu/attention.cpp), over
// chunks of kRows queries: a chunk's queries see keys [klo, khi), at most kRows + band - 1
// of them, so a (chunk, keys) block is the only dense score matrix and the work is
// O(T * band * D) instead of O(T * S * D). The probabilities are saved banded: row i of a
// head holds its band of keys i' - window_left .. i' + window_right (i' = S - T + i).
// Dropout draws the same Philox counters as full attention ((b, h, i, j) of a (B, H, T, S)
// tensor), so a window that hides nothing gives full attention's mask.
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/attention_blocks.h"
#include "kernels/cpu/common.h"

namespace loom::kernels::cpu {
namespace {

using namespace attention_blocks;

constexpr int64_t kRows = 32;  // queries per chunk

// The keys of query i and of a chunk of queries, as half-open ranges clipped to [0, S).
struct Band {
  const Shape& s;
  int64_t left, right;
  int64_t first(int64_t i) const { return std::max<int64_t>(0, s.S - s.T + i - left); }
  int64_t end(int64_t i) const { return std::clamp<int64_t>(s.S - s.T + i + right + 1, 0, s.S); }
  // Column of key j in row i's saved band.
  int64_t column(int64_t i, int64_t j) const { return j - (s.S - s.T + i - left); }
};

struct Chunk {
  int64_t i0, rows, klo, khi;  // queries [i0, i0 + rows) see keys within [klo, khi)
};
template <class F>
void for_each_chunk(const Shape& s, const Band& band, F f) {
  for (int64_t i0 = 0; i0 < s.T; i0 += kRows) {
    const int64_t rows = std::min(kRows, s.T - i0);
    const int64_t klo = band.first(i0), khi = std::max(klo, band.end(i0 + rows - 1));
    f(Chunk{i0, rows, klo, khi});
  }
}

template <class T>
void forward(const TensorRef& out, const TensorRef& probs, const TensorRef& q, const TensorRef& k,
             const TensorRef& v, const TensorRef& mask, const TensorRef& bias,
             const AttentionParams& p) {
  const Shape s = shape_of(q, k);
  const Band band{s, p.window_left, p.window_right};
  const int64_t W = p.band(), chunk_keys = std::min(s.S, kRows + W - 1);
  const bool drop = p.dropout_p > 0, save = probs.data != nullptr;
  parallel_for(s.B * s.H, s.T * W * (2 * s.D + kScoreCost), [&](int64_t r0, int64_t r1) {
    // z: one chunk's scores, then P; w: the weights applied to v (dropout(P)).
    std::vector<T> z(size_t(kRows * chunk_keys)), w(size_t(drop ? kRows * chunk_keys : 0));
    for (int64_t bh = r0; bh < r1; ++bh) {
      const int64_t b = bh / s.H, h = bh % s.H, kvh = h / s.group();
      const Mat<const T> Q = head<const T>(q, b, h), K = head<const T>(k, b, kvh);
      const Mat<const T> V = head<const T>(v, b, kvh);
      const Mat<T> O = head<T>(out, b, h);
      T* saved = save ? probs.ptr<T>() + bh * s.T * W : nullptr;
      for_each_chunk(s, band, [&](Chunk c) {
        const int64_t n = c.khi - c.klo;
        const Mat<T> Z{z.data(), c.rows, n, n};
        gemm_nt<T>(Z, Q.sub(c.i0, c.rows, s.D), K.sub(c.klo, n, s.D), T(p.scale), T(0));
        for (int64_t r = 0; r < c.rows; ++r) {
          const int64_t i = c.i0 + r, lo = band.first(i), hi = std::max(lo, band.end(i));
          T* row = Z.row(r);
          std::fill(row, row + (lo - c.klo), T(0));
          std::fill(row + (hi - c.klo), row + n, T(0));
          RowRef<bool> m = row_of<bool>(mask, b, h, i);
          RowRef<T> bi = row_of<T>(bias, b, h, i);
          if (m.p) m.p += lo * m.stride;
          if (bi.p) bi.p += lo * bi.stride;
          T* zr = row + (lo - c.klo);
          softmax_row(zr, hi - lo, hi - lo, m, bi);
          if (drop) {
            T* wr = w.data() + r * n;
            std::fill(wr, wr + n, T(0));
            dropout_block(wr + (lo - c.klo), zr, hi - lo,
                          p.offset + uint64_t((bh * s.T + i) * s.S + lo), p, save);
          }
          if (save) {
            T* dst = saved + i * W;
            std::fill(dst, dst + W, T(0));
            std::copy(zr, zr + (hi - lo), dst + band.column(i, lo));
          }
        }
        const Mat<const T> weights{drop ? w.data() : z.data(), c.rows, n, n};
        gemm_nn<T>(O.sub(c.i0, c.rows, s.D), weights, V.sub(c.klo, n, s.D), T(1), T(0));
      });
    }
  });
}

template <class T>
void backward(const TensorRef& grad_q, const TensorRef& grad_k, const TensorRef& grad_v,
              const TensorRef& grad_out, const TensorRef& q, const TensorRef& k, const TensorRef& v,
              const TensorRef& probs, const AttentionParams& p) {
  const Shape s = shape_of(q, k);
  const Band band{s, p.window_left, p.window_right};
  const int64_t W = p.band(), chunk_keys = std::min(s.S, kRows + W - 1);
  const bool drop = p.dropout_p > 0;
  const T keep_scale = T(1.0 / (1.0 - p.dropout_p));
  parallel_for(
      s.B * s.KV, s.group() * s.T * W * (4 * s.D + kScoreCost), [&](int64_t r0, int64_t r1) {
        // pc: a chunk's P (sign-marked) unpacked from the band; w: its weights; dz: dZ.
        std::vector<T> pc(size_t(kRows * chunk_keys)), w(size_t(drop ? kRows * chunk_keys : 0)),
            dz(size_t(kRows * chunk_keys));
        for (int64_t bk = r0; bk < r1; ++bk) {
          const int64_t b = bk / s.KV, kvh = bk % s.KV;
          const Mat<T> dK = zeroed_head<T>(grad_k, b, kvh), dV = zeroed_head<T>(grad_v, b, kvh);
          const Mat<const T> K = head<const T>(k, b, kvh), V = head<const T>(v, b, kvh);
          for (int64_t h = kvh * s.group(); h < (kvh + 1) * s.group(); ++h) {  // in head order
            const T* saved = probs.ptr<const T>() + (b * s.H + h) * s.T * W;
            const Mat<const T> dO = head<const T>(grad_out, b, h), Q = head<const T>(q, b, h);
            const Mat<T> dQ = grad_q.data ? head<T>(grad_q, b, h) : Mat<T>{};
            for_each_chunk(s, band, [&](Chunk c) {
              const int64_t n = c.khi - c.klo;
              const Mat<T> P{pc.data(), c.rows, n, n};
              for (int64_t r = 0; r < c.rows; ++r) {
                const int64_t i = c.i0 + r, lo = band.first(i), hi = std::max(lo, band.end(i));
                T* row = P.row(r);
                std::fill(row, row + n, T(0));
                const T* src = saved + i * W + band.column(i, lo);
                std::copy(src, src + (hi - lo), row + (lo - c.klo));
              }
              Mat<const T> Wt = P;
              if (drop) {
                weights_from_marked(w.data(), pc.data(), c.rows * n, keep_scale);
                Wt.p = w.data();
              }
              const Mat<const T> dOc = dO.sub(c.i0, c.rows, s.D);
              if (dV.p) gemm_tn<T>(dV.sub(c.klo, n, s.D), Wt, dOc, T(1), T(1));
              if (!dQ.p && !dK.p) return;
              // Keys outside a row's band have P = 0 (unmarked), so dZ = 0 there.
              const Mat<T> dZ{dz.data(), c.rows, n, n};
              gemm_nt<T>(dZ, dOc, V.sub(c.klo, n, s.D), T(1), T(0));
              for (int64_t r = 0; r < c.rows; ++r)
                grad_scores_row(dZ.row(r), P.row(r), n, drop, keep_scale);
              if (dQ.p)
                gemm_nn<T>(dQ.sub(c.i0, c.rows, s.D), dZ, K.sub(c.klo, n, s.D), T(p.scale), T(0));
              if (dK.p)
                gemm_tn<T>(dK.sub(c.klo, n, s.D), dZ, Q.sub(c.i0, c.rows, s.D), T(p.scale), T(1));
            });
          }
        }
      });
}

}  // namespace

void window_attention_forward(TensorRef out, TensorRef probs, TensorRef q, TensorRef k, TensorRef v,
                              TensorRef mask, TensorRef bias, const AttentionParams& p) {
  dispatch_floating(q.dtype, "scaled_dot_product_attention (window)",
                    [&]<class T>() { forward<T>(out, probs, q, k, v, mask, bias, p); });
}

void window_attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v,
                               TensorRef grad_out, TensorRef q, TensorRef k, TensorRef v,
                               TensorRef probs, const AttentionParams& p) {
  dispatch_floating(q.dtype, "scaled_dot_product_attention (window) backward", [&]<class T>() {
    backward<T>(grad_q, grad_k, grad_v, grad_out, q, k, v, probs, p);
  });
}

}  // namespace loom::kernels::cpu
