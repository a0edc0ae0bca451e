// The CUDA runtime as the rest of loom sees it: devices, the caching allocator behind
// Storage on cuda:N, and byte copies between host and device. Plain C++ (no CUDA headers),
// so autograd/ and tests can call it; every function throws loom::Error in a build
// without CUDA or on a machine without a GPU, naming what is missing.
#pragma once

#include <cstddef>

#include "kernels/device.h"
#include "kernels/storage.h"

namespace loom::kernels::cuda {

// Number of visible CUDA devices; 0 in a CPU-only build or without a driver/GPU.
int device_count();
// True when this build has CUDA and a GPU is visible (what GPU tests check first).
bool available();
// "NVIDIA H100 80GB HBM3, 132 SMs, 79.1 GiB" for cuda:index.
const char* device_name(int index);

// Device memory from a caching allocator: freed blocks are kept per size class (as the
// CPU allocator) and handed out again, so steady-state training never calls cudaMalloc.
// Blocks are used in the order of the one stream loom runs on, so a block freed by the
// host may be handed out at once: work on it is queued after the previous user's.
void* allocate(size_t nbytes, int device);
void deallocate(void* p, size_t nbytes, int device);
AllocatorStats allocator_stats(int device);
void empty_cache(int device);

// Copies n bytes between host and device memory (or within a device); returns when the
// copy is done, so host memory may be reused at once.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t n);

// Waits for all work queued on `device`; reports a failed kernel as loom::Error.
void synchronize(int device);

// TF32 tensor-core GEMMs for float32 (PyTorch's allow_tf32): faster, 10-bit mantissas in
// the products. Off by default, so float32 results match the CPU to 1e-5.
void set_allow_tf32(bool on);
bool allow_tf32();

// Flash-style fused attention (kernels/attention.h) for the float32 attention op on cuda
// instead of the materialised scores. Off by default until it has run on a GPU (issue 9);
// LOOM_FLASH_ATTENTION=1 in the environment turns it on at start.
void set_flash_attention(bool on);
bool flash_attention();

}  // namespace loom::kernels::cuda
