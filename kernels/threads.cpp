#include "kernels/threads.h"

#include "kernels/cpu/common.h"
#include "kernels/error.h"

namespace loom::kernels {

int num_threads() { return cpu::max_threads(); }

void set_num_threads(int n) {
  LOOM_CHECK(n >= 1, "threads = ", n, ": must be at least 1");
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

}  // namespace loom::kernels
