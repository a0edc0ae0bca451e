// CUDA sum / max over any axes (see kernels/reduce.h), accumulating in double, in an order
// fixed by the shapes alone (results do not depend on scheduling). Three forms:
//  - columns: the kept elements are contiguous in x (e.g. a bias gradient, [N, C] -> [C]):
//    a thread per output column sums a fixed chunk of rows (coalesced across the warp),
//    then a second kernel adds the chunks in order;
//  - few outputs with long reductions (a norm, a mean): each output's reduced range is
//    split into a fixed number of slices, a block each, then the slices are added in order;
//  - otherwise one block per output element, its threads striding over the reduced
//    sub-block, combined by a fixed-shape block reduction.
#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace loom::kernels::cuda {
namespace {

// NaN wins a max, as on the CPU.
__device__ inline double max_op(double acc, double v) { return (v > acc || isnan(v)) ? v : acc; }

// Block-wide combine of one value per thread: sum, or max with NaN winning.
__device__ double block_combine(double acc, double* shared, bool is_max) {
  if (!is_max) return block_sum(acc, shared);
  __shared__ int any_nan;
  if (threadIdx.x == 0) any_nan = 0;
  __syncthreads();
  if (isnan(acc)) atomicOr(&any_nan, 1);
  acc = block_max(isnan(acc) ? -INFINITY : acc, shared);
  return any_nan ? NAN : acc;
}

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
    acc = block_combine(acc, shared, is_max);
    if (threadIdx.x == 0) out[o] = convert<T>(acc);
    __syncthreads();
  }
}

constexpr int64_t kChunkRows = 64;

// partial [chunks, K]: chunk c of rows [c * kChunkRows, ...) of column k.
template <class T>
__global__ void column_partials(double* partial, const T* x, Indexer<1> rows, int64_t R, int64_t K,
                                bool is_max) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  if (k >= K) return;
  double acc = is_max ? -INFINITY : 0.0;
  const int64_t r1 = min(R, (chunk + 1) * kChunkRows);
  for (int64_t r = chunk * kChunkRows; r < r1; ++r) {
    int64_t off[1];
    rows.offsets(r, off);
    const double v = convert<double>(x[off[0] + k]);
    acc = is_max ? max_op(acc, v) : acc + v;
  }
  partial[chunk * K + k] = acc;
}

template <class T>
__global__ void column_totals(T* out, const double* partial, int64_t chunks, int64_t K,
                              bool is_max) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= K) return;
  double acc = is_max ? -INFINITY : 0.0;
  for (int64_t c = 0; c < chunks; ++c)
    acc = is_max ? max_op(acc, partial[c * K + k]) : acc + partial[c * K + k];
  out[k] = convert<T>(acc);
}

constexpr int64_t kSlices = 128;

// partial [out_n, kSlices]: block (s, o) combines slice s of output o's reduced elements.
template <class T>
__global__ void slice_partials(double* partial, const T* x, Indexer<1> kept, Indexer<1> reduced,
                               int64_t reduced_n, bool is_max) {
  __shared__ double shared[32];
  const int64_t slice = blockIdx.x, o = blockIdx.y;
  const int64_t per = (reduced_n + kSlices - 1) / kSlices;
  const int64_t r0 = slice * per, r1 = min(reduced_n, r0 + per);
  int64_t base[1];
  kept.offsets(o, base);
  double acc = is_max ? -INFINITY : 0.0;
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) {
    int64_t off[1];
    reduced.offsets(r, off);
    const double v = convert<double>(x[base[0] + off[0]]);
    acc = is_max ? max_op(acc, v) : acc + v;
  }
  acc = block_combine(acc, shared, is_max);
  if (threadIdx.x == 0) partial[o * kSlices + slice] = acc;
}

template <class T>
__global__ void slice_totals(T* out, const double* partial, int64_t out_n, bool is_max) {
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= out_n) return;
  double acc = is_max ? -INFINITY : 0.0;
  for (int64_t s = 0; s < kSlices; ++s)
    acc = is_max ? max_op(acc, partial[o * kSlices + s]) : acc + partial[o * kSlices + s];
  out[o] = convert<T>(acc);
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
  const Indexer<1> kept_ix = make_indexer<1>({&kept}), reduced_ix = make_indexer<1>({&reduced});
  const bool columns = kept_ix.contiguous && out_n > 1 && reduced_n > 1;
  if (columns) {
    const int64_t chunks = (reduced_n + kChunkRows - 1) / kChunkRows;
    Scratch partial(size_t(chunks * out_n) * sizeof(double), x.device.index);
    const unsigned col_blocks = unsigned((out_n + kThreads - 1) / kThreads);
    dispatch_gpu_floating(x.dtype, op == ReduceOp::Sum ? "sum" : "max", [&]<class T>() {
      column_partials<<<dim3(col_blocks, unsigned(chunks)), kThreads, 0, stream()>>>(
          partial.as<double>(), x.ptr<const T>(), reduced_ix, reduced_n, out_n,
          op == ReduceOp::Max);
      LOOM_CUDA_LAUNCHED();
      column_totals<<<col_blocks, kThreads, 0, stream()>>>(out.ptr<T>(), partial.as<const double>(),
                                                           chunks, out_n, op == ReduceOp::Max);
      LOOM_CUDA_LAUNCHED();
    });
    return;
  }
  if (out_n <= 64 && reduced_n >= kSlices * 1024) {
    Scratch partial(size_t(out_n * kSlices) * sizeof(double), x.device.index);
    dispatch_gpu_floating(x.dtype, op == ReduceOp::Sum ? "sum" : "max", [&]<class T>() {
      slice_partials<<<dim3(unsigned(kSlices), unsigned(out_n)), kThreads, 0, stream()>>>(
          partial.as<double>(), x.ptr<const T>(), kept_ix, reduced_ix, reduced_n,
          op == ReduceOp::Max);
      LOOM_CUDA_LAUNCHED();
      slice_totals<<<grid_for(out_n), kThreads, 0, stream()>>>(
          out.ptr<T>(), partial.as<const double>(), out_n, op == ReduceOp::Max);
      LOOM_CUDA_LAUNCHED();
    });
    return;
  }
  dispatch_gpu_floating(x.dtype, op == ReduceOp::Sum ? "sum" : "max", [&]<class T>() {
    reduce_blocks<<<unsigned(std::min<int64_t>(out_n, 65536)), kThreads, 0, stream()>>>(
        out.ptr<T>(), out_n, x.ptr<const T>(), kept_ix, reduced_ix, reduced_n, op == ReduceOp::Max);
    LOOM_CUDA_LAUNCHED();
  });
}

}  // namespace loom::kernels::cuda
