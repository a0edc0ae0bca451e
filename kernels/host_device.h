// LOOM_HOST_DEVICE marks functions written once for the CPU and the GPU (nvcc compiles
// them for both; g++ sees plain inline functions).
#pragma once

#ifdef __CUDACC__
#define LOOM_HOST_DEVICE __host__ __device__
#else
#define LOOM_HOST_DEVICE
#endif
