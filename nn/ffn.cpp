#include "nn/ffn.h"

#include "autograd/ops.h"

namespace loom::nn {

FeedForward::FeedForward(int64_t dim, int64_t hidden, const std::string& activation, double dropout,
                         Generator& init, std::shared_ptr<Generator> dropout_gen)
    : Module("FeedForward"), gelu_(activation == "gelu") {
  LOOM_CHECK(activation == "relu" || activation == "gelu", "FeedForward: activation \"", activation,
             "\": expected relu or gelu");
  fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden, init));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim, init));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(dropout, std::move(dropout_gen)));
}

Tensor FeedForward::forward(const Tensor& x) const {
  const Tensor h = fc1->forward(x);  // (..., ffn)
  return fc2->forward(gelu_ ? dropout_->forward(ag::gelu(h)) : dropout_->relu_forward(h));
}

}  // namespace loom::nn
