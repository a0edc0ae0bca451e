// Timing helpers shared by the benchmarks: a monotonic clock in nanoseconds, the median of
// repeated measurements, and a header line naming the thread settings a run used.
#pragma once

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace loom::bench {

inline double now_ns() {
  using clock = std::chrono::steady_clock;
  return double(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
          .count());
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Prints the environment a result depends on.
inline void print_settings(const char* what) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "(unset)";
  };
  std::printf("%s: OMP_NUM_THREADS=%s (omp_get_max_threads %d), OPENBLAS_NUM_THREADS=%s\n\n", what,
              env("OMP_NUM_THREADS"), omp_get_max_threads(), env("OPENBLAS_NUM_THREADS"));
}

}  // namespace loom::bench
