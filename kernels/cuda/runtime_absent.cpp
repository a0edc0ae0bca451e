// The CUDA runtime API (runtime.h) in a build without CUDA: no devices; anything that
// needs one says how to get a CUDA build.
#include "kernels/cuda/runtime.h"
#include "kernels/error.h"

namespace loom::kernels::cuda {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(detail::cat(what,
                          ": this loom was built without CUDA; rebuild where nvcc is "
                          "installed (cmake finds it; -DLOOM_CUDA=ON makes it required)"));
}
}  // namespace

int device_count() { return 0; }
bool available() { return false; }
const char* device_name(int) { no_cuda("device_name"); }
void* allocate(size_t, int) { no_cuda("allocate on cuda"); }
void deallocate(void*, size_t, int) { no_cuda("free on cuda"); }
AllocatorStats allocator_stats(int) { no_cuda("allocator_stats"); }
void empty_cache(int) { no_cuda("empty_cache"); }
void copy_bytes(void*, Device, const void*, Device, size_t) { no_cuda("copy to or from cuda"); }
void synchronize(int) { no_cuda("synchronize"); }
void set_allow_tf32(bool) {}
bool allow_tf32() { return false; }
void set_flash_attention(bool) {}
bool flash_attention() { return false; }

}  // namespace loom::kernels::cuda
