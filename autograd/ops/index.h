// Indexing along one dimension.
#pragma once

#include "autograd/tensor.h"

namespace loom::ag {

// torch.index_select: the slices of x along `dim` (negative counts from the end) picked
// by `index` (1-D int32 or int64, repeats allowed) -> x's shape with size index.numel()
// along dim. Any dtype; differentiable in x. An index outside [0, x.size(dim)) is an
// error naming it and the size.
Tensor index_select(const Tensor& x, int dim, const Tensor& index);

}  // namespace loom::ag
