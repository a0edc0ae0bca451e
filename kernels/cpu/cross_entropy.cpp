// Fused cross-entropy over rows of [M, V] logits (see kernels/cross_entropy.h). Targets
// are validated in one serial pass before any thread starts (an exception must not leave
// an OpenMP region); then threads split rows, each row computed the same way whatever the
// thread count. Row sums (exp, and the logits for label smoothing) accumulate in double,
// in lane_sum's fixed order.
#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/common.h"
#include "kernels/cpu/vector_exp.h"

namespace loom::kernels::cpu {
namespace {

// exp costs several times a load/store: weigh a row accordingly for parallel_for.
constexpr int64_t kExpCost = 4;
// Accumulators of the row passes: a vocabulary row is long, and with lane_sum's default
// one register of 8 doubles the passes waited on their chain of adds (bench_ops: 19 ms
// for the forward over 4096 x 8000 logits at 1 thread, 17% of the copy bandwidth).
constexpr int kRowWidth = 32;

// Calls f.template operator()<I>() with I the C++ type of an index dtype.
template <class F> void dispatch_index(DType t, F&& f) {
  if (t == DType::I64) return f.template operator()<int64_t>();
  if (t == DType::I32) return f.template operator()<int32_t>();
  LOOM_UNREACHABLE("cross_entropy: target dtype is not int32 or int64");
}

template <class T, class I>
void forward_rows(T* loss, T* lse, const T* x, const I* target, int64_t M, int64_t V,
                  int64_t ignore_index, double eps) {
  parallel_for(M, kExpCost * V, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = int64_t(target[r]);
      if (t == ignore_index) {
        loss[r] = T(0);
        lse[r] = T(0);
        continue;
      }
      const T* xr = x + r * V;
      const T m = row_max<kRowWidth>(xr, V);
      const double l = double(m) + std::log(sum_exp_shifted<kRowWidth>(xr, m, V));
      double smooth = 0;  // eps * (lse - mean_v x_v)
      if (eps != 0) {
        const double sx = lane_sum<kRowWidth>(V, [&](int64_t v) { return double(xr[v]); });
        smooth = eps * (l - sx / double(V));
      }
      loss[r] = T((1 - eps) * (l - double(xr[t])) + smooth);
      lse[r] = T(l);
    }
  });
}

template <class T, class I>
void backward_rows(T* gx, const T* grad_loss, int64_t grad_stride, double scale, const T* x,
                   const T* lse, const I* target, int64_t M, int64_t V, int64_t ignore_index,
                   double eps) {
  parallel_for(M, kExpCost * V, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* gr = gx + r * V;
      const int64_t t = int64_t(target[r]);
      if (t == ignore_index) {
        std::fill(gr, gr + V, T(0));
        continue;
      }
      const T* xr = x + r * V;
      const T w = T(scale * double(grad_loss[r * grad_stride]));
      const T l = lse[r], off = T(eps / double(V));
      exp_shifted(gr, xr, l, V);  // gr may be xr (the backward reuses the logits' memory)
      for (int64_t v = 0; v < V; ++v) gr[v] = w * (gr[v] - off);
      gr[t] -= w * T(1 - eps);
    }
  });
}

}  // namespace

int64_t cross_entropy_forward(TensorRef loss, TensorRef lse, TensorRef logits, TensorRef target,
                              int64_t ignore_index, double label_smoothing) {
  const int64_t M = logits.sizes[0], V = logits.sizes[1];
  int64_t count = 0;
  dispatch_floating(logits.dtype, "cross_entropy", [&]<class T>() {
    dispatch_index(target.dtype, [&]<class I>() {
      const I* tp = target.ptr<const I>();
      count = count_valid_targets(tp, M, V, ignore_index);
      forward_rows(loss.ptr<T>(), lse.ptr<T>(), logits.ptr<const T>(), tp, M, V, ignore_index,
                   label_smoothing);
    });
  });
  return count;
}

void cross_entropy_backward(TensorRef grad_logits, TensorRef grad_loss, double scale,
                            TensorRef logits, TensorRef lse, TensorRef target,
                            int64_t ignore_index, double label_smoothing) {
  const int64_t M = logits.sizes[0], V = logits.sizes[1];
  dispatch_floating(logits.dtype, "cross_entropy backward", [&]<class T>() {
    dispatch_index(target.dtype, [&]<class I>() {
      backward_rows(grad_logits.ptr<T>(), grad_loss.ptr<const T>(), grad_loss.strides[0], scale,
                    logits.ptr<const T>(), lse.ptr<const T>(), target.ptr<const I>(), M, V,
                    ignore_index, label_smoothing);
    });
  });
}

}  // namespace loom::kernels::cpu
