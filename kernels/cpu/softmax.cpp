// Softmax and log-softmax over the last axis, one row per loop iteration; threads split
// rows, so every row is computed the same way whatever the thread count.
//   softmax:     y = exp(x - m) / s,      m = max(x), s = sum(exp(x - m))
//   log_softmax: y = x - m - log(s)
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/common.h"
#include "kernels/cpu/vector_exp.h"

namespace loom::kernels::cpu {
namespace {

// Rows and row length of a contiguous tensor whose last axis is reduced (a 0-dim tensor
// is one row of length 1).
struct Rows {
  int64_t count, len;
};
Rows rows_of(const TensorRef& t) {
  const int64_t len = t.dim() == 0 ? 1 : t.sizes.back();
  return {len == 0 ? 0 : t.numel() / len, len};
}

// exp and log cost several times a load/store: weigh a row accordingly for parallel_for.
constexpr int64_t kExpCost = 4;

template <class T> void forward_rows(T* y, const T* x, Rows r, bool log) {
  parallel_for(r.count, r.len * kExpCost, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const T* xi = x + i * r.len;
      T* yi = y + i * r.len;
      // A row of all -inf gives (-inf) - (-inf) = nan everywhere, as in PyTorch.
      const T m = row_max(xi, r.len);
      double s = 0;
      if (log) {
        s = sum_exp_shifted(xi, m, r.len);
      } else {
        exp_shifted(yi, xi, m, r.len);
        s = lane_sum(r.len, [&](int64_t j) { return double(yi[j]); });
      }
      if (log) {
        const T lse = m + T(std::log(s));
        for (int64_t j = 0; j < r.len; ++j) yi[j] = xi[j] - lse;
      } else {
        const T inv = T(1.0 / s);
        for (int64_t j = 0; j < r.len; ++j) yi[j] *= inv;
      }
    }
  });
}

template <class T> void backward_rows(T* gx, const T* g, const T* y, Rows r, bool log) {
  parallel_for(r.count, r.len * (log ? kExpCost : 2), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const T* gi = g + i * r.len;
      const T* yi = y + i * r.len;
      T* gxi = gx + i * r.len;
      if (log) {  // sum(g)
        const T s = T(lane_sum(r.len, [&](int64_t j) { return double(gi[j]); }));
        exp_shifted(gxi, yi, T(0), r.len);  // softmax = exp(log_softmax)
        for (int64_t j = 0; j < r.len; ++j) gxi[j] = gi[j] - gxi[j] * s;
      } else {
        const T dot =
            T(lane_sum(r.len, [&](int64_t j) { return double(gi[j]) * double(yi[j]); }));
        for (int64_t j = 0; j < r.len; ++j) gxi[j] = yi[j] * (gi[j] - dot);
      }
    }
  });
}

}  // namespace

void softmax_forward(TensorRef y, TensorRef x, bool log) {
  LOOM_ASSERT(x.is_contiguous() && y.is_contiguous() && x.sizes == y.sizes && x.dtype == y.dtype);
  dispatch_floating(x.dtype, log ? "log_softmax" : "softmax", [&]<class T>() {
    forward_rows(y.ptr<T>(), x.ptr<const T>(), rows_of(x), log);
  });
}

void softmax_backward(TensorRef grad_x, TensorRef grad_out, TensorRef y, bool log) {
  LOOM_ASSERT(grad_x.is_contiguous() && grad_out.is_contiguous() && y.is_contiguous());
  LOOM_ASSERT(grad_out.sizes == y.sizes && grad_x.sizes == y.sizes);
  dispatch_floating(y.dtype, log ? "log_softmax backward" : "softmax backward", [&]<class T>() {
    backward_rows(grad_x.ptr<T>(), grad_out.ptr<const T>(), y.ptr<const T>(), rows_of(y), log);
  });
}

}  // namespace loom::kernels::cpu
