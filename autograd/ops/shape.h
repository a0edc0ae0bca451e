// Shape ops. view, reshape (when strides allow), transpose, permute, slice, expand,
// squeeze, unsqueeze and flatten return views that share storage; clone, contiguous
// copies, to_dtype and concat copy. All are differentiable.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace loom::ag {

Tensor view(const Tensor& x, const Dims& shape);     // one dim may be -1
Tensor reshape(const Tensor& x, const Dims& shape);  // view if possible, else copy
Tensor transpose(const Tensor& x, int d0, int d1);
Tensor permute(const Tensor& x, const Dims& order);
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step = 1);
Tensor expand(const Tensor& x, const Dims& shape);  // -1 keeps a size; new dims in front
Tensor squeeze(const Tensor& x, int dim);
Tensor unsqueeze(const Tensor& x, int dim);
Tensor flatten(const Tensor& x, int start_dim = 0, int end_dim = -1);
Tensor clone(const Tensor& x);  // a contiguous copy
Tensor to_dtype(const Tensor& x, DType dtype);
// A copy on `device` (x itself when it is there already); the gradient goes back to x's device.
Tensor to_device(const Tensor& x, Device device);
Tensor concat(const std::vector<Tensor>& xs, int dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);

}  // namespace loom::ag
