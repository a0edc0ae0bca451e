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

// sum_j term(j) for j < n, in double. kWidth accumulators (a multiple of kLanes): the
// compiler keeps them in kWidth / 8 vector registers, so long rows (a vocabulary of 8000)
// run kWidth / 8 chains of dependent adds side by side instead of one. They fold into
// kLanes accumulators, then a fixed tree: the order depends on n and kWidth only.
template <int kWidth = kLanes, class F>
double lane_sum(int64_t n, F term) {
  static_assert(kWidth % kLanes == 0);
  double acc[kWidth] = {};
  int64_t j = 0;
  for (; j + kWidth <= n; j += kWidth)
    for (int l = 0; l < kWidth; ++l) acc[l] += term(j + l);
  for (; j < n; ++j) acc[0] += term(j);
  for (int l = kLanes; l < kWidth; ++l) acc[l % kLanes] += acc[l];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// max_j x[j]: -inf for n = 0; NaNs are skipped (x > acc is false for them). kWidth as in
// lane_sum (the maximum does not depend on the order).
template <int kWidth = kLanes, class T>
T row_max(const T* x, int64_t n) {
  T acc[kWidth];
  std::fill(acc, acc + kWidth, -std::numeric_limits<T>::infinity());
  int64_t j = 0;
  for (; j + kWidth <= n; j += kWidth)
    for (int l = 0; l < kWidth; ++l) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  for (; j < n; ++j) acc[0] = x[j] > acc[0] ? x[j] : acc[0];
  return *std::max_element(acc, acc + kWidth);
}

}  // namespace loom::kernels::cpu
