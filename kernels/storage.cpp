#include "kernels/storage.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/runtime.h"
#include "kernels/error.h"

// Under AddressSanitizer, cached blocks are poisoned while they sit in the free lists, so
// a use of a tensor's memory after its storage died is still reported (as
// use-after-poison) even though the block was not returned to malloc.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define LOOM_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define LOOM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define LOOM_POISON(p, n) ((void)(p), (void)(n))
#define LOOM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace loom::kernels {
namespace {

size_t size_class(size_t n) {
  if (n <= 4096) return (n + 63) & ~size_t(63);
  size_t pow2 = 4096;
  while (pow2 * 2 < n) pow2 *= 2;
  const size_t step = pow2 / 8;  // 8 classes between pow2 and 2*pow2
  return (n + step - 1) / step * step;
}

// Free blocks by size class. A request whose class has none takes the smallest cached
// block of up to 1.5x its class (batches of varying shapes ask for sizes a class or two
// apart from step to step; a fresh block costs page faults on first touch, ~3% of a small
// model's step). Such a block is counted as the requested class while in use and goes back
// to its own class's list (`oversized` remembers it).
struct CpuCache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_lists;
  std::unordered_map<void*, size_t> oversized;  // live blocks larger than their request's class
  AllocatorStats stats;
};

CpuCache& cache() {
  static CpuCache* c = new CpuCache;  // never destroyed: storages may outlive statics
  return *c;
}

}  // namespace

void* cpu_allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t cls = size_class(nbytes);
  CpuCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    const size_t largest = cls + cls / 2;
    auto it = c.free_lists.lower_bound(cls);
    while (it != c.free_lists.end() && it->first <= largest && it->second.empty()) ++it;
    if (it != c.free_lists.end() && it->first <= largest) {
      void* p = it->second.back();
      it->second.pop_back();
      if (it->first != cls) c.oversized[p] = it->first;
      c.stats.cached_bytes -= it->first;
      c.stats.allocated_bytes += cls;
      c.stats.peak_allocated_bytes = std::max(c.stats.peak_allocated_bytes, c.stats.allocated_bytes);
      ++c.stats.reuses;
      LOOM_UNPOISON(p, nbytes);
      return p;
    }
  }
  void* p = std::aligned_alloc(64, cls);
  LOOM_CHECK(p != nullptr, "allocate: out of memory allocating ", nbytes, " bytes on cpu");
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.allocated_bytes += cls;
  c.stats.peak_allocated_bytes = std::max(c.stats.peak_allocated_bytes, c.stats.allocated_bytes);
  ++c.stats.system_allocs;
  return p;
}

void cpu_free(void* p, size_t nbytes) {
  if (p == nullptr) return;
  const size_t cls = size_class(nbytes);
  CpuCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  size_t block = cls;
  if (!c.oversized.empty()) {
    if (const auto it = c.oversized.find(p); it != c.oversized.end()) {
      block = it->second;
      c.oversized.erase(it);
    }
  }
  LOOM_POISON(p, block);
  c.free_lists[block].push_back(p);
  c.stats.allocated_bytes -= cls;
  c.stats.cached_bytes += block;
}

AllocatorStats cpu_allocator_stats() {
  CpuCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void cpu_reset_peak() {
  CpuCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.peak_allocated_bytes = c.stats.allocated_bytes;
}

void cpu_empty_cache() {
  CpuCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [cls, list] : c.free_lists) {
    for (void* p : list) {
      LOOM_UNPOISON(p, cls);
      std::free(p);
    }
  }
  c.free_lists.clear();
  c.stats.cached_bytes = 0;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = device.is_cpu() ? cpu_allocate(nbytes) : cuda::allocate(nbytes, device.index);
}

Storage::~Storage() {
  if (device_.is_cpu())
    cpu_free(data_, nbytes_);
  else
    cuda::deallocate(data_, nbytes_, device_.index);
}

}  // namespace loom::kernels
