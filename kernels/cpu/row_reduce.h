// Row reductions for the row-wise kernels (attention, softmax, cross-entropy): eight
// interleaved accumulators combined in a fixed order. One running value is a chain of
// dependent adds (4 cycles each); eight vectorize. The result depends on the data only, not
// on threads or alignment.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace loom::kernels::cpu {

constexpr int kLanes = 8;

// sum_j term(j) for j < n, in double.
template <class F>
double lane_sum(int64_t n, F term) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(j + l);
  for (; j < n; ++j) acc[0] += term(j);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// max_j x[j]: -inf for n = 0; NaNs are skipped (x > acc is false for them).
template <class T>
T row_max(const T* x, int64_t n) {
  T acc[kLanes];
  std::fill(acc, acc + kLanes, -std::numeric_limits<T>::infinity());
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  for (; j < n; ++j) acc[0] = x[j] > acc[0] ? x[j] : acc[0];
  return *std::max_element(acc, acc + kLanes);
}

}  // namespace loom::kernels::cpu
