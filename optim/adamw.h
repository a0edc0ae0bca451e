// AdamW, exactly torch.optim.AdamW (amsgrad=False, maximize=False): decoupled weight
// decay, then Adam with bias correction and eps added after the square root. For each
// parameter p with gradient g, its own step count t (incremented first) and its group's
// lr and weight decay wd:
//   p <- p - lr * wd * p
//   m <- beta1 * m + (1 - beta1) * g,   v <- beta2 * v + (1 - beta2) * g^2
//   p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019;
// https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html). The update of all
// parameters is one fused kernel (kernels/adamw.h).
#pragma once

#include <cstdint>

#include "optim/optimizer.h"

namespace loom::optim {

struct AdamWOptions {  // PyTorch's defaults
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // for groups that do not set their own
};

class AdamW final : public Optimizer {
 public:
  // A parameter's state, as PyTorch's optimizer.state[p]: created (zeros) at its first step.
  struct State {
    int64_t step = 0;                // updates applied to this parameter
    ag::Tensor exp_avg, exp_avg_sq;  // m and v: the parameter's shape and dtype
  };

  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = {});
  AdamW(const ag::NamedTensors& params, const AdamWOptions& options = {});  // one group

  void step() override;
  const AdamWOptions& options() const { return options_; }

  // State by parameter name (for checkpoints). state() of a parameter never stepped is an
  // error; set_state() copies the tensors after checking them against the parameter.
  bool has_state(const std::string& name) const;
  const State& state(const std::string& name) const;
  void set_state(const std::string& name, const State& state);

 private:
  AdamWOptions options_;
  std::vector<State> state_;  // by flat index; step == 0: none yet
};

}  // namespace loom::optim
