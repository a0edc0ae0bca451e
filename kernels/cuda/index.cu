// CUDA index_select (see kernels/index.h): the index comes to the host to be validated
// (the CPU's message) and, for the backward, grouped by destination slice
// (kernels/scatter_order.h), so each slice of grad_x sums its sources in order of k.
#include "kernels/cuda/common.cuh"
#include "kernels/index.h"
#include "kernels/scatter_order.h"

namespace loom::kernels::cuda {
namespace {

std::vector<int64_t> checked_index(const TensorRef& index, const TensorRef& x, int dim) {
  const int64_t n = x.sizes[dim];
  std::vector<int64_t> flat = ids_to_host(index);
  for (size_t k = 0; k < flat.size(); ++k)
    if (flat[k] < 0 || flat[k] >= n)
      throw Error(detail::cat("index_select: x ", x.sizes, ", dim ", dim, ", index [", flat.size(),
                              "]: index ", flat[k], " at position ", k,
                              " is out of range for size ", n));
  return flat;
}

// An element of a (sliced) tensor: sizes of the dims other than `dim`, outermost first,
// with the strides of two operands; `step` is each operand's stride along `dim`.
struct SliceIndexer {
  int ndim = 0;
  int64_t sizes[Dims::kMax] = {}, dst_strides[Dims::kMax] = {}, src_strides[Dims::kMax] = {};
  int64_t dst_step = 0, src_step = 0;
  __device__ void offsets(int64_t e, int64_t& dst, int64_t& src) const {
    dst = src = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t idx = e % sizes[d];
      e /= sizes[d];
      dst += idx * dst_strides[d], src += idx * src_strides[d];
    }
  }
};

SliceIndexer slice_indexer(const TensorRef& dst, const TensorRef& src, int dim) {
  SliceIndexer s;
  for (int d = 0; d < dst.dim(); ++d) {
    if (d == dim) continue;
    s.sizes[s.ndim] = dst.sizes[d];
    s.dst_strides[s.ndim] = dst.strides[d];
    s.src_strides[s.ndim] = src.strides[d];
    ++s.ndim;
  }
  s.dst_step = dst.strides[dim];
  s.src_step = src.strides[dim];
  return s;
}

// out slice k = x slice index[k], for every element e of a slice.
template <class T>
__global__ void gather(T* out, const T* x, SliceIndexer s, const int64_t* index, int64_t K,
                       int64_t per_slice) {
  LOOM_GRID_STRIDE_LOOP(i, K * per_slice) {
    const int64_t k = i / per_slice;
    int64_t od, xs;
    s.offsets(i % per_slice, od, xs);
    out[od + k * s.dst_step] = x[xs + index[k] * s.src_step];
  }
}

// grad_x slice j += grad_out slices order[start[j] .. start[j + 1]) in turn.
template <class T>
__global__ void scatter(T* gx, const T* go, SliceIndexer s, const int64_t* start,
                        const int64_t* order, int64_t n, int64_t per_slice) {
  LOOM_GRID_STRIDE_LOOP(i, n * per_slice) {
    const int64_t j = i / per_slice;
    int64_t xd, os;
    s.offsets(i % per_slice, xd, os);
    T acc = gx[xd + j * s.dst_step];
    for (int64_t p = start[j]; p < start[j + 1]; ++p) acc += go[os + order[p] * s.src_step];
    gx[xd + j * s.dst_step] = acc;
  }
}

int64_t per_slice_of(const TensorRef& t, int dim) {
  int64_t n = 1;
  for (int d = 0; d < t.dim(); ++d)
    if (d != dim) n *= t.sizes[d];
  return n;
}

}  // namespace

void index_select_forward(TensorRef out, TensorRef x, int dim, TensorRef index) {
  LOOM_ASSERT(out.dim() == x.dim() && dim >= 0 && dim < x.dim() && out.dtype == x.dtype);
  LOOM_ASSERT(index.dim() == 1 && out.sizes[dim] == index.numel());
  const std::vector<int64_t> rows = checked_index(index, x, dim);
  const int64_t K = int64_t(rows.size()), per_slice = per_slice_of(out, dim);
  if (K * per_slice == 0) return;
  const Scratch dev = to_device(rows, x.device.index);
  dispatch_gpu_all(x.dtype, "index_select", [&]<class T>() {
    gather<<<grid_for(K * per_slice), kThreads, 0, stream()>>>(
        out.ptr<T>(), x.ptr<const T>(), slice_indexer(out, x, dim), dev.as<const int64_t>(), K,
        per_slice);
    LOOM_CUDA_LAUNCHED();
  });
}

void index_select_backward(TensorRef grad_x, TensorRef grad_out, int dim, TensorRef index) {
  LOOM_ASSERT(grad_x.dim() == grad_out.dim() && dim >= 0 && dim < grad_x.dim());
  LOOM_ASSERT(grad_out.dtype == grad_x.dtype && grad_out.sizes[dim] == index.numel());
  const std::vector<int64_t> rows = checked_index(index, grad_x, dim);
  const int64_t n = grad_x.sizes[dim], per_slice = per_slice_of(grad_x, dim);
  if (n * per_slice == 0) return;
  const ScatterOrder so = scatter_order(rows, n);
  const int device = grad_x.device.index;
  const Scratch start = to_device(so.start, device), order = to_device(so.order, device);
  dispatch_gpu_floating(grad_x.dtype, "index_select backward", [&]<class T>() {
    scatter<<<grid_for(n * per_slice), kThreads, 0, stream()>>>(
        grad_x.ptr<T>(), grad_out.ptr<const T>(), slice_indexer(grad_x, grad_out, dim),
        start.as<const int64_t>(), order.as<const int64_t>(), n, per_slice);
    LOOM_CUDA_LAUNCHED();
  });
}

}  // namespace loom::kernels::cuda
