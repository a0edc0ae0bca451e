#include "nn/dropout.h"

#include "autograd/ops.h"

namespace loom::nn {

Dropout::Dropout(double p, std::shared_ptr<Generator> generator)
    : Module("Dropout"), p_(p), generator_(std::move(generator)) {
  LOOM_CHECK(p >= 0.0 && p < 1.0, "Dropout: p = ", p, ": expected a probability in [0, 1)");
  LOOM_CHECK(generator_ != nullptr, "Dropout: a generator is required");
}

Tensor Dropout::forward(const Tensor& x) const {
  return ag::dropout(x, p_, is_training(), *generator_);
}

Tensor Dropout::relu_forward(const Tensor& x) const {
  return ag::relu_dropout(x, p_, is_training(), *generator_);
}

}  // namespace loom::nn
