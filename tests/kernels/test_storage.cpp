// Storage and the caching allocator: alignment, reuse (exact and up to 1.5x), stats,
// empty_cache.
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

TEST_CASE("a request takes a cached block of up to 1.5x its class, which goes back to its own class") {
  cpu_empty_cache();
  const AllocatorStats s0 = cpu_allocator_stats();
  void* big = nullptr;
  { Storage a(200000, Device::cpu()); big = a.data(); }  // class 212992, now cached
  CHECK(cpu_allocator_stats().cached_bytes == s0.cached_bytes + 212992);
  {
    Storage b(170000, Device::cpu());  // class 180224: none cached, 212992 <= 1.5x
    CHECK(b.data() == big);
    CHECK(cpu_allocator_stats().allocated_bytes == s0.allocated_bytes + 180224);
    CHECK(cpu_allocator_stats().cached_bytes == s0.cached_bytes);
    Storage c(100000, Device::cpu());  // class 106496: the 212992 block is in use anyway
    CHECK(c.data() != big);
  }
  CHECK(cpu_allocator_stats().allocated_bytes == s0.allocated_bytes);
  CHECK(cpu_allocator_stats().cached_bytes == s0.cached_bytes + 212992 + 106496);
  {
    Storage d(100000, Device::cpu());  // its own class is cached again: the exact fit
    CHECK(d.data() != big);
    Storage e(130000, Device::cpu());  // class 131072: 212992 > 1.5x, a fresh block
    CHECK(e.data() != big);
    Storage f(200000, Device::cpu());  // the big block is back in its own class
    CHECK(f.data() == big);
  }
  cpu_empty_cache();
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
