// OpSpec: one table entry per op (after PyTorch's OpInfo). check_op() runs the generic
// checks on an entry:
//   1. forward against `reference` (a composite of tested ops or a closed form), in
//      float64 and float32;
//   2. gradcheck in float64 (central differences, eps 1e-6, atol 1e-5, rtol 1e-3) on
//      contiguous inputs, then again with every input non-contiguous (a transposed view
//      for rank >= 2, a step-2 slice for rank 1).
// Broadcasting cases are separate entries with broadcasting shapes.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"

namespace loom::test {

using ag::Tensor;
using kernels::Dims;
using kernels::DType;
using Tensors = std::vector<Tensor>;

struct OpSpec {
  std::string name;
  std::vector<Dims> shapes;  // one per input
  std::function<Tensor(const Tensors&)> op;
  std::function<Tensor(const Tensors&)> reference;  // optional
  double low = -1.0, high = 1.0;                    // range of the random inputs
  std::vector<bool> differentiable;                 // per input; empty = all
  // Custom inputs (e.g. integer ids): called with the dtype; overrides shapes/low/high.
  std::function<Tensors(DType)> make_inputs;
};

// Random inputs for a spec, in `dtype`, optionally non-contiguous.
Tensors make_spec_inputs(const OpSpec& spec, DType dtype, bool non_contiguous, uint64_t seed);

// Runs checks 1 and 2 above inside doctest CHECKs, naming the spec.
void check_op(const OpSpec& spec);

// Maximum absolute difference between two tensors of the same shape (any float dtype).
double max_abs_diff(const Tensor& a, const Tensor& b);

// Expects fn() to throw loom::Error whose message contains `text`.
void check_error(const std::function<void()>& fn, const std::string& text);

}  // namespace loom::test
