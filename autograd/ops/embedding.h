// Embedding lookup.
#pragma once

#include "autograd/tensor.h"

namespace loom::ag {

// torch.nn.functional.embedding (no padding_idx, max_norm or sparse gradients): rows of
// weight [V, C] picked by ids (int32 or int64, any shape) -> [..., C]. Differentiable in
// weight; an id outside [0, V) is an error naming the id and its position.
Tensor embedding(const Tensor& ids, const Tensor& weight);

}  // namespace loom::ag
