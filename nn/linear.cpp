#include "nn/linear.h"

#include <cmath>

#include "autograd/ops.h"

namespace loom::nn {

Linear::Linear(int64_t in_features, int64_t out_features, Generator& init, bool with_bias)
    : Module("Linear") {
  LOOM_CHECK(in_features > 0 && out_features > 0, "Linear: in_features ", in_features,
             ", out_features ", out_features, ": both must be positive");
  const double a = std::sqrt(6.0 / double(in_features + out_features));
  Tensor w = ag::empty({out_features, in_features});
  w.uniform_(init, -a, a);
  weight = register_parameter("weight", w);
  if (with_bias) bias = register_parameter("bias", ag::zeros({out_features}));
}

Tensor Linear::forward(const Tensor& x) const { return ag::linear(x, weight, bias); }

}  // namespace loom::nn
