// Learning-rate schedules, each a pure function of the step (so a checkpoint needs only
// the step count). `step` is the 1-based number of the update about to be applied, the
// same t AdamW uses for bias correction: a trainer calls opt.set_lr(schedule.lr(t))
// before its t-th opt.step(). step 0 ("before training") is allowed and gives the
// formulas' value there: 0 for warmup schedules, lr for constant.
//
//   constant:      lr(t) = lr
//   inverse_sqrt:  lr(t) = lr * min(t / warmup, sqrt(warmup / t))             (lr(0) = 0)
//                  linear warmup to lr at t = warmup, then lr * sqrt(warmup / t): the
//                  Transformer's schedule (Vaswani et al. 2017, eq. 3, with
//                  lr = d_model^-0.5 * warmup^-0.5) and fairseq's inverse_sqrt.
//   cosine:        lr(t) = lr * t / warmup                                    t < warmup
//                  lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * (t - warmup) /
//                          (total - warmup))) / 2                       warmup <= t < total
//                  lr(t) = min_lr                                             t >= total
//                  (SGDR, Loshchilov & Hutter 2017, one cycle, after a linear warmup).
#pragma once

#include <cstdint>

namespace loom::optim {

class LrSchedule {
 public:
  enum class Kind { Constant, InverseSqrt, Cosine };

  static LrSchedule constant(double lr);
  static LrSchedule inverse_sqrt(double lr, int64_t warmup);
  static LrSchedule cosine(double lr, int64_t warmup, int64_t total, double min_lr = 0);

  double lr(int64_t step) const;
  Kind kind() const { return kind_; }

 private:
  LrSchedule(Kind kind, double lr, int64_t warmup, int64_t total, double min_lr)
      : kind_(kind), lr_(lr), warmup_(warmup), total_(total), min_lr_(min_lr) {}
  Kind kind_;
  double lr_;
  int64_t warmup_, total_;
  double min_lr_;
};

}  // namespace loom::optim
