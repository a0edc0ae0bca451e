#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kernels/error.h"

namespace loom::optim {

LrSchedule LrSchedule::constant(double lr) {
  LOOM_CHECK(lr >= 0, "constant schedule: lr ", lr, ": must be non-negative");
  return LrSchedule(Kind::Constant, lr, 0, 0, lr);
}

LrSchedule LrSchedule::inverse_sqrt(double lr, int64_t warmup) {
  LOOM_CHECK(lr >= 0, "inverse_sqrt schedule: lr ", lr, ": must be non-negative");
  LOOM_CHECK(warmup >= 1, "inverse_sqrt schedule: warmup ", warmup, ": must be at least 1");
  return LrSchedule(Kind::InverseSqrt, lr, warmup, 0, 0);
}

LrSchedule LrSchedule::cosine(double lr, int64_t warmup, int64_t total, double min_lr) {
  LOOM_CHECK(lr >= 0, "cosine schedule: lr ", lr, ": must be non-negative");
  LOOM_CHECK(warmup >= 0, "cosine schedule: warmup ", warmup, ": must be non-negative");
  LOOM_CHECK(total > warmup, "cosine schedule: total ", total, ", warmup ", warmup,
             ": total must exceed warmup");
  LOOM_CHECK(min_lr >= 0 && min_lr <= lr, "cosine schedule: min_lr ", min_lr, ", lr ", lr,
             ": min_lr must be in [0, lr]");
  return LrSchedule(Kind::Cosine, lr, warmup, total, min_lr);
}

double LrSchedule::lr(int64_t step) const {
  LOOM_CHECK(step >= 0, "LrSchedule: step ", step, ": must be non-negative");
  const double t = double(step), w = double(warmup_);
  switch (kind_) {
    case Kind::Constant:
      return lr_;
    case Kind::InverseSqrt:
      return step == 0 ? 0.0 : lr_ * std::min(t / w, std::sqrt(w / t));
    case Kind::Cosine: {
      if (step < warmup_) return lr_ * t / w;
      if (step >= total_) return min_lr_;
      const double progress = (t - w) / double(total_ - warmup_);
      return min_lr_ + (lr_ - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    }
  }
  LOOM_UNREACHABLE("LrSchedule: unknown kind");
}

}  // namespace loom::optim
