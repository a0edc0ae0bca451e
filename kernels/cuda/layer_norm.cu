// CUDA layer norm (see kernels/layer_norm.h): one block per row for the forward and
// grad_x (two-pass statistics in double, as on the CPU); grad_w / grad_b as column sums in
// double, first over fixed chunks of rows, then over the chunks in order, so the result
// does not depend on scheduling.
#include "kernels/cuda/common.cuh"
#include "kernels/layer_norm.h"

namespace loom::kernels::cuda {
namespace {

template <class T>
__global__ void forward_rows(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t N,
                             double eps) {
  __shared__ double shared[32];
  const int64_t i = blockIdx.x;
  const T* xi = x + i * N;
  T* yi = y + i * N;
  double s = 0;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) s += double(xi[j]);
  const double mu = block_sum(s, shared) / double(N);
  double v = 0;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x)
    v += (double(xi[j]) - mu) * (double(xi[j]) - mu);
  const double rs = 1.0 / sqrt(block_sum(v, shared) / double(N) + eps);
  if (threadIdx.x == 0) mean[i] = T(mu), rstd[i] = T(rs);
  const T mu_t = T(mu), rs_t = T(rs);
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const T h = (xi[j] - mu_t) * rs_t;
    yi[j] = (w ? h * w[j] : h) + (b ? b[j] : T(0));
  }
}

template <class T>
__global__ void grad_x_rows(T* gx, const T* g, const T* x, const T* mean, const T* rstd, const T* w,
                            int64_t N) {
  __shared__ double shared[32];
  const int64_t i = blockIdx.x;
  const T *gi = g + i * N, *xi = x + i * N;
  T* gxi = gx + i * N;
  const T mu = mean[i], rs = rstd[i];
  double s1 = 0, s2 = 0;  // sum(gxhat), sum(gxhat * xhat)
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const T gh = w ? gi[j] * w[j] : gi[j];
    s1 += double(gh);
    s2 += double(gh) * double((xi[j] - mu) * rs);
  }
  const T m1 = T(block_sum(s1, shared) / double(N)), m2 = T(block_sum(s2, shared) / double(N));
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const T gh = w ? gi[j] * w[j] : gi[j];
    gxi[j] = rs * (gh - m1 - (xi[j] - mu) * rs * m2);
  }
}

constexpr int64_t kChunkRows = 64;

// partial_w/b [chunks, N]: sums over rows [chunk * kChunkRows, ...) of one column each.
template <class T>
__global__ void grad_wb_partial(double* partial_w, double* partial_b, const T* g, const T* x,
                                const T* mean, const T* rstd, int64_t M, int64_t N) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  if (c >= N) return;
  double aw = 0, ab = 0;
  const int64_t r1 = min(M, (chunk + 1) * kChunkRows);
  for (int64_t r = chunk * kChunkRows; r < r1; ++r) {
    const T gv = g[r * N + c];
    if (partial_w) aw += double(gv) * double((x[r * N + c] - mean[r]) * rstd[r]);
    ab += double(gv);
  }
  if (partial_w) partial_w[chunk * N + c] = aw;
  if (partial_b) partial_b[chunk * N + c] = ab;
}

template <class T>
__global__ void grad_wb_total(T* gw, T* gb, const double* partial_w, const double* partial_b,
                              int64_t chunks, int64_t N) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= N) return;
  double aw = 0, ab = 0;
  for (int64_t k = 0; k < chunks; ++k) {
    if (gw) aw += partial_w[k * N + c];
    if (gb) ab += partial_b[k * N + c];
  }
  if (gw) gw[c] = T(aw);
  if (gb) gb[c] = T(ab);
}

template <class T>
const T* optional_ptr(const TensorRef& t) {
  return t.data ? t.ptr<const T>() : nullptr;
}

}  // namespace

void layer_norm_forward(TensorRef y, TensorRef mean, TensorRef rstd, TensorRef x, TensorRef w,
                        TensorRef b, double eps) {
  const int64_t M = x.sizes[0], N = x.sizes[1];
  if (M == 0) return;
  dispatch_gpu_f32_f64(x.dtype, "layer_norm", [&]<class T>() {
    forward_rows<<<unsigned(M), kThreads, 0, stream()>>>(y.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(),
                                                         x.ptr<const T>(), optional_ptr<T>(w),
                                                         optional_ptr<T>(b), N, eps);
    LOOM_CUDA_LAUNCHED();
  });
}

void layer_norm_backward(TensorRef grad_x, TensorRef grad_w, TensorRef grad_b, TensorRef grad_out,
                         TensorRef x, TensorRef mean, TensorRef rstd, TensorRef w) {
  const int64_t M = x.sizes[0], N = x.sizes[1];
  dispatch_gpu_f32_f64(x.dtype, "layer_norm backward", [&]<class T>() {
    const T *g = grad_out.ptr<const T>(), *xp = x.ptr<const T>();
    const T *mp = mean.ptr<const T>(), *rp = rstd.ptr<const T>();
    if (grad_x.data && M > 0) {
      grad_x_rows<<<unsigned(M), kThreads, 0, stream()>>>(grad_x.ptr<T>(), g, xp, mp, rp,
                                                          optional_ptr<T>(w), N);
      LOOM_CUDA_LAUNCHED();
    }
    if (!(grad_w.data || grad_b.data) || N == 0) return;
    const int64_t chunks = std::max<int64_t>(1, (M + kChunkRows - 1) / kChunkRows);
    const int device = x.device.index;
    Scratch pw(size_t(chunks * N) * sizeof(double), device),
        pb(size_t(chunks * N) * sizeof(double), device);
    double* partial_w = grad_w.data ? pw.as<double>() : nullptr;
    double* partial_b = grad_b.data ? pb.as<double>() : nullptr;
    const dim3 grid(unsigned((N + kThreads - 1) / kThreads), unsigned(chunks));
    grad_wb_partial<<<grid, kThreads, 0, stream()>>>(partial_w, partial_b, g, xp, mp, rp, M, N);
    LOOM_CUDA_LAUNCHED();
    grad_wb_total<<<unsigned((N + kThreads - 1) / kThreads), kThreads, 0, stream()>>>(
        grad_w.data ? grad_w.ptr<T>() : nullptr, grad_b.data ? grad_b.ptr<T>() : nullptr, partial_w,
        partial_b, chunks, N);
    LOOM_CUDA_LAUNCHED();
  });
}

}  // namespace loom::kernels::cuda
