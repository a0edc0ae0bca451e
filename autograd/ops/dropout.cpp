// Inverted dropout (torch.nn.functional.dropout): y = x * m, m = Bernoulli(1-p) / (1-p).
// A composite: the mask comes from the counter-based generator, and mul gives the
// backward (grad_x = grad_out * m).
#include "autograd/ops/dropout.h"

#include "autograd/ops.h"

namespace loom::ag {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  LOOM_CHECK(p >= 0.0 && p <= 1.0, "dropout: p = ", p, ": expected a probability in [0, 1]");
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;
  Tensor mask = empty(x.sizes(), x.dtype(), x.device());
  kernels::fill_bernoulli(mask.ref(), gen, 1.0 - p, 1.0 / (1.0 - p));
  return x * mask;
}

}  // namespace loom::ag
