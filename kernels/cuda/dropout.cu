// CUDA fused dropout (see kernels/dropout.h): one thread per element computes the Philox
// block of its counter and takes its word (the CPU's draw); a warp ballot packs its 32
// keep decisions into one word.
#include "kernels/cuda/common.cuh"
#include "kernels/dropout.h"

namespace loom::kernels::cuda {
namespace {

// The loop runs over whole blocks (blockDim a multiple of 32) so every lane of a warp
// reaches the ballot; lanes past n vote "dropped" and write nothing.
// relu: y = relu(x) * m, and bits is null.
template <class T, bool relu>
__global__ void dropout_forward_kernel(T* y, uint32_t* bits, const T* x, int64_t n, uint64_t seed,
                                       uint64_t first, uint64_t threshold, double scale) {
  using A = acc_t<T>;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t base = int64_t(blockIdx.x) * blockDim.x; base < n; base += stride) {
    const int64_t i = base + threadIdx.x;
    bool kept = false;
    if (i < n) {
      kept = philox_word(first + uint64_t(i / 4), seed, int(i % 4)) < threshold;
      A v = convert<A>(x[i]);
      if (relu) v = v > A(0) ? v : A(0);
      y[i] = convert<T>(v * convert<A>(convert<T>(kept ? scale : 0.0)));
    }
    if (!relu) {
      const unsigned word = __ballot_sync(0xffffffffu, kept);
      if ((threadIdx.x & 31) == 0 && i < n) bits[i / 32] = word;
    }
  }
}

template <class T>
__global__ void dropout_backward_kernel(T* grad_x, const T* grad_y, const uint32_t* bits,
                                        int64_t n, double scale) {
  using A = acc_t<T>;
  LOOM_GRID_STRIDE_LOOP(i, n) {
    const bool kept = (bits[i / 32] >> (i % 32)) & 1u;
    grad_x[i] = convert<T>(convert<A>(grad_y[i]) * convert<A>(convert<T>(kept ? scale : 0.0)));
  }
}

template <class T>
__global__ void relu_dropout_backward_kernel(T* grad_x, const T* grad_y, const T* y, int64_t n,
                                             double scale) {
  using A = acc_t<T>;
  LOOM_GRID_STRIDE_LOOP(i, n) {
    const bool pass = convert<A>(y[i]) > A(0);
    grad_x[i] = convert<T>(convert<A>(grad_y[i]) * convert<A>(convert<T>(pass ? scale : 0.0)));
  }
}

}  // namespace

void dropout_forward(TensorRef y, TensorRef keep, TensorRef x, uint64_t seed, uint64_t first,
                     uint64_t threshold, double scale, bool relu) {
  const int64_t n = x.numel();
  if (n == 0) return;
  static_assert(kThreads % 32 == 0, "dropout's ballot needs whole warps");
  dispatch_gpu_floating(x.dtype, "dropout", [&]<class T>() {
    uint32_t* bits = reinterpret_cast<uint32_t*>(keep.ptr<int32_t>());
    if (relu)
      dropout_forward_kernel<T, true><<<grid_for(n), kThreads, 0, stream()>>>(
          y.ptr<T>(), nullptr, x.ptr<T>(), n, seed, first, threshold, scale);
    else
      dropout_forward_kernel<T, false><<<grid_for(n), kThreads, 0, stream()>>>(
          y.ptr<T>(), bits, x.ptr<T>(), n, seed, first, threshold, scale);
    LOOM_CUDA_LAUNCHED();
  });
}

void dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef keep, double scale) {
  const int64_t n = grad_y.numel();
  if (n == 0) return;
  dispatch_gpu_floating(grad_y.dtype, "dropout backward", [&]<class T>() {
    dropout_backward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(
        grad_x.ptr<T>(), grad_y.ptr<T>(), reinterpret_cast<const uint32_t*>(keep.ptr<int32_t>()),
        n, scale);
    LOOM_CUDA_LAUNCHED();
  });
}

void relu_dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef y, double scale) {
  const int64_t n = y.numel();
  if (n == 0) return;
  dispatch_gpu_floating(y.dtype, "relu_dropout backward", [&]<class T>() {
    relu_dropout_backward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(
        grad_x.ptr<T>(), grad_y.ptr<T>(), y.ptr<T>(), n, scale);
    LOOM_CUDA_LAUNCHED();
  });
}

}  // namespace loom::kernels::cuda
