// AdamW on the CPU (formulas in kernels/adamw.h). Per-tensor scalars (bias corrections,
// step size) are computed in double, as PyTorch computes them in Python floats, then used
// in the element type. PyTorch's lerp switches form at weight 0.5 for accuracy; so does
// this kernel.
#include "kernels/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/common.h"

namespace loom::kernels::cpu {
namespace {

// Updates elements [lo, hi) of one tensor. The four arrays never overlap (restrict) and
// the lerp form is chosen once per tensor, so the loop vectorises: a scalar loop ran at
// 2.5 ns per element (bench_ops), several times what memory allows.
template <class T, bool kSmallWeight>
void update_range(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g,
                  int64_t lo, int64_t hi, T decay, T step_size, T bias_correction2_sqrt, T w_t,
                  T one_minus_w, T b2, T one_minus_b2, T e) {
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T pi = p[i] * decay;
    const T mi = kSmallWeight ? m[i] + w_t * (gi - m[i]) : gi - (gi - m[i]) * one_minus_w;
    const T vi = v[i] * b2 + one_minus_b2 * gi * gi;
    const T denom = std::sqrt(vi) / bias_correction2_sqrt + e;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + -step_size * (mi / denom);
  }
}

template <class T>
void update(const AdamWTensor& a, int64_t lo, int64_t hi, double beta1, double beta2, double eps) {
  const double t = double(a.step);
  const T decay = T(1.0 - a.lr * a.weight_decay);
  const T step_size = T(a.lr / (1.0 - std::pow(beta1, t)));
  const T bias_correction2_sqrt = T(std::sqrt(1.0 - std::pow(beta2, t)));
  const double w = 1.0 - beta1;  // lerp weight
  const T w_t = T(w), one_minus_w = T(1.0 - w);
  const T b2 = T(beta2), one_minus_b2 = T(1.0 - beta2), e = T(eps);
  auto run = [&]<bool kSmallWeight>() {
    update_range<T, kSmallWeight>(a.param.ptr<T>(), a.exp_avg.ptr<T>(), a.exp_avg_sq.ptr<T>(),
                                  a.grad.ptr<const T>(), lo, hi, decay, step_size,
                                  bias_correction2_sqrt, w_t, one_minus_w, b2, one_minus_b2, e);
  };
  if (w < 0.5)
    run.template operator()<true>();
  else
    run.template operator()<false>();
}

}  // namespace

void adamw_step(std::span<const AdamWTensor> tensors, double beta1, double beta2, double eps) {
  // offsets[k]: index of tensor k's first element in the concatenation of all tensors.
  std::vector<int64_t> offsets(tensors.size() + 1, 0);
  for (size_t k = 0; k < tensors.size(); ++k) {
    const AdamWTensor& a = tensors[k];
    const int64_t n = a.param.numel();
    for (const TensorRef* r : {&a.param, &a.exp_avg, &a.exp_avg_sq, &a.grad})
      LOOM_ASSERT(r->numel() == n && r->dtype == a.param.dtype && r->is_contiguous() &&
                  r->device == tensors[0].param.device);
    LOOM_ASSERT(a.step >= 1);
    offsets[k + 1] = offsets[k] + n;
  }
  parallel_for(offsets.back(), 12, [&](int64_t begin, int64_t end) {
    // The tensor holding element `begin`, then tensor by tensor up to `end`.
    size_t k =
        size_t(std::upper_bound(offsets.begin(), offsets.end(), begin) - offsets.begin()) - 1;
    for (; k < tensors.size() && offsets[k] < end; ++k) {
      const int64_t lo = std::max(begin, offsets[k]) - offsets[k];
      const int64_t hi = std::min(end, offsets[k + 1]) - offsets[k];
      dispatch_floating(tensors[k].param.dtype, "adamw_step",
                        [&]<class T>() { update<T>(tensors[k], lo, hi, beta1, beta2, eps); });
    }
  });
}

}  // namespace loom::kernels::cpu
