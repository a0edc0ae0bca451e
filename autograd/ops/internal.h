// Helpers shared by the op files (not part of the public API).
#pragma once

#include "autograd/tensor.h"
#include "kernels/tensor_ref.h"

namespace loom::ag::detail {

// t's TensorRef stretched to `shape` (which t broadcasts to): stride 0 on new and
// stretched dims, no copy.
kernels::TensorRef broadcast_ref(const Tensor& t, const Dims& shape);

// Throws "<op>: <a> and <b>: tensors are on different devices / dtypes differ".
void check_same_device_dtype(const char* op, const Tensor& a, const Tensor& b);

// Throws "<op>: <dtype> <shape>: expected a floating-point tensor".
void check_floating(const char* op, const Tensor& x);

// A contiguous tensor's ref relabelled as a [rows, cols] matrix (for row-wise kernels).
kernels::TensorRef rows_ref(const Tensor& t, int64_t rows, int64_t cols);

// "float32 [2,3]" for messages.
std::string describe(const Tensor& t);

}  // namespace loom::ag::detail
