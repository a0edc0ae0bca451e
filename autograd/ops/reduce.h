// Reductions over any set of axes (negative axes count from the end; an empty list
// means all axes).
#pragma once

#include <vector>

#include "autograd/tensor.h"

namespace loom::ag {

Tensor sum(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
// Maximum over dims (torch.amax): the gradient is shared evenly among tied maxima.
Tensor max(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);

// Sums x down to `shape` (the inverse of broadcasting): the backward of every broadcast.
Tensor sum_to(const Tensor& x, const Dims& shape);

}  // namespace loom::ag
