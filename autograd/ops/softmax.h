// Softmax and log-softmax along one dim (torch.softmax / torch.log_softmax). The last
// dim is the fast path (one fused kernel per row); another dim is moved last by a
// transposed view, computed there, and moved back.
#pragma once

#include "autograd/tensor.h"

namespace loom::ag {

// y = exp(x) / sum(exp(x)) along dim, computed stably (the row maximum is subtracted).
Tensor softmax(const Tensor& x, int dim = -1);
// y = x - log(sum(exp(x))) along dim; more accurate than log(softmax(x)).
Tensor log_softmax(const Tensor& x, int dim = -1);

}  // namespace loom::ag
