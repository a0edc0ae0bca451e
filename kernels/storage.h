// Storage: bytes on one device, from the caching allocator, plus a version counter that
// in-place writes bump (autograd compares it to catch tensors modified after being saved
// for backward). Shared by every tensor view of the same memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/device.h"

namespace loom::kernels {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  uint64_t version_ = 0;
};

using StoragePtr = std::shared_ptr<Storage>;

// The CPU caching allocator behind Storage. Freed blocks go to per-size-class free lists
// and are handed out again, so a training step in steady state does not call malloc for
// tensor data. Size classes are 64-byte multiples up to 4 KiB, then 8 classes per power
// of two (at most 12.5% slack). Blocks are 64-byte aligned (AVX-512 lines).
struct AllocatorStats {
  size_t allocated_bytes = 0;  // in live storages (rounded to size classes)
  size_t cached_bytes = 0;     // free, held for reuse
  size_t peak_allocated_bytes = 0;
  uint64_t system_allocs = 0;  // calls that went to the system allocator
  uint64_t reuses = 0;         // calls served from the cache
};
void* cpu_allocate(size_t nbytes);
void cpu_free(void* p, size_t nbytes);
AllocatorStats cpu_allocator_stats();
void cpu_empty_cache();  // returns all cached blocks to the system
void cpu_reset_peak();   // peak_allocated_bytes = allocated_bytes (a new measurement window)

}  // namespace loom::kernels
