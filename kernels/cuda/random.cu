// CUDA random fills (see kernels/random.h): element i uses Philox counter offset + i, the
// same function as the CPU (kernels/philox.h), so a fill is identical on both devices.
#include "kernels/cuda/common.cuh"
#include "kernels/random.h"

namespace loom::kernels::cuda {
namespace {

template <class T, class F>
__global__ void fill_kernel(T* out, int64_t n, F f) {
  LOOM_GRID_STRIDE_LOOP(i, n) out[i] = convert<T>(f(i));
}

template <class F>
void fill(TensorRef out, const char* name, F f) {
  LOOM_CHECK(out.is_contiguous(), name, ": output must be contiguous");
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_gpu_floating(out.dtype, name, [&]<class T>() {
    fill_kernel<<<grid_for(n), kThreads, 0, stream()>>>(out.ptr<T>(), n, f);
    LOOM_CUDA_LAUNCHED();
  });
}

struct Uniform {
  uint64_t seed, offset;
  double low, high;
  __device__ double operator()(int64_t i) const {
    return low + (high - low) * philox_uniform01(offset + uint64_t(i), seed);
  }
};

struct Normal {
  uint64_t seed, offset;
  double mean, std;
  __device__ double operator()(int64_t i) const {
    return mean + std * philox_normal(offset + uint64_t(i), seed);
  }
};

struct Bernoulli {
  uint64_t seed, offset;
  double keep_prob, scale;
  __device__ double operator()(int64_t i) const {
    return philox_uniform01(offset + uint64_t(i), seed) < keep_prob ? scale : 0.0;
  }
};

}  // namespace

void fill_uniform(TensorRef out, uint64_t seed, uint64_t offset, double low, double high) {
  fill(out, "uniform", Uniform{seed, offset, low, high});
}

void fill_normal(TensorRef out, uint64_t seed, uint64_t offset, double mean, double std) {
  fill(out, "normal", Normal{seed, offset, mean, std});
}

void fill_bernoulli(TensorRef out, uint64_t seed, uint64_t offset, double keep_prob, double scale) {
  fill(out, "bernoulli", Bernoulli{seed, offset, keep_prob, scale});
}

}  // namespace loom::kernels::cuda
