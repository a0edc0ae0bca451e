// CUDA AdamW (see kernels/adamw.h): the CPU's per-element formulas, one launch per tensor,
// per-tensor scalars computed on the host in double as on the CPU.
#include <cmath>

#include "kernels/adamw.h"
#include "kernels/cuda/common.cuh"

namespace loom::kernels::cuda {
namespace {

template <class T>
struct Scalars {
  T decay, step_size, bias_correction2_sqrt, w_t, one_minus_w, b2, one_minus_b2, e;
  bool small_w;  // lerp weight < 0.5: PyTorch's lerp switches form there
};

template <class T>
__global__ void update(T* p, T* m, T* v, const T* g, int64_t n, Scalars<T> s) {
  LOOM_GRID_STRIDE_LOOP(i, n) {
    const T gi = g[i];
    T pi = p[i] * s.decay;
    const T mi = s.small_w ? m[i] + s.w_t * (gi - m[i]) : gi - (gi - m[i]) * s.one_minus_w;
    const T vi = v[i] * s.b2 + s.one_minus_b2 * gi * gi;
    const T denom = sqrt(vi) / s.bias_correction2_sqrt + s.e;
    m[i] = mi, v[i] = vi;
    p[i] = pi + -s.step_size * (mi / denom);
  }
}

}  // namespace

void adamw_step(std::span<const AdamWTensor> tensors, double beta1, double beta2, double eps) {
  for (const AdamWTensor& a : tensors) {
    const int64_t n = a.param.numel();
    for (const TensorRef* r : {&a.param, &a.exp_avg, &a.exp_avg_sq, &a.grad})
      LOOM_ASSERT(r->numel() == n && r->dtype == a.param.dtype && r->is_contiguous() &&
                  r->device == tensors[0].param.device);
    LOOM_ASSERT(a.step >= 1);
    if (n == 0) continue;
    dispatch_gpu_f32_f64(a.param.dtype, "adamw_step", [&]<class T>() {
      const double t = double(a.step), w = 1.0 - beta1;
      const Scalars<T> s{T(1.0 - a.lr * a.weight_decay),
                         T(a.lr / (1.0 - std::pow(beta1, t))),
                         T(std::sqrt(1.0 - std::pow(beta2, t))),
                         T(w),
                         T(1.0 - w),
                         T(beta2),
                         T(1.0 - beta2),
                         T(eps),
                         w < 0.5};
      update<<<grid_for(n), kThreads, 0, stream()>>>(
          a.param.ptr<T>(), a.exp_avg.ptr<T>(), a.exp_avg_sq.ptr<T>(), a.grad.ptr<const T>(), n, s);
      LOOM_CUDA_LAUNCHED();
    });
  }
}

}  // namespace loom::kernels::cuda
