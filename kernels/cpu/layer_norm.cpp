// Layer norm on [M, N] rows (see kernels/layer_norm.h for the formulas).
//  - forward and grad_x: one row per iteration, threads split rows; row statistics are
//    two-pass (mean, then mean of squared deviations) in double, each sum over eight
//    interleaved accumulators (row_reduce.h: one dependent chain of double adds made the
//    d256 layer norms of a training step 2x slower);
//  - grad_w / grad_b: column sums over all rows; threads split columns and each column
//    is summed in row order in double, so the result is independent of the thread count.
#include "kernels/layer_norm.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/cpu/row_reduce.h"

namespace loom::kernels::cpu {
namespace {

template <class T> const T* optional_ptr(const TensorRef& t) {
  return t.data ? t.ptr<const T>() : nullptr;
}

template <class T>
void forward_rows(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t M,
                  int64_t N, double eps) {
  parallel_for(M, 4 * N, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const T* xi = x + i * N;
      T* yi = y + i * N;
      const double mu = lane_sum(N, [&](int64_t j) { return double(xi[j]); }) / double(N);
      const double v = lane_sum(N, [&](int64_t j) {
        const double d = double(xi[j]) - mu;
        return d * d;
      });
      const double rs = 1.0 / std::sqrt(v / double(N) + eps);
      mean[i] = T(mu);
      rstd[i] = T(rs);
      const T mu_t = T(mu), rs_t = T(rs);
      for (int64_t j = 0; j < N; ++j) {
        const T h = (xi[j] - mu_t) * rs_t;
        yi[j] = (w ? h * w[j] : h) + (b ? b[j] : T(0));
      }
    }
  });
}

template <class T>
void grad_x_rows(T* gx, const T* g, const T* x, const T* mean, const T* rstd, const T* w,
                 int64_t M, int64_t N) {
  parallel_for(M, 6 * N, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const T* gi = g + i * N;
      const T* xi = x + i * N;
      T* gxi = gx + i * N;
      const T mu = mean[i], rs = rstd[i];
      const auto gh = [&](int64_t j) { return w ? gi[j] * w[j] : gi[j]; };
      // sum(gxhat) and sum(gxhat * xhat)
      const double s1 = lane_sum(N, [&](int64_t j) { return double(gh(j)); });
      const double s2 =
          lane_sum(N, [&](int64_t j) { return double(gh(j)) * double((xi[j] - mu) * rs); });
      const T m1 = T(s1 / double(N)), m2 = T(s2 / double(N));
      for (int64_t j = 0; j < N; ++j) gxi[j] = rs * (gh(j) - m1 - (xi[j] - mu) * rs * m2);
    }
  });
}

template <class T>
void grad_wb_columns(T* gw, T* gb, const T* g, const T* x, const T* mean, const T* rstd,
                     int64_t M, int64_t N) {
  std::vector<double> acc_w(gw ? size_t(N) : 0, 0.0), acc_b(gb ? size_t(N) : 0, 0.0);
  parallel_for(N, 2 * M, [&](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < M; ++i) {
      const T* gi = g + i * N;
      const T* xi = x + i * N;
      const T mu = mean[i], rs = rstd[i];
      if (gw)
        for (int64_t c = c0; c < c1; ++c)
          acc_w[size_t(c)] += double(gi[c]) * double((xi[c] - mu) * rs);
      if (gb)
        for (int64_t c = c0; c < c1; ++c) acc_b[size_t(c)] += double(gi[c]);
    }
  });
  for (int64_t c = 0; c < N; ++c) {
    if (gw) gw[c] = T(acc_w[size_t(c)]);
    if (gb) gb[c] = T(acc_b[size_t(c)]);
  }
}

}  // namespace

void layer_norm_forward(TensorRef y, TensorRef mean, TensorRef rstd, TensorRef x, TensorRef w,
                        TensorRef b, double eps) {
  const int64_t M = x.sizes[0], N = x.sizes[1];
  dispatch_floating(x.dtype, "layer_norm", [&]<class T>() {
    forward_rows(y.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(), x.ptr<const T>(), optional_ptr<T>(w),
                 optional_ptr<T>(b), M, N, eps);
  });
}

void layer_norm_backward(TensorRef grad_x, TensorRef grad_w, TensorRef grad_b,
                         TensorRef grad_out, TensorRef x, TensorRef mean, TensorRef rstd,
                         TensorRef w) {
  const int64_t M = x.sizes[0], N = x.sizes[1];
  dispatch_floating(x.dtype, "layer_norm backward", [&]<class T>() {
    const T* g = grad_out.ptr<const T>();
    const T* xp = x.ptr<const T>();
    const T* mp = mean.ptr<const T>();
    const T* rp = rstd.ptr<const T>();
    if (grad_x.data) grad_x_rows(grad_x.ptr<T>(), g, xp, mp, rp, optional_ptr<T>(w), M, N);
    if (grad_w.data || grad_b.data) {
      T* gw = grad_w.data ? grad_w.ptr<T>() : nullptr;
      T* gb = grad_b.data ? grad_b.ptr<T>() : nullptr;
      grad_wb_columns(gw, gb, g, xp, mp, rp, M, N);
    }
  });
}

}  // namespace loom::kernels::cpu
