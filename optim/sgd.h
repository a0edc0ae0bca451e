// SGD with momentum, exactly torch.optim.SGD with dampening 0 and nesterov=False, weight
// decay coupled (added to the gradient). For parameter p with gradient g and its group's
// lr and weight decay wd:
//   d = g + wd * p
//   b = d at the parameter's first step, else b <- momentum * b + d   (when momentum > 0)
//   p <- p - lr * b                                                   (d without momentum)
// https://pytorch.org/docs/stable/generated/torch.optim.SGD.html
#pragma once

#include "optim/optimizer.h"

namespace loom::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double weight_decay = 0;  // for groups that do not set their own
};

class SGD final : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options = {});
  SGD(const ag::NamedTensors& params, const SGDOptions& options = {});  // one group

  void step() override;
  const SGDOptions& options() const { return options_; }

  // The momentum buffer b by parameter name (for checkpoints); absent before a
  // parameter's first step and without momentum. set_momentum_buffer() copies.
  bool has_momentum_buffer(const std::string& name) const;
  const ag::Tensor& momentum_buffer(const std::string& name) const;
  void set_momentum_buffer(const std::string& name, const ag::Tensor& buffer);

 private:
  SGDOptions options_;
  std::vector<ag::Tensor> buffers_;  // by flat index; undefined: none yet
};

}  // namespace loom::optim
