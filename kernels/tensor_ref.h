// TensorRef: the non-owning view kernels see (data pointer already offset, dtype, device,
// sizes, strides in elements). Kernels never see autograd's Tensor; this keeps them
// testable alone and keeps the autograd layer out of device code.
#pragma once

#include <cstdint>

#include "kernels/device.h"
#include "kernels/dims.h"
#include "kernels/dtype.h"

// The CUDA branch of a kernel's dispatch: returns the CUDA kernel's result in a CUDA build.
// In a CPU-only build no CUDA tensor can exist (Storage refuses cuda devices), so reaching
// it is a bug.
#if LOOM_WITH_CUDA
#define LOOM_ON_CUDA(call) return call
#else
#define LOOM_ON_CUDA(call) LOOM_UNREACHABLE(#call ": CUDA tensor in a CPU-only build")
#endif

namespace loom::kernels {

struct TensorRef {
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device;
  Dims sizes;
  Dims strides;

  int dim() const { return sizes.size(); }
  int64_t numel() const { return sizes.numel(); }
  template <class T> T* ptr() const { return static_cast<T*>(data); }

  bool is_contiguous() const {
    if (numel() == 0) return true;
    int64_t expected = 1;
    for (int i = dim() - 1; i >= 0; --i) {
      if (sizes[i] == 1) continue;
      if (strides[i] != expected) return false;
      expected *= sizes[i];
    }
    return true;
  }
};

// Calls f.template operator()<T>() with T the C++ type of a floating dtype (float or
// double); other dtypes are an error naming the kernel.
template <class F>
decltype(auto) dispatch_floating(DType t, const char* kernel, F&& f) {
  switch (t) {
    case DType::F32: return f.template operator()<float>();
    case DType::F64: return f.template operator()<double>();
    default: break;
  }
  throw Error(detail::cat(kernel, ": dtype ", t, " is not supported on cpu (use float32 or float64)"));
}

// As dispatch_floating, for every dtype the CPU kernels store (float, double, int32,
// int64, bool).
template <class F>
decltype(auto) dispatch_all(DType t, const char* kernel, F&& f) {
  switch (t) {
    case DType::F32: return f.template operator()<float>();
    case DType::F64: return f.template operator()<double>();
    case DType::I32: return f.template operator()<int32_t>();
    case DType::I64: return f.template operator()<int64_t>();
    case DType::Bool: return f.template operator()<bool>();
    default: break;
  }
  throw Error(detail::cat(kernel, ": dtype ", t, " is not supported on cpu"));
}

}  // namespace loom::kernels
