// The order in which a scatter-add visits its sources, grouped by destination: a counting
// sort of source positions k by rows[k]. The sources of destination j are
// order[start[j] .. start[j + 1]), in increasing k, so every destination sums its
// contributions in source order on any device and any thread count.
#pragma once

#include <cstdint>
#include <vector>

namespace loom::kernels {

struct ScatterOrder {
  std::vector<int64_t> start, order;
};

// rows[k] in [0, n) (checked by the caller).
inline ScatterOrder scatter_order(const std::vector<int64_t>& rows, int64_t n) {
  ScatterOrder s;
  s.start.assign(size_t(n + 1), 0);
  s.order.resize(rows.size());
  for (int64_t r : rows) ++s.start[size_t(r + 1)];
  for (int64_t j = 0; j < n; ++j) s.start[size_t(j + 1)] += s.start[size_t(j)];
  std::vector<int64_t> next(s.start.begin(), s.start.end() - 1);
  for (size_t k = 0; k < rows.size(); ++k) s.order[size_t(next[size_t(rows[k])]++)] = int64_t(k);
  return s;
}

}  // namespace loom::kernels
