// Dropout with probability p, active in training mode only (torch.nn.Dropout). Masks come
// from a generator shared by the whole model (one RNG stream, saved in checkpoints).
#pragma once

#include <memory>

#include "nn/module.h"

namespace loom::nn {

class Dropout : public Module {
 public:
  Dropout(double p, std::shared_ptr<Generator> generator);
  Tensor forward(const Tensor& x) const;
  // forward(relu(x)), fused (ag::relu_dropout): the feed-forward block's activation.
  Tensor relu_forward(const Tensor& x) const;

  double p() const { return p_; }

 private:
  double p_;
  std::shared_ptr<Generator> generator_;
};

}  // namespace loom::nn
