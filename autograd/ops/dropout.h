// Inverted dropout: y = x * m / (1 - p), m ~ Bernoulli(1 - p) from a counter-based
// generator, so masks are reproducible from (seed, offset) whatever the thread count.
#pragma once

#include "autograd/tensor.h"

namespace loom::ag {

// Identity when !training or p == 0. p must be in [0, 1).
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

// dropout(relu(x), p, training, gen), fused: the same values, gradients and generator use,
// and the backward keeps only the output (which the next layer keeps anyway).
Tensor relu_dropout(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace loom::ag
