// The strided loop under the pointwise kernels and the reductions: transposed, broadcast
// (stride 0) and sliced operands; results independent of the thread count; the
// multi-tensor sum of squares behind gradient norms.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>
#include <vector>

#include "kernels/pointwise.h"
#include "kernels/reduce.h"

namespace loom::kernels {
namespace {

TensorRef ref(std::vector<float>& v, Dims sizes, Dims strides) {
  return {v.data(), DType::F32, Device::cpu(), sizes, strides};
}

TEST_CASE("copy of a transposed view") {
  std::vector<float> x(6), y(6);
  std::iota(x.begin(), x.end(), 0.0f);  // [[0,1,2],[3,4,5]]
  copy(ref(y, {3, 2}, {2, 1}), ref(x, {3, 2}, {1, 3}));
  CHECK(y == std::vector<float>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("binary with a stride-0 (broadcast) operand and a sliced output") {
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {10, 20, 30}, out(12, -1);
  // out viewed as [2,3] with row stride 6 and column stride 2 (every other element)
  binary(ref(out, {2, 3}, {6, 2}), ref(a, {2, 3}, {3, 1}), ref(b, {2, 3}, {0, 1}), BinaryOp::Add);
  CHECK(out == std::vector<float>{11, -1, 22, -1, 33, -1, 14, -1, 25, -1, 36, -1});
}

TEST_CASE("large kernels give the same bits on 1 and 2 threads") {
  const int64_t n = 1 << 18;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float((i * 7919) % 1000) * 1e-3f - 0.5f;
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> e(static_cast<size_t>(n)), rows(256), cols(1024);
    unary_forward(ref(e, {n}, {1}), ref(x, {n}, {1}), Gelu{});
    reduce(ref(rows, {256, 1}, {1, 1}), ref(x, {256, 1024}, {1024, 1}), ReduceOp::Sum);
    reduce(ref(cols, {1, 1024}, {1024, 1}), ref(x, {256, 1024}, {1024, 1}), ReduceOp::Sum);
    return std::make_tuple(e, rows, cols);
  };
  const int saved = omp_get_max_threads();
  const auto one = run(1), two = run(2);
  omp_set_num_threads(saved);
  CHECK(std::get<0>(one) == std::get<0>(two));
  CHECK(std::get<1>(one) == std::get<1>(two));
  CHECK(std::get<2>(one) == std::get<2>(two));
}

TEST_CASE("reductions into one row equal a double reference, through a view, NaN max") {
  // (5, 60, 33) summed over dims 0 and 1 (300 rows), also through a view that swaps the two
  // leading dims.
  const int64_t A = 5, B = 60, C = 33;
  std::vector<float> x(size_t(A * B * C));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 7919) % 1013) * 1e-2f - 5.0f;
  std::vector<double> want(size_t(C), 0.0), want_max(size_t(C), -1e30);
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) {
        const double v = x[size_t((a * B + b) * C + c)];
        want[size_t(c)] += v;
        want_max[size_t(c)] = std::max(want_max[size_t(c)], v);
      }
  std::vector<float> sum(static_cast<size_t>(C)), mx(static_cast<size_t>(C)),
      sum_t(static_cast<size_t>(C));
  reduce(ref(sum, {1, 1, C}, {C, C, 1}), ref(x, {A, B, C}, {B * C, C, 1}), ReduceOp::Sum);
  reduce(ref(mx, {1, 1, C}, {C, C, 1}), ref(x, {A, B, C}, {B * C, C, 1}), ReduceOp::Max);
  // The same elements as a (B, A, C) view: a different row order, the same sums.
  reduce(ref(sum_t, {1, 1, C}, {C, C, 1}), ref(x, {B, A, C}, {C, B * C, 1}), ReduceOp::Sum);
  for (int64_t c = 0; c < C; ++c) {
    CHECK(sum[size_t(c)] == doctest::Approx(want[size_t(c)]).epsilon(1e-6));
    CHECK(sum_t[size_t(c)] == doctest::Approx(want[size_t(c)]).epsilon(1e-6));
    CHECK(mx[size_t(c)] == float(want_max[size_t(c)]));
  }
  x[size_t(250 * C + 7)] = NAN;  // row 250
  reduce(ref(mx, {1, 1, C}, {C, C, 1}), ref(x, {A, B, C}, {B * C, C, 1}), ReduceOp::Max);
  CHECK(std::isnan(mx[7]));
  CHECK(!std::isnan(mx[8]));
}

TEST_CASE(
    "sum_of_squares over many tensors: a double reference, the same bits on 1 and 2 threads") {
  // Sizes around the 16384-element chunk and the 8 lanes, an empty tensor, float64 too.
  std::vector<std::vector<float>> fs;
  for (const int64_t n :
       {int64_t(0), int64_t(7), int64_t(16384), int64_t(16391), int64_t(100003)}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = float((i * 7919 + size_t(n)) % 2003) * 1e-3f - 1.0f;
    fs.push_back(std::move(v));
  }
  std::vector<double> d(5000);
  for (size_t i = 0; i < d.size(); ++i) d[i] = std::sin(double(i)) * 3.0;
  std::vector<TensorRef> refs;
  double want = 0;
  for (auto& v : fs) {
    refs.push_back(ref(v, {int64_t(v.size())}, {1}));
    for (const float x : v) want += double(x) * double(x);
  }
  refs.push_back({d.data(), DType::F64, Device::cpu(), {50, 100}, {100, 1}});
  for (const double x : d) want += x * x;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = cpu::sum_of_squares(refs);
  omp_set_num_threads(2);
  const double two = cpu::sum_of_squares(refs);
  omp_set_num_threads(saved);
  // Both double sums carry rounding error (different orders; ~1e-13 here, more under
  // the sanitizer build's code generation); a float accumulation would be off by ~1e-6.
  CHECK(one == doctest::Approx(want).epsilon(1e-10));
  CHECK(one == two);
  CHECK(cpu::sum_of_squares({}) == 0.0);
}

}  // namespace
}  // namespace loom::kernels
