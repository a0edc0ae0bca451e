// Helpers shared by the CPU kernels: the OpenMP grain size and the strided N-operand loop
// every pointwise kernel is built on.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/tensor_ref.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace loom::kernels::cpu {

// Below this many elements a kernel stays on one thread: waking the OpenMP team costs
// more than the work (a few microseconds).
constexpr int64_t kGrain = 32768;

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Runs body(begin, end) over [0, n) split into contiguous chunks, one per thread, or on
// the calling thread when n * cost_per_item is below kGrain.
template <class Body>
void parallel_for(int64_t n, int64_t cost_per_item, Body&& body) {
  const int threads = max_threads();
  if (threads <= 1 || n * cost_per_item < kGrain || n < 2) {
    body(int64_t(0), n);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) body(begin, end);
  }
#endif
}

// Iterates N operands of the same sizes and arbitrary strides (0 for broadcast dims) in
// row-major order. inner(offsets, inner_strides, count) handles `count` elements along the
// innermost (coalesced) dimension starting at element offsets `offsets` (one per operand).
// Work is split by linear index across threads, so results do not depend on thread count.
template <size_t N, class Inner>
void strided_apply(const Dims& sizes, const std::array<Dims, N>& strides, Inner&& inner) {
  // Drop size-1 dims and merge dims that are contiguous with respect to each other in
  // every operand, so the common cases become one long inner loop.
  Dims sz;
  std::array<Dims, N> st;
  for (int d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    const int k = sz.size();
    bool merge = k > 0;
    for (size_t o = 0; o < N && merge; ++o) merge = st[o][k - 1] == strides[o][d] * sizes[d];
    if (merge) {
      sz[k - 1] *= sizes[d];
      for (size_t o = 0; o < N; ++o) st[o][k - 1] = strides[o][d];
    } else {
      sz.push_back(sizes[d]);
      for (size_t o = 0; o < N; ++o) st[o].push_back(strides[o][d]);
    }
  }
  const int64_t total = sizes.numel();
  if (total == 0) return;
  if (sz.empty()) {  // a single element
    std::array<int64_t, N> off{}, inner_st{};
    inner(off, inner_st, int64_t(1));
    return;
  }
  const int nd = sz.size();
  const int64_t len = sz[nd - 1];
  std::array<int64_t, N> inner_st;
  for (size_t o = 0; o < N; ++o) inner_st[o] = st[o][nd - 1];

  parallel_for(total, 1, [&](int64_t begin, int64_t end) {
    // Multi-index of `begin`, then walk row by row (partial first and last rows).
    int64_t idx[Dims::kMax];
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = rem % sz[d];
      rem /= sz[d];
    }
    int64_t pos = begin;
    while (pos < end) {
      std::array<int64_t, N> off{};
      for (size_t o = 0; o < N; ++o)
        for (int d = 0; d < nd; ++d) off[o] += idx[d] * st[o][d];
      const int64_t count = std::min(len - idx[nd - 1], end - pos);
      inner(off, inner_st, count);
      pos += count;
      idx[nd - 1] += count;
      for (int d = nd - 1; d > 0 && idx[d] == sz[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  });
}

}  // namespace loom::kernels::cpu
