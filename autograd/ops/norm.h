// Normalization ops.
#pragma once

#include "autograd/tensor.h"

namespace loom::ag {

// torch.nn.functional.layer_norm: normalizes x over its trailing dims given by
// normalized_shape (biased variance), then scales by weight and shifts by bias, both of
// shape normalized_shape; either may be an undefined Tensor (no affine term).
Tensor layer_norm(const Tensor& x, const Dims& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace loom::ag
