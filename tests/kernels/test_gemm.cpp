// The batched GEMM kernel against a naive triple loop: row- and column-major (transposed)
// operands with padded leading dimensions, stride-0 batches on a, b (broadcast) and c
// (sum), a column-major c, empty and size-1 dims with arbitrary strides, float and double.
// Every element of c's buffer is compared, so writes outside the view are caught too.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/gemm.h"

namespace loom::kernels {
namespace {

// A strided view over its own buffer, filled with deterministic values in [-1, 1).
template <class T>
struct Strided {
  Dims sizes, strides;
  std::vector<T> buf;

  Strided(Dims sizes_in, Dims strides_in, uint32_t seed) : sizes(sizes_in), strides(strides_in) {
    int64_t span = 1;
    for (int d = 0; d < sizes.size(); ++d) span += std::max<int64_t>(sizes[d] - 1, 0) * strides[d];
    buf.resize(size_t(span));
    uint32_t s = seed * 2654435761u + 1;
    for (T& v : buf) {
      s = s * 1664525u + 1013904223u;
      v = T(double(s >> 8) / double(1 << 23) - 1.0);
    }
  }
  TensorRef ref() { return {buf.data(), dtype_of<T>(), Device::cpu(), sizes, strides}; }
  int64_t offset(const int64_t* idx) const {
    int64_t o = 0;
    for (int d = 0; d < sizes.size(); ++d) o += idx[d] * strides[d];
    return o;
  }
};

// Expected buffer of c after gemm: beta once on each distinct element, then alpha times
// every product of the batch added to its (possibly shared) c matrix.
template <class T>
std::vector<double> naive(const Strided<T>& c, const Strided<T>& a, const Strided<T>& b,
                          double alpha, double beta) {
  const int n = c.sizes.size();
  const int64_t K = a.sizes[n - 1];
  std::vector<double> out(c.buf.begin(), c.buf.end());
  Dims distinct = c.sizes;  // c's elements, each once: stride-0 dims count once
  for (int d = 0; d < n; ++d)
    if (c.strides[d] == 0) distinct[d] = 1;
  int64_t idx[Dims::kMax] = {}, ia[Dims::kMax], ib[Dims::kMax];
  for (int64_t i = 0; i < distinct.numel(); ++i) {
    double& v = out[size_t(c.offset(idx))];
    v = beta == 0 ? 0.0 : beta * v;
    for (int d = n - 1; d >= 0 && ++idx[d] == distinct[d]; --d) idx[d] = 0;
  }
  for (int64_t i = 0; i < c.sizes.numel(); ++i) {
    std::copy(idx, idx + n, ia);
    std::copy(idx, idx + n, ib);
    double acc = 0;
    for (int64_t k = 0; k < K; ++k) {
      ia[n - 1] = k;
      ib[n - 2] = k;
      acc += double(a.buf[size_t(a.offset(ia))]) * double(b.buf[size_t(b.offset(ib))]);
    }
    out[size_t(c.offset(idx))] += alpha * acc;
    for (int d = n - 1; d >= 0 && ++idx[d] == c.sizes[d]; --d) idx[d] = 0;
  }
  return out;
}

template <class T>
void check_gemm(Strided<T> c, Strided<T> a, Strided<T> b, double alpha = 1.0, double beta = 0.0) {
  const std::vector<double> want = naive(c, a, b, alpha, beta);
  gemm(c.ref(), a.ref(), b.ref(), alpha, beta);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(want[i] - c.buf[i]));
  INFO("c ", c.sizes, c.strides, " a ", a.sizes, a.strides, " b ", b.sizes, b.strides);
  CHECK(worst <= tol * (1 + a.sizes[a.sizes.size() - 1]));
}

TEST_CASE("gemm: row- and column-major operands, padded leading dims") {
  // a (5, 7), b (7, 3), c (5, 3); a column-major view is a transposed stored matrix.
  check_gemm(Strided<float>({5, 3}, {3, 1}, 1), Strided<float>({5, 7}, {7, 1}, 2),
             Strided<float>({7, 3}, {3, 1}, 3));
  check_gemm(Strided<float>({5, 3}, {3, 1}, 1), Strided<float>({5, 7}, {1, 5}, 2),
             Strided<float>({7, 3}, {3, 1}, 3));
  check_gemm(Strided<float>({5, 3}, {3, 1}, 1), Strided<float>({5, 7}, {7, 1}, 2),
             Strided<float>({7, 3}, {1, 7}, 3));
  check_gemm(Strided<float>({5, 3}, {4, 1}, 1), Strided<float>({5, 7}, {1, 8}, 2),
             Strided<float>({7, 3}, {1, 9}, 3), 0.5, 2.0);
  check_gemm(Strided<double>({5, 3}, {1, 6}, 1), Strided<double>({5, 7}, {9, 1}, 2),
             Strided<double>({7, 3}, {1, 7}, 3), -1.5, 0.25);  // column-major c
}

TEST_CASE("gemm: beta = 0 ignores what c held (NaN stays out)") {
  Strided<float> c({4, 4}, {4, 1}, 1);
  for (float& v : c.buf) v = std::numeric_limits<float>::quiet_NaN();
  Strided<float> a({4, 2}, {2, 1}, 2), b({2, 4}, {4, 1}, 3);
  gemm(c.ref(), a.ref(), b.ref(), 1.0, 0.0);
  for (float v : c.buf) CHECK(std::isfinite(v));
}

TEST_CASE("gemm: batches, broadcast (stride-0) a or b, and summing into a shared c") {
  // b shared: folds into one call over B*M rows.
  check_gemm(Strided<float>({2, 3, 4, 5}, {60, 20, 5, 1}, 1),
             Strided<float>({2, 3, 4, 6}, {72, 24, 6, 1}, 2),
             Strided<float>({2, 3, 6, 5}, {0, 0, 5, 1}, 3));
  // b shared but a's batches are transposed matrices: c would fold, a does not.
  check_gemm(Strided<float>({2, 3, 5}, {15, 5, 1}, 1), Strided<float>({2, 3, 4}, {12, 1, 3}, 2),
             Strided<float>({2, 4, 5}, {0, 5, 1}, 3));
  // a shared, b batched and transposed: one call per batch.
  check_gemm(Strided<double>({3, 4, 5}, {20, 5, 1}, 1), Strided<double>({3, 4, 6}, {0, 6, 1}, 2),
             Strided<double>({3, 6, 5}, {30, 1, 6}, 3), 1.0, 1.0);
  // Batches with padding between them (no fold possible).
  check_gemm(Strided<float>({3, 4, 5}, {25, 5, 1}, 1), Strided<float>({3, 4, 6}, {30, 6, 1}, 2),
             Strided<float>({3, 6, 5}, {31, 5, 1}, 3));
  // c shared: the sum over the batch; foldable into K (x^T g) and not (a batched, b padded).
  check_gemm(Strided<float>({2, 3, 4, 5}, {0, 0, 5, 1}, 1),
             Strided<float>({2, 3, 4, 6}, {72, 24, 1, 4}, 2),
             Strided<float>({2, 3, 6, 5}, {90, 30, 5, 1}, 3), 1.0, 0.5);
  check_gemm(Strided<double>({2, 3, 4, 5}, {0, 20, 5, 1}, 1),
             Strided<double>({2, 3, 4, 6}, {72, 24, 6, 1}, 2),
             Strided<double>({2, 3, 6, 5}, {100, 32, 5, 1}, 3), 2.0, 0.0);
}

TEST_CASE("gemm: empty and size-1 dims with arbitrary strides") {
  // M = 1 and N = 1 with meaningless strides on the size-1 dims.
  check_gemm(Strided<float>({1, 5}, {12345, 1}, 1), Strided<float>({1, 7}, {0, 1}, 2),
             Strided<float>({7, 5}, {5, 1}, 3));
  check_gemm(Strided<float>({4, 1}, {1, 0}, 1), Strided<float>({4, 7}, {7, 1}, 2),
             Strided<float>({7, 1}, {3, 99}, 3));
  // A strided row vector (every other element) is a column-major 1 x K matrix.
  check_gemm(Strided<float>({1, 1}, {1, 1}, 1), Strided<float>({1, 7}, {7, 2}, 2),
             Strided<float>({7, 1}, {1, 1}, 3));
  // K = 0: c = beta * c, also through a shared c; M = 0, N = 0: nothing to do.
  check_gemm(Strided<float>({3, 4}, {4, 1}, 1), Strided<float>({3, 0}, {1, 1}, 2),
             Strided<float>({0, 4}, {4, 1}, 3), 1.0, 0.5);
  check_gemm(Strided<float>({2, 3, 4}, {0, 4, 1}, 1), Strided<float>({2, 3, 0}, {0, 1, 1}, 2),
             Strided<float>({2, 0, 4}, {0, 4, 1}, 3), 1.0, 0.0);
  check_gemm(Strided<float>({3, 4}, {4, 1}, 1), Strided<float>({3, 0}, {0, 1}, 2),
             Strided<float>({0, 4}, {0, 0}, 3), 1.0, 2.0);  // empty operands, any strides
  check_gemm(Strided<float>({0, 4}, {4, 1}, 1), Strided<float>({0, 3}, {3, 1}, 2),
             Strided<float>({3, 4}, {4, 1}, 3));
  check_gemm(Strided<float>({3, 0}, {1, 1}, 1), Strided<float>({3, 2}, {2, 1}, 2),
             Strided<float>({2, 0}, {1, 1}, 3));
  // An empty batch summed into a shared c: c = beta * c.
  check_gemm(Strided<float>({0, 3, 4}, {0, 4, 1}, 1), Strided<float>({0, 3, 2}, {6, 2, 1}, 2),
             Strided<float>({0, 2, 4}, {8, 4, 1}, 3), 1.0, 3.0);
  // Size-1 batch dims with odd strides.
  check_gemm(Strided<float>({1, 2, 3, 4}, {7, 12, 4, 1}, 1),
             Strided<float>({1, 2, 3, 5}, {0, 15, 5, 1}, 2),
             Strided<float>({1, 2, 5, 4}, {3, 20, 4, 1}, 3));
}

TEST_CASE("gemm: operands BLAS cannot take are an internal error") {
  Strided<float> c({2, 2}, {2, 1}, 1), a({2, 3}, {6, 2}, 2), b({3, 2}, {2, 1}, 3);
  CHECK_FALSE(gemm_operand_ok(a.ref()));                                  // strides (6, 2)
  CHECK_FALSE(gemm_operand_ok(Strided<float>({3, 2}, {0, 1}, 4).ref()));  // expanded rows
  CHECK(gemm_operand_ok(b.ref()));
  CHECK_THROWS_AS(gemm(c.ref(), a.ref(), b.ref(), 1.0, 0.0), loom::InternalError);
}

}  // namespace
}  // namespace loom::kernels
