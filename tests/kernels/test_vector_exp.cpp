// kernels/cpu/vector_exp.h: the vectorised exp against exp in double, over the whole
// float range that matters (results down to FLT_MIN), plus its special values.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/vector_exp.h"
#include "kernels/philox.h"

namespace loom::kernels::cpu {
namespace {

// Distance in units in the last place between float a and the exact value e.
double ulp_error(float a, double e) {
  const float ef = float(e);
  const double ulp = double(std::nextafter(ef, std::numeric_limits<float>::infinity())) - double(ef);
  return std::fabs(double(a) - e) / ulp;
}

TEST_CASE("exp_shifted is within 3 ulp of exp, for every array length and position") {
  // 200003 points: uniform over [-86, 88], and over [-20, 0.5] where softmax lives.
  const int64_t n = 200003;
  std::vector<float> x(size_t(n), 0.0f), y(size_t(n), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const double u = philox_uniform01(uint64_t(i), 77);
    x[size_t(i)] = float(i % 2 ? -86.0 + 174.0 * u : -20.0 + 20.5 * u);
  }
  exp_shifted(y.data(), x.data(), 0.5f, n);
  double worst = 0;
  for (int64_t i = 0; i < n; ++i)
    worst = std::max(worst, ulp_error(y[size_t(i)], std::exp(double(x[size_t(i)] - 0.5f))));
  MESSAGE("exp_shifted: worst error ", worst, " ulp over ", n, " points");
  CHECK(worst <= 3.0);  // libmvec's expf: 2.6 ulp at worst (kernels/cpu/vector_exp.h)
  // Lengths 1..40 at every offset: the tails give what the full vectors give.
  for (int64_t len = 1; len <= 40; ++len) {
    std::vector<float> part(static_cast<size_t>(len));
    exp_shifted(part.data(), x.data() + 3, 0.5f, len);
    CHECK(std::memcmp(part.data(), y.data() + 3, size_t(len) * sizeof(float)) == 0);
  }
  // In place, as the softmax rows use it.
  std::vector<float> z(x.begin(), x.begin() + 100);
  exp_shifted(z.data(), z.data(), 0.5f, 100);
  CHECK(std::memcmp(z.data(), y.data(), 100 * sizeof(float)) == 0);
}

TEST_CASE("exp_shifted: -inf gives 0, +inf and overflow give inf, NaN stays NaN; sums in double") {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {-inf, inf, 100.0f, std::nanf(""), 0.0f, -200.0f, 1.0f};
  std::vector<float> y(x.size());
  exp_shifted(y.data(), x.data(), 0.0f, int64_t(x.size()));
  CHECK(y[0] == 0.0f);
  CHECK(y[1] == inf);
  CHECK(y[2] == inf);
  CHECK(std::isnan(y[3]));
  CHECK(y[4] == 1.0f);
  CHECK(y[5] == 0.0f);
  CHECK(ulp_error(y[6], std::exp(1.0)) <= 3.0);
  const std::vector<double> xd = {0.0, 1.0, -1.0};
  CHECK(sum_exp_shifted(xd.data(), 1.0, 3) == doctest::Approx(std::exp(-1.0) + 1.0 + std::exp(-2.0)));
  std::vector<float> ones(1000, 2.0f);
  CHECK(sum_exp_shifted(ones.data(), 2.0f, 1000) == 1000.0);
}

}  // namespace
}  // namespace loom::kernels::cpu
