// The sum of squares over a list of contiguous cuda tensors (see kernels/reduce.h), for
// gradient norms: two launches and one transfer of the result for the whole list, where
// a per-tensor sum(g * g).item() costs a temporary, two launches and a device
// synchronisation per parameter. Fixed chunks of each tensor, a block each, squares summed
// in double by a fixed-shape block reduction, then the chunk sums added in list order by
// one block: the result depends on the shapes only.
#include <span>

#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace loom::kernels::cuda {
namespace {

constexpr int64_t kChunk = 16384;

struct Chunk {
  const void* data;  // the chunk's first element
  int64_t n;
};

template <class T>
__global__ void chunk_square_sums(double* partial, const Chunk* chunks) {
  __shared__ double shared[32];
  const Chunk c = chunks[blockIdx.x];
  const T* x = static_cast<const T*>(c.data);
  double acc = 0;
  for (int64_t i = threadIdx.x; i < c.n; i += blockDim.x) {
    const double v = convert<double>(x[i]);
    acc += v * v;
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void ordered_total(double* total, const double* partial, int64_t n) {
  __shared__ double shared[32];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) *total = acc;
}

// One dtype's tensors, all on `device`.
double sum_of_squares_of(DType dtype, int device, std::span<const TensorRef> xs) {
  std::vector<Chunk> chunks;
  for (const TensorRef& x : xs) {
    const char* p = static_cast<const char*>(x.data);
    for (int64_t i = 0, n = x.numel(); i < n; i += kChunk)
      chunks.push_back({p + i * int64_t(dtype_size(dtype)), std::min(kChunk, n - i)});
  }
  if (chunks.empty()) return 0;
  const size_t table_bytes = chunks.size() * sizeof(Chunk);
  Scratch table(table_bytes, device), partial(chunks.size() * sizeof(double), device),
      total(sizeof(double), device);
  copy_bytes(table.as<void>(), Device::cuda(device), chunks.data(), Device::cpu(), table_bytes);
  dispatch_gpu_floating(dtype, "sum_of_squares", [&]<class T>() {
    chunk_square_sums<T><<<unsigned(chunks.size()), kThreads, 0, stream()>>>(
        partial.as<double>(), table.as<const Chunk>());
    LOOM_CUDA_LAUNCHED();
  });
  ordered_total<<<1, 1024, 0, stream()>>>(total.as<double>(), partial.as<const double>(),
                                         int64_t(chunks.size()));
  LOOM_CUDA_LAUNCHED();
  double result = 0;
  copy_bytes(&result, Device::cpu(), total.as<const void>(), Device::cuda(device), sizeof result);
  return result;
}

}  // namespace

double sum_of_squares(std::span<const TensorRef> xs) {
  if (xs.empty()) return 0;
  const Device device = xs[0].device;
  std::vector<TensorRef> f32, f64, bf16;
  for (const TensorRef& x : xs) {
    LOOM_CHECK(x.device == device && x.is_contiguous(), "sum_of_squares: ", x.device, " ", x.dtype,
               " ", x.sizes, ": expected contiguous tensors all on ", device);
    (x.dtype == DType::F32 ? f32 : x.dtype == DType::F64 ? f64 : bf16).push_back(x);
  }
  for (const TensorRef& x : bf16)
    LOOM_CHECK(x.dtype == DType::BF16, "sum_of_squares: ", x.dtype,
               ": expected float32, float64 or bfloat16 tensors");
  // float32 first, then float64, then bfloat16: a fixed order for a given list.
  return sum_of_squares_of(DType::F32, device.index, f32) +
         sum_of_squares_of(DType::F64, device.index, f64) +
         sum_of_squares_of(DType::BF16, device.index, bf16);
}

}  // namespace loom::kernels::cuda
