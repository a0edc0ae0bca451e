// The CPU thread count (OpenMP's, which OpenBLAS's OpenMP build shares).
#pragma once

namespace loom::kernels {

int num_threads();
void set_num_threads(int n);  // n >= 1

}  // namespace loom::kernels
