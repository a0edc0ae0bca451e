// CUDA embedding (see kernels/embedding.h). The ids come to the host once per call: they
// are validated there (the same message as the CPU's) and, for the backward, grouped by
// row (kernels/scatter_order.h) so each weight row sums its gradient rows in id order,
// deterministically, with no atomics.
#include "kernels/cuda/common.cuh"
#include "kernels/embedding.h"
#include "kernels/scatter_order.h"

namespace loom::kernels::cuda {
namespace {

// The ids in row-major order, each checked against [0, V).
std::vector<int64_t> checked_ids(const TensorRef& ids, const TensorRef& weight) {
  const int64_t V = weight.sizes[0];
  std::vector<int64_t> flat = ids_to_host(ids);
  for (size_t i = 0; i < flat.size(); ++i) {
    if (flat[i] >= 0 && flat[i] < V) continue;
    Dims position;
    position.resize(ids.dim());
    int64_t rest = int64_t(i);
    for (int d = ids.dim() - 1; d >= 0; --d)
      position[d] = rest % ids.sizes[d], rest /= ids.sizes[d];
    throw Error(detail::cat("embedding: ids ", ids.sizes, ", weight ", weight.sizes, ": id ",
                            flat[i], " at position ", position, " is out of range [0, ", V, ")"));
  }
  return flat;
}

template <class T>
__global__ void gather_rows(T* out, int64_t os0, int64_t os1, const T* w, int64_t ws0, int64_t ws1,
                            const int64_t* ids, int64_t N, int64_t C) {
  LOOM_GRID_STRIDE_LOOP(e, N * C) {
    const int64_t i = e / C, c = e % C;
    out[i * os0 + c * os1] = w[ids[i] * ws0 + c * ws1];
  }
}

// Block b adds the gradient rows of weight row rows[b] (sources order[start..end)).
template <class T>
__global__ void scatter_rows(T* gw, int64_t ws0, int64_t ws1, const T* g, int64_t gs0, int64_t gs1,
                             const int64_t* rows, const int64_t* start, const int64_t* order,
                             int64_t C) {
  const int64_t j = rows[blockIdx.x];
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    T acc = gw[j * ws0 + c * ws1];
    for (int64_t p = start[j]; p < start[j + 1]; ++p) acc += g[order[p] * gs0 + c * gs1];
    gw[j * ws0 + c * ws1] = acc;
  }
}

}  // namespace

void embedding_forward(TensorRef out, TensorRef ids, TensorRef weight) {
  LOOM_ASSERT(weight.dim() == 2 && out.dim() == 2 && out.sizes[0] == ids.numel());
  LOOM_ASSERT(out.sizes[1] == weight.sizes[1] && out.dtype == weight.dtype);
  const std::vector<int64_t> flat = checked_ids(ids, weight);
  const int64_t N = out.sizes[0], C = out.sizes[1];
  if (N * C == 0) return;
  const Scratch dev_ids = to_device(flat, weight.device.index);
  dispatch_gpu_floating(weight.dtype, "embedding", [&]<class T>() {
    gather_rows<<<grid_for(N * C), kThreads, 0, stream()>>>(
        out.ptr<T>(), out.strides[0], out.strides[1], weight.ptr<const T>(), weight.strides[0],
        weight.strides[1], dev_ids.as<const int64_t>(), N, C);
    LOOM_CUDA_LAUNCHED();
  });
}

void embedding_backward(TensorRef grad_weight, TensorRef grad_out, TensorRef ids) {
  LOOM_ASSERT(grad_weight.dim() == 2 && grad_out.dim() == 2);
  LOOM_ASSERT(grad_out.sizes[0] == ids.numel() && grad_out.sizes[1] == grad_weight.sizes[1]);
  LOOM_ASSERT(grad_out.dtype == grad_weight.dtype);
  const std::vector<int64_t> flat = checked_ids(ids, grad_weight);
  const int64_t V = grad_weight.sizes[0], C = grad_out.sizes[1];
  const ScatterOrder so = scatter_order(flat, V);
  std::vector<int64_t> present;  // weight rows that receive a gradient
  for (int64_t j = 0; j < V; ++j)
    if (so.start[size_t(j + 1)] > so.start[size_t(j)]) present.push_back(j);
  if (present.empty() || C == 0) return;
  const int device = grad_weight.device.index;
  const Scratch rows = to_device(present, device), start = to_device(so.start, device),
                order = to_device(so.order, device);
  dispatch_gpu_floating(grad_weight.dtype, "embedding backward", [&]<class T>() {
    scatter_rows<<<unsigned(present.size()), kThreads, 0, stream()>>>(
        grad_weight.ptr<T>(), grad_weight.strides[0], grad_weight.strides[1],
        grad_out.ptr<const T>(), grad_out.strides[0], grad_out.strides[1], rows.as<const int64_t>(),
        start.as<const int64_t>(), order.as<const int64_t>(), C);
    LOOM_CUDA_LAUNCHED();
  });
}

}  // namespace loom::kernels::cuda
