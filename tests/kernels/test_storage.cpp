// Storage and the caching allocator: alignment, reuse, stats, empty_cache.
#include <doctest/doctest.h>

#include <cstdint>

#include "kernels/cuda/runtime.h"
#include "kernels/error.h"
#include "kernels/storage.h"

namespace loom::kernels {
namespace {

TEST_CASE("storages are 64-byte aligned and freed blocks are reused") {
  const AllocatorStats s0 = cpu_allocator_stats();
  void* first = nullptr;
  {
    Storage a(1000, Device::cpu());
    first = a.data();
    CHECK(reinterpret_cast<uintptr_t>(a.data()) % 64 == 0);
    CHECK(cpu_allocator_stats().allocated_bytes == s0.allocated_bytes + 1024);
  }
  CHECK(cpu_allocator_stats().allocated_bytes == s0.allocated_bytes);
  Storage b(1000, Device::cpu());  // the same size class comes back from the cache
  CHECK(b.data() == first);
  CHECK(cpu_allocator_stats().reuses == s0.reuses + 1);
}

TEST_CASE("large blocks round up to at most 12.5% and the cache can be emptied") {
  const AllocatorStats s0 = cpu_allocator_stats();
  { Storage a(1 << 20 | 1, Device::cpu()); }  // just over 1 MiB
  const AllocatorStats s1 = cpu_allocator_stats();
  CHECK(s1.cached_bytes - s0.cached_bytes <= size_t((1 << 20) + (1 << 17)));
  cpu_empty_cache();
  CHECK(cpu_allocator_stats().cached_bytes == 0);
}

TEST_CASE("version counter and zero-byte storages") {
  Storage s(0, Device::cpu());
  CHECK(s.data() == nullptr);
  CHECK(s.version() == 0);
  s.bump_version();
  CHECK(s.version() == 1);
}

TEST_CASE("a CUDA storage without a CUDA build or a GPU is a clear error") {
  if (cuda::available()) {  // the GPU machine: allocation works (tests/cuda covers the rest)
    Storage s(16, Device::cuda(0));
    CHECK(s.data() != nullptr);
    return;
  }
#if LOOM_WITH_CUDA
  CHECK_THROWS_WITH_AS(Storage(16, Device::cuda(0)),
                       doctest::Contains("allocate: cuda:0 does not exist (no CUDA device is visible)"),
                       loom::Error);
#else
  CHECK_THROWS_WITH_AS(Storage(16, Device::cuda(0)),
                       doctest::Contains("this loom was built without CUDA; rebuild where nvcc"),
                       loom::Error);
#endif
}

}  // namespace
}  // namespace loom::kernels
