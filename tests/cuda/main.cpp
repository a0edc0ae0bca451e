// The CUDA suite's main: without a visible GPU (CI, this build on a CPU machine) it exits
// with 77, which ctest reports as "Skipped" with the message below; with one it runs every
// test case.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "kernels/cuda/runtime.h"

int main(int argc, char** argv) {
  if (!loom::kernels::cuda::available()) {
    std::printf(
        "test_cuda: skipped: no CUDA GPU visible (built with CUDA; run on a GPU machine, "
        "see docs/gpu.md)\n");
    return 77;
  }
  std::printf("test_cuda: on %s\n", loom::kernels::cuda::device_name(0));
  doctest::Context context(argc, argv);
  return context.run();
}
