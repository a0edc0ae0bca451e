// Helpers shared by the CUDA kernels: error checks, the stream, launch sizes, element
// types (bf16 computes in float), and the strided N-operand indexer that every pointwise
// kernel is built on.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cuda/runtime.h"
#include "kernels/error.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);

// Throws loom::Error naming the call and the CUDA error when `expr` fails.
#define LOOM_CUDA_CHECK(expr)                                                        \
  do {                                                                               \
    const cudaError_t loom_err_ = (expr);                                            \
    if (loom_err_ != cudaSuccess) [[unlikely]]                                       \
      ::loom::kernels::cuda::throw_cuda_error(loom_err_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a launch: a bad configuration shows up here, a fault at the next synchronisation.
#define LOOM_CUDA_LAUNCHED() LOOM_CUDA_CHECK(cudaGetLastError())

// The stream every loom kernel, copy and cuBLAS call runs on: the legacy default stream,
// so all work is ordered and a freed block can be reused at once (see runtime.h).
inline cudaStream_t stream() { return cudaStreamLegacy; }

using bf16 = __nv_bfloat16;

// The type arithmetic is done in: float for bf16, the type itself otherwise.
template <class T>
struct AccType {
  using type = T;
};
template <>
struct AccType<bf16> {
  using type = float;
};
template <class T>
using acc_t = typename AccType<T>::type;

// Conversions between element types on the device (bf16 through float).
template <class To, class From>
__host__ __device__ inline To convert(From x) {
  if constexpr (std::is_same_v<To, From>) {
    return x;
  } else if constexpr (std::is_same_v<From, bf16>) {
    return convert<To>(__bfloat162float(x));
  } else if constexpr (std::is_same_v<To, bf16>) {
    return __float2bfloat16(static_cast<float>(x));
  } else if constexpr (std::is_same_v<To, bool>) {
    return x != From(0);
  } else {
    return static_cast<To>(x);
  }
}

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items (capped: each thread loops over the rest).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  return unsigned(std::clamp<int64_t>((n + threads - 1) / threads, 1, 65536));
}

#define LOOM_GRID_STRIDE_LOOP(i, n)                                         \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(blockDim.x) * gridDim.x)

// Calls f.template operator()<T>() with T the device type of a floating dtype.
template <class F>
decltype(auto) dispatch_gpu_floating(DType t, const char* kernel, F&& f) {
  switch (t) {
    case DType::F32:
      return f.template operator()<float>();
    case DType::F64:
      return f.template operator()<double>();
    case DType::BF16:
      return f.template operator()<bf16>();
    default:
      break;
  }
  throw Error(detail::cat(kernel, ": dtype ", t,
                          " is not supported on cuda (use float32, float64 or bfloat16)"));
}

// float32 and float64 only: kernels that have no bf16 form (yet).
template <class F>
decltype(auto) dispatch_gpu_f32_f64(DType t, const char* kernel, F&& f) {
  switch (t) {
    case DType::F32:
      return f.template operator()<float>();
    case DType::F64:
      return f.template operator()<double>();
    default:
      break;
  }
  throw Error(
      detail::cat(kernel, ": dtype ", t, " is not supported on cuda (use float32 or float64)"));
}

template <class F>
decltype(auto) dispatch_gpu_all(DType t, const char* kernel, F&& f) {
  switch (t) {
    case DType::F32:
      return f.template operator()<float>();
    case DType::F64:
      return f.template operator()<double>();
    case DType::BF16:
      return f.template operator()<bf16>();
    case DType::I32:
      return f.template operator()<int32_t>();
    case DType::I64:
      return f.template operator()<int64_t>();
    case DType::Bool:
      return f.template operator()<bool>();
    default:
      break;
  }
  throw Error(detail::cat(kernel, ": dtype ", t, " is not supported on cuda"));
}

template <class F>
decltype(auto) dispatch_gpu_index(DType t, const char* kernel, F&& f) {
  if (t == DType::I64) return f.template operator()<int64_t>();
  if (t == DType::I32) return f.template operator()<int32_t>();
  throw Error(detail::cat(kernel, ": index dtype ", t, " is not int32 or int64"));
}

// N operands of the same sizes with their own strides, coalesced on the host (size-1 dims
// dropped, dims that are contiguous for every operand merged) and passed by value to a
// kernel, which maps a row-major linear index to one element offset per operand.
template <int N>
struct Indexer {
  int ndim = 0;
  int64_t sizes[Dims::kMax] = {};
  int64_t strides[N][Dims::kMax] = {};
  bool contiguous = true;  // every operand contiguous: offsets are the linear index
  bool narrow = true;      // fewer than 2^31 elements: index arithmetic in 32 bits (faster)

  __device__ void offsets(int64_t i, int64_t (&off)[N]) const {
    if (contiguous) {
      for (int k = 0; k < N; ++k) off[k] = i;
      return;
    }
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (narrow) {
      uint32_t j = uint32_t(i);
      for (int d = ndim - 1; d >= 0; --d) {
        const uint32_t s = uint32_t(sizes[d]), idx = j % s;
        j /= s;
        for (int k = 0; k < N; ++k) off[k] += int64_t(idx) * strides[k][d];
      }
      return;
    }
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t idx = i % sizes[d];
      i /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

template <int N>
Indexer<N> make_indexer(const std::array<const TensorRef*, N>& ops) {
  const TensorRef& first = *ops[0];
  Indexer<N> ix;
  // Innermost first, merging dim d into the running innermost when contiguous for all.
  int64_t sizes[Dims::kMax];
  int64_t strides[N][Dims::kMax];
  int n = 0;
  for (int d = first.dim() - 1; d >= 0; --d) {
    const int64_t s = first.sizes[d];
    if (s == 1) continue;
    bool merge = n > 0;
    for (int k = 0; k < N && merge; ++k)
      merge = ops[k]->strides[d] == strides[k][n - 1] * sizes[n - 1];
    if (merge) {
      sizes[n - 1] *= s;
      continue;
    }
    sizes[n] = s;
    for (int k = 0; k < N; ++k) strides[k][n] = ops[k]->strides[d];
    ++n;
  }
  ix.ndim = n;
  ix.narrow = first.numel() < (int64_t(1) << 31);
  for (int d = 0; d < n; ++d) {  // back to outermost-first
    ix.sizes[d] = sizes[n - 1 - d];
    for (int k = 0; k < N; ++k) ix.strides[k][d] = strides[k][n - 1 - d];
  }
  ix.contiguous = n == 0 || (n == 1 && [&] {
                    for (int k = 0; k < N; ++k)
                      if (ix.strides[k][0] != 1) return false;
                    return true;
                  }());
  return ix;
}

// Device scratch memory from the caching allocator, returned when the holder dies (work
// queued on it is ordered before any later user, see runtime.h).
class Scratch {
 public:
  Scratch(size_t nbytes, int device) : p_(allocate(nbytes, device)), n_(nbytes), device_(device) {}
  ~Scratch() {
    if (p_) deallocate(p_, n_, device_);
  }
  Scratch(Scratch&& o) noexcept : p_(o.p_), n_(o.n_), device_(o.device_) { o.p_ = nullptr; }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch& operator=(Scratch&&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
  size_t n_;
  int device_;
};

// Block-wide sum of one value per thread (blockDim.x a multiple of 32, at most 1024);
// every thread gets the total. `shared` holds 32 values.
template <class T>
__device__ T block_sum(T v, T* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  v = lane < warps ? shared[lane] : T(0);
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class T>
__device__ T block_max(T v, T* shared) {
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  v = lane < warps ? shared[lane] : shared[0];
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

}  // namespace loom::kernels::cuda

namespace loom::kernels::cuda {

// The elements of an int32/int64 tensor on the device (any strides) in row-major order, as
// int64 on the host: what kernels that validate or sort indices read. Synchronises.
std::vector<int64_t> ids_to_host(TensorRef ids);

// A host vector copied to a device scratch block.
template <class T>
Scratch to_device(const std::vector<T>& v, int device) {
  Scratch s(std::max<size_t>(v.size(), 1) * sizeof(T), device);
  copy_bytes(s.as<void>(), Device::cuda(device), v.data(), Device::cpu(), v.size() * sizeof(T));
  return s;
}

}  // namespace loom::kernels::cuda
