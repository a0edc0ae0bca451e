// CUDA softmax / log-softmax over the last axis (see kernels/softmax.h): one block per row,
// row sums in double as on the CPU.
#include "kernels/cuda/common.cuh"
#include "kernels/softmax.h"

namespace loom::kernels::cuda {
namespace {

template <class T>
__global__ void forward_rows(T* y, const T* x, int64_t len, bool log) {
  __shared__ double dshared[32];
  __shared__ T tshared[32];
  const T* xi = x + int64_t(blockIdx.x) * len;
  T* yi = y + int64_t(blockIdx.x) * len;
  T m = -INFINITY;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) m = xi[j] > m ? xi[j] : m;
  m = block_max(m, tshared);  // a row of all -inf gives nan everywhere, as in PyTorch
  double s = 0;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    const T e = exp(xi[j] - m);
    if (!log) yi[j] = e;
    s += double(e);
  }
  s = block_sum(s, dshared);
  if (log) {
    const T lse = m + T(::log(s));
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) yi[j] = xi[j] - lse;
  } else {
    const T inv = T(1.0 / s);
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) yi[j] *= inv;
  }
}

template <class T>
__global__ void backward_rows(T* gx, const T* g, const T* y, int64_t len, bool log) {
  __shared__ double shared[32];
  const int64_t base = int64_t(blockIdx.x) * len;
  double acc = 0;  // log: sum(g); softmax: sum(g * y)
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
    acc += log ? double(g[base + j]) : double(g[base + j]) * double(y[base + j]);
  const T s = T(block_sum(acc, shared));
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    const int64_t k = base + j;
    gx[k] = log ? g[k] - exp(y[k]) * s : y[k] * (g[k] - s);
  }
}

// Rows and row length (a 0-dim tensor is one row of length 1).
std::pair<int64_t, int64_t> rows_of(const TensorRef& t) {
  const int64_t len = t.dim() == 0 ? 1 : t.sizes.back();
  return {len == 0 ? 0 : t.numel() / len, len};
}

}  // namespace

void softmax_forward(TensorRef y, TensorRef x, bool log) {
  LOOM_ASSERT(x.is_contiguous() && y.is_contiguous() && x.sizes == y.sizes && x.dtype == y.dtype);
  const auto [rows, len] = rows_of(x);
  if (rows == 0) return;
  dispatch_gpu_f32_f64(x.dtype, log ? "log_softmax" : "softmax", [&]<class T>() {
    forward_rows<<<unsigned(rows), kThreads, 0, stream()>>>(y.ptr<T>(), x.ptr<const T>(), len, log);
    LOOM_CUDA_LAUNCHED();
  });
}

void softmax_backward(TensorRef grad_x, TensorRef grad_out, TensorRef y, bool log) {
  LOOM_ASSERT(grad_x.is_contiguous() && grad_out.is_contiguous() && y.is_contiguous());
  LOOM_ASSERT(grad_out.sizes == y.sizes && grad_x.sizes == y.sizes);
  const auto [rows, len] = rows_of(y);
  if (rows == 0) return;
  dispatch_gpu_f32_f64(y.dtype, log ? "log_softmax backward" : "softmax backward", [&]<class T>() {
    backward_rows<<<unsigned(rows), kThreads, 0, stream()>>>(
        grad_x.ptr<T>(), grad_out.ptr<const T>(), y.ptr<const T>(), len, log);
    LOOM_CUDA_LAUNCHED();
  });
}

}  // namespace loom::kernels::cuda
