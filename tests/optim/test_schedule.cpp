// Learning-rate schedules: values at chosen steps (hand computed), the Transformer paper's
// formula, and configuration errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "kernels/error.h"
#include "optim/schedule.h"

namespace loom::optim {
namespace {

TEST_CASE("LrSchedule: constant") {
  const LrSchedule s = LrSchedule::constant(3e-4);
  CHECK(s.lr(0) == 3e-4);
  CHECK(s.lr(1) == 3e-4);
  CHECK(s.lr(1000000) == 3e-4);
}

TEST_CASE("LrSchedule: linear warmup then inverse square root") {
  const LrSchedule s = LrSchedule::inverse_sqrt(1e-3, 4000);
  CHECK(s.lr(0) == 0.0);
  CHECK(s.lr(1) == doctest::Approx(2.5e-7).epsilon(1e-14));
  CHECK(s.lr(2000) == doctest::Approx(5e-4).epsilon(1e-14));
  CHECK(s.lr(4000) == doctest::Approx(1e-3).epsilon(1e-14));  // the peak
  CHECK(s.lr(16000) == doctest::Approx(5e-4).epsilon(1e-14));
  CHECK(s.lr(1000000) == doctest::Approx(6.324555320336759e-05).epsilon(1e-12));
  // Vaswani et al. eq. 3: d^-0.5 * min(t^-0.5, t * w^-1.5) is this with lr = (d * w)^-0.5.
  const double d = 512, w = 4000;
  const LrSchedule noam = LrSchedule::inverse_sqrt(1 / std::sqrt(d * w), 4000);
  for (int64_t t : {1, 10, 3999, 4000, 4001, 100000}) {
    const double paper = std::pow(d, -0.5) * std::min(std::pow(t, -0.5), t * std::pow(w, -1.5));
    CHECK(noam.lr(t) == doctest::Approx(paper).epsilon(1e-12));
  }
}

TEST_CASE("LrSchedule: linear warmup then cosine to min_lr") {
  const LrSchedule s = LrSchedule::cosine(1.0, 10, 110, 0.1);
  CHECK(s.lr(0) == 0.0);
  CHECK(s.lr(5) == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(s.lr(10) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(s.lr(35) == doctest::Approx(0.1 + 0.45 * (1 + std::sqrt(0.5))).epsilon(1e-14));
  CHECK(s.lr(60) == doctest::Approx(0.55).epsilon(1e-14));
  CHECK(s.lr(109) == doctest::Approx(0.1 + 0.45 * (1 + std::cos(M_PI * 0.99))).epsilon(1e-14));
  CHECK(s.lr(110) == 0.1);
  CHECK(s.lr(500) == 0.1);
  const LrSchedule no_warmup = LrSchedule::cosine(2.0, 0, 4);
  CHECK(no_warmup.lr(0) == 2.0);
  CHECK(no_warmup.lr(2) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(no_warmup.lr(4) == 0.0);
}

TEST_CASE("LrSchedule: configuration errors") {
  CHECK_THROWS_WITH_AS(LrSchedule::constant(-1), "constant schedule: lr -1: must be non-negative",
                       Error);
  CHECK_THROWS_WITH_AS(LrSchedule::inverse_sqrt(1e-3, 0),
                       "inverse_sqrt schedule: warmup 0: must be at least 1", Error);
  CHECK_THROWS_WITH_AS(LrSchedule::inverse_sqrt(-1e-3, 10),
                       "inverse_sqrt schedule: lr -0.001: must be non-negative", Error);
  CHECK_THROWS_WITH_AS(LrSchedule::cosine(1e-3, 100, 100),
                       "cosine schedule: total 100, warmup 100: total must exceed warmup", Error);
  CHECK_THROWS_WITH_AS(LrSchedule::cosine(1e-3, -1, 100),
                       "cosine schedule: warmup -1: must be non-negative", Error);
  CHECK_THROWS_WITH_AS(LrSchedule::cosine(1e-3, 10, 100, 1e-2),
                       "cosine schedule: min_lr 0.01, lr 0.001: min_lr must be in [0, lr]", Error);
  CHECK_THROWS_WITH_AS(LrSchedule::constant(1).lr(-1), "LrSchedule: step -1: must be non-negative",
                       Error);
}

}  // namespace
}  // namespace loom::optim
