// Position-wise feed-forward block (DESIGN.md): fc1 [ffn, d] -> activation (relu, or gelu
// in the exact erf form) -> dropout -> fc2 [d, ffn].
#pragma once

#include <cstdint>

#include "nn/dropout.h"
#include "nn/linear.h"

namespace loom::nn {

class FeedForward : public Module {
 public:
  FeedForward(int64_t dim, int64_t hidden, const std::string& activation, double dropout,
              Generator& init, std::shared_ptr<Generator> dropout_gen);
  Tensor forward(const Tensor& x) const;  // x: (..., C)

  std::shared_ptr<Linear> fc1, fc2;

 private:
  bool gelu_;
  std::shared_ptr<Dropout> dropout_;
};

}  // namespace loom::nn
