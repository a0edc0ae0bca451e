// CUDA runtime pieces (see runtime.h): the caching device allocator, copies, device
// queries, and the error path every CUDA call goes through.
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/common.cuh"

namespace loom::kernels::cuda {

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so later calls can still work
  throw Error(detail::cat("cuda: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") in ",
                          what, " at ", file, ":", line));
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

bool available() { return device_count() > 0; }

namespace {

void check_device(int device, const char* what) {
  const int n = device_count();
  LOOM_CHECK(device >= 0 && device < n, what, ": cuda:", device, " does not exist (",
             n == 0 ? std::string("no CUDA device is visible") : detail::cat(n, " visible"), ")");
}

// Makes `device` current on this thread when it is not already.
void use_device(int device) {
  int current = -1;
  LOOM_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) LOOM_CUDA_CHECK(cudaSetDevice(device));
}

// Size classes as the CPU allocator's: 512-byte multiples up to 64 KiB, then 8 classes per
// power of two (at most 12.5% slack).
size_t size_class(size_t n) {
  if (n <= 65536) return (n + 511) & ~size_t(511);
  size_t pow2 = 65536;
  while (pow2 * 2 < n) pow2 *= 2;
  const size_t step = pow2 / 8;
  return (n + step - 1) / step * step;
}

struct DeviceCache {
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  AllocatorStats stats;
};

struct Caches {
  std::mutex mu;
  std::unordered_map<int, DeviceCache> devices;
};

Caches& caches() {
  static Caches* c = new Caches;  // never destroyed: storages may outlive statics
  return *c;
}

// Returns every cached block of one device to the driver (caller holds the lock).
void release_cached(DeviceCache& d) {
  for (auto& [cls, list] : d.free_lists)
    for (void* p : list) cudaFree(p);
  d.free_lists.clear();
  d.stats.cached_bytes = 0;
}

}  // namespace

const char* device_name(int index) {
  check_device(index, "device_name");
  static thread_local std::string name;
  cudaDeviceProp prop{};
  LOOM_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  name = detail::cat(prop.name, ", ", prop.multiProcessorCount, " SMs, ",
                     double(prop.totalGlobalMem) / double(1 << 30), " GiB");
  return name.c_str();
}

void* allocate(size_t nbytes, int device) {
  if (nbytes == 0) return nullptr;
  const size_t cls = size_class(nbytes);
  Caches& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  DeviceCache& d = c.devices[device];
  auto take = [&](void* p) {
    d.stats.allocated_bytes += cls;
    d.stats.peak_allocated_bytes = std::max(d.stats.peak_allocated_bytes, d.stats.allocated_bytes);
    return p;
  };
  auto it = d.free_lists.find(cls);
  if (it != d.free_lists.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    d.stats.cached_bytes -= cls;
    ++d.stats.reuses;
    return take(p);
  }
  check_device(device, "allocate");
  use_device(device);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, cls);
  if (err == cudaErrorMemoryAllocation) {  // free the cache (other size classes) and retry
    cudaGetLastError();
    LOOM_CUDA_CHECK(cudaDeviceSynchronize());
    release_cached(d);
    err = cudaMalloc(&p, cls);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw Error(detail::cat("allocate: out of memory on cuda:", device, " allocating ", nbytes,
                            " bytes (", d.stats.allocated_bytes, " bytes in live tensors, ", free_b,
                            " of ", total_b, " bytes free on the device); use a smaller ",
                            "batch (data.max_tokens) or a smaller model"));
  }
  ++d.stats.system_allocs;
  return take(p);
}

void deallocate(void* p, size_t nbytes, int device) {
  if (p == nullptr) return;
  const size_t cls = size_class(nbytes);
  Caches& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  DeviceCache& d = c.devices[device];
  d.free_lists[cls].push_back(p);
  d.stats.allocated_bytes -= cls;
  d.stats.cached_bytes += cls;
}

AllocatorStats allocator_stats(int device) {
  Caches& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.devices[device].stats;
}

void empty_cache(int device) {
  synchronize(device);
  Caches& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  release_cached(c.devices[device]);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t n) {
  if (n == 0) return;
  cudaMemcpyKind kind = cudaMemcpyDefault;  // unified addressing tells the directions apart
  if (dst_device.is_cuda())
    use_device(dst_device.index);
  else if (src_device.is_cuda())
    use_device(src_device.index);
  LOOM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, kind, stream()));
  LOOM_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void synchronize(int device) {
  check_device(device, "synchronize");
  use_device(device);
  LOOM_CUDA_CHECK(cudaDeviceSynchronize());
}

namespace {
bool g_allow_tf32 = false;
bool g_flash_attention = [] {
  const char* v = std::getenv("LOOM_FLASH_ATTENTION");
  return v != nullptr && std::string(v) == "1";
}();
}  // namespace
void set_allow_tf32(bool on) { g_allow_tf32 = on; }
bool allow_tf32() { return g_allow_tf32; }

void set_flash_attention(bool on) { g_flash_attention = on; }
bool flash_attention() { return g_flash_attention; }

}  // namespace loom::kernels::cuda
