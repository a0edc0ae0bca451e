// ids_to_host (common.cuh): flatten on the device to contiguous int64, then one copy.
#include "kernels/cuda/common.cuh"
#include "kernels/pointwise.h"

namespace loom::kernels::cuda {

std::vector<int64_t> ids_to_host(TensorRef ids) {
  LOOM_ASSERT(ids.dtype == DType::I32 || ids.dtype == DType::I64);
  const int64_t n = ids.numel();
  std::vector<int64_t> host(size_t(std::max<int64_t>(n, 0)));
  if (n == 0) return host;
  Scratch flat(size_t(n) * sizeof(int64_t), ids.device.index);
  TensorRef dst{flat.as<void>(), DType::I64, ids.device, ids.sizes, contiguous_strides(ids.sizes)};
  cuda::copy(dst, ids);
  copy_bytes(host.data(), Device::cpu(), flat.as<void>(), ids.device, size_t(n) * sizeof(int64_t));
  return host;
}

}  // namespace loom::kernels::cuda
