// Matrix products on BLAS (CPU: OpenBLAS sgemm/dgemm). Transposed views go to BLAS as
// transposes; other strided operands are made contiguous first.
#pragma once

#include "autograd/tensor.h"

namespace loom::ag {

// torch.matmul: 1-D x 1-D is a dot product (0-dim result); 2-D x 2-D a matrix product;
// a 1-D operand is promoted to a matrix ([K] -> [1, K] on the left, [K, 1] on the right)
// and the added dim removed from the result; leading (batch) dims broadcast NumPy-style:
// [2, 1, M, K] x [3, K, N] -> [2, 3, M, N].
Tensor matmul(const Tensor& a, const Tensor& b);

// torch.bmm: a [B, M, K] x b [B, K, N] -> [B, M, N], no broadcasting.
Tensor bmm(const Tensor& a, const Tensor& b);

// torch.nn.functional.linear: y = x @ weight^T + bias, x [..., in], weight [out, in]
// (PyTorch's layout), bias [out] or an undefined Tensor for none. Returns [..., out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace loom::ag
