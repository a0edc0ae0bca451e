// CUDA fused cross-entropy with label smoothing (see kernels/cross_entropy.h): one block
// per row, sums in double as on the CPU. The targets are validated on the host first (the
// CPU's message), which also gives the count of rows that are not ignored.
#include "kernels/cross_entropy.h"
#include "kernels/cuda/common.cuh"

namespace loom::kernels::cuda {
namespace {

template <class T, class I>
__global__ void forward_rows(T* loss, T* lse, const T* x, const I* target, int64_t V,
                             int64_t ignore_index, double eps) {
  __shared__ double dshared[32];
  __shared__ T tshared[32];
  const int64_t r = blockIdx.x;
  const int64_t t = int64_t(target[r]);
  if (t == ignore_index) {
    if (threadIdx.x == 0) loss[r] = T(0), lse[r] = T(0);
    return;
  }
  const T* xr = x + r * V;
  T m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = xr[v] > m ? xr[v] : m;
  m = block_max(m, tshared);
  double s = 0, sx = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    s += double(exp(xr[v] - m));
    sx += double(xr[v]);
  }
  s = block_sum(s, dshared);
  sx = block_sum(sx, dshared);
  if (threadIdx.x != 0) return;
  const double l = double(m) + log(s);
  const double smooth = eps != 0 ? eps * (l - sx / double(V)) : 0.0;
  loss[r] = T((1 - eps) * (l - double(xr[t])) + smooth);
  lse[r] = T(l);
}

template <class T, class I>
__global__ void backward_rows(T* gx, const T* grad_loss, int64_t grad_stride, double scale,
                              const T* x, const T* lse, const I* target, int64_t V,
                              int64_t ignore_index, double eps) {
  const int64_t r = blockIdx.x;
  const int64_t t = int64_t(target[r]);
  T* gr = gx + r * V;
  if (t == ignore_index) {
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) gr[v] = T(0);
    return;
  }
  const T* xr = x + r * V;
  const T w = T(scale * double(grad_loss[r * grad_stride]));
  const T l = lse[r], off = T(eps / double(V));
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    T g = w * (exp(xr[v] - l) - off);
    if (v == t) g -= w * T(1 - eps);
    gr[v] = g;
  }
}

}  // namespace

int64_t cross_entropy_forward(TensorRef loss, TensorRef lse, TensorRef logits, TensorRef target,
                              int64_t ignore_index, double label_smoothing) {
  const int64_t M = logits.sizes[0], V = logits.sizes[1];
  const std::vector<int64_t> t = ids_to_host(target);
  const int64_t count = count_valid_targets(t.data(), M, V, ignore_index);
  if (M == 0) return 0;
  dispatch_gpu_f32_f64(logits.dtype, "cross_entropy", [&]<class T>() {
    dispatch_gpu_index(target.dtype, "cross_entropy", [&]<class I>() {
      forward_rows<<<unsigned(M), kThreads, 0, stream()>>>(
          loss.ptr<T>(), lse.ptr<T>(), logits.ptr<const T>(), target.ptr<const I>(), V,
          ignore_index, label_smoothing);
      LOOM_CUDA_LAUNCHED();
    });
  });
  return count;
}

void cross_entropy_backward(TensorRef grad_logits, TensorRef grad_loss, double scale,
                            TensorRef logits, TensorRef lse, TensorRef target, int64_t ignore_index,
                            double label_smoothing) {
  const int64_t M = logits.sizes[0], V = logits.sizes[1];
  if (M == 0) return;
  dispatch_gpu_f32_f64(logits.dtype, "cross_entropy backward", [&]<class T>() {
    dispatch_gpu_index(target.dtype, "cross_entropy backward", [&]<class I>() {
      backward_rows<<<unsigned(M), kThreads, 0, stream()>>>(
          grad_logits.ptr<T>(), grad_loss.ptr<const T>(), grad_loss.strides[0], scale,
          logits.ptr<const T>(), lse.ptr<const T>(), target.ptr<const I>(), V, ignore_index,
          label_smoothing);
      LOOM_CUDA_LAUNCHED();
    });
  });
}

}  // namespace loom::kernels::cuda
