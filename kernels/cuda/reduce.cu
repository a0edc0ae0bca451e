// CUDA sum / max over any axes (see kernels/reduce.h): one block per output element, its
// threads striding over the reduced sub-block, accumulating in double, combined by a
// fixed-shape block reduction: results do not depend on scheduling.
#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace loom::kernels::cuda {
namespace {

// NaN wins a max, as on the CPU.
__device__ inline double max_op(double acc, double v) { return (v > acc || isnan(v)) ? v : acc; }

template <class T>
__global__ void reduce_blocks(T* out, int64_t out_n, const T* x, Indexer<1> kept,
                              Indexer<1> reduced, int64_t reduced_n, bool is_max) {
  __shared__ double shared[32];
  for (int64_t o = blockIdx.x; o < out_n; o += gridDim.x) {
    int64_t base[1];
    kept.offsets(o, base);
    double acc = is_max ? -INFINITY : 0.0;
    for (int64_t r = threadIdx.x; r < reduced_n; r += blockDim.x) {
      int64_t off[1];
      reduced.offsets(r, off);
      const double v = convert<double>(x[base[0] + off[0]]);
      acc = is_max ? max_op(acc, v) : acc + v;
    }
    if (is_max) {
      // block_max ignores NaN ordering: carry NaN through a separate flag.
      __shared__ int any_nan;
      if (threadIdx.x == 0) any_nan = 0;
      __syncthreads();
      if (isnan(acc)) atomicOr(&any_nan, 1);
      acc = block_max(isnan(acc) ? -INFINITY : acc, shared);
      if (any_nan) acc = NAN;
    } else {
      acc = block_sum(acc, shared);
    }
    if (threadIdx.x == 0) out[o] = convert<T>(acc);
    __syncthreads();
  }
}

}  // namespace

void reduce(TensorRef out, TensorRef x, ReduceOp op) {
  LOOM_ASSERT(out.dim() == x.dim() && out.is_contiguous() && out.dtype == x.dtype);
  const int64_t out_n = out.numel();
  if (out_n == 0) return;
  // kept: x over the output's shape (reduced dims size 1); reduced: x over the reduced
  // dims (kept dims size 1).
  TensorRef kept = x, reduced = x;
  for (int d = 0; d < x.dim(); ++d) {
    LOOM_ASSERT(out.sizes[d] == x.sizes[d] || out.sizes[d] == 1);
    if (out.sizes[d] == x.sizes[d] && x.sizes[d] != 1)
      reduced.sizes[d] = 1;
    else
      kept.sizes[d] = 1;
  }
  const int64_t reduced_n = reduced.numel();
  dispatch_gpu_floating(x.dtype, op == ReduceOp::Sum ? "sum" : "max", [&]<class T>() {
    reduce_blocks<<<unsigned(std::min<int64_t>(out_n, 65536)), kThreads, 0, stream()>>>(
        out.ptr<T>(), out_n, x.ptr<const T>(), make_indexer<1>({&kept}),
        make_indexer<1>({&reduced}), reduced_n, op == ReduceOp::Max);
    LOOM_CUDA_LAUNCHED();
  });
}

}  // namespace loom::kernels::cuda
