// Shape ops: views share storage, values are where they should be, gradients (incl.
// non-contiguous inputs) and error messages.
#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

TEST_CASE("views share storage and index correctly") {
  const Tensor x = arange(24, DType::F32).view({2, 3, 4});
  const Tensor t = x.transpose(0, 2);  // [4,3,2]
  CHECK(t.storage() == x.storage());
  CHECK(t.sizes() == Dims{4, 3, 2});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.contiguous().to_vector<float>()[1] == 12);  // t[0,0,1] = x[1,0,0]
  const Tensor p = x.permute({1, 0, 2});
  CHECK(p.contiguous().to_vector<float>() ==
        std::vector<float>{0, 1, 2, 3, 12, 13, 14, 15, 4, 5, 6, 7, 16, 17, 18, 19,
                           8, 9, 10, 11, 20, 21, 22, 23});
  const Tensor s = x.slice(2, 1, 4, 2);  // [2,3,2]: columns 1 and 3
  CHECK(s.storage() == x.storage());
  CHECK(s.contiguous().to_vector<float>() ==
        std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
  CHECK(x.slice(0, -1, 100).sizes() == Dims{1, 3, 4});  // Python-style clamping
  const Tensor e = from_vector<float>({1, 2}, {2, 1}).expand({2, 3});
  CHECK(e.strides() == Dims{1, 0});
  CHECK(e.contiguous().to_vector<float>() == std::vector<float>{1, 1, 1, 2, 2, 2});
  CHECK(x.unsqueeze(1).sizes() == Dims{2, 1, 3, 4});
  CHECK(x.unsqueeze(-1).sizes() == Dims{2, 3, 4, 1});
  CHECK(x.unsqueeze(0).squeeze(0).sizes() == Dims{2, 3, 4});
  CHECK(x.squeeze(1).sizes() == Dims{2, 3, 4});  // size 3: a no-op, as PyTorch
  CHECK(x.flatten(1).sizes() == Dims{2, 12});
  CHECK(x.view({-1, 4}).sizes() == Dims{6, 4});
  // A transposed tensor reshapes by copying; one that is still viewable does not.
  CHECK(t.reshape({24}).storage() != x.storage());
  CHECK(x.transpose(0, 1).reshape({3, 2, 4}).storage() == x.storage());
  const auto parts = split(x, {1, 3}, 2);
  CHECK(parts[1].sizes() == Dims{2, 3, 3});
  CHECK(parts[1].storage() == x.storage());
  CHECK(concat({parts[1], parts[0]}, -1).contiguous().to_vector<float>()[3] == 0);
}

TEST_CASE("shape ops: gradients") {
  const std::vector<OpSpec> specs = {
      {.name = "view", .shapes = {{2, 6}}, .op = [](const Tensors& in) { return in[0].reshape({3, 4}) * 2.0; }},
      {.name = "transpose", .shapes = {{2, 3, 4}}, .op = [](const Tensors& in) { return in[0].transpose(0, 2) * in[0].transpose(0, 2); }},
      {.name = "permute", .shapes = {{2, 3, 4}}, .op = [](const Tensors& in) { return exp(in[0].permute({2, 0, 1})); }},
      {.name = "slice", .shapes = {{5, 4}}, .op = [](const Tensors& in) { return in[0].slice(0, 1, 5, 2) * in[0].slice(0, 0, 2); }},
      {.name = "expand", .shapes = {{3, 1}}, .op = [](const Tensors& in) { return in[0].expand({2, 3, 4}) * 1.5; }},
      {.name = "squeeze/unsqueeze", .shapes = {{3, 1, 2}}, .op = [](const Tensors& in) { return in[0].squeeze(1).unsqueeze(0) * 3.0; }},
      {.name = "flatten", .shapes = {{2, 3, 4}}, .op = [](const Tensors& in) { return tanh(in[0].flatten(0, 1)); }},
      {.name = "clone", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return in[0].clone() * in[0]; }},
      {.name = "concat", .shapes = {{2, 3}, {2, 1}, {2, 2}},
       .op = [](const Tensors& in) { return concat({in[0], in[1] * 2.0, in[2]}, 1); }},
      {.name = "concat dim 0", .shapes = {{1, 3}, {2, 3}}, .op = [](const Tensors& in) { return concat(in, 0); }},
      {.name = "split", .shapes = {{3, 5}},
       .op = [](const Tensors& in) {
         const auto p = split(in[0], {2, 3}, 1);
         return concat({p[1] * 2.0, p[0]}, 1);
       }},
  };
  for (const OpSpec& spec : specs) check_op(spec);
}

TEST_CASE("to(dtype) converts values and gradients") {
  Tensor x = from_vector<double>({1.5, -2.25}, {2}).set_requires_grad();
  Tensor f = x.to(DType::F32);
  CHECK(f.dtype() == DType::F32);
  sum(f * 2.0).backward();
  CHECK(x.grad().dtype() == DType::F64);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 2});
  CHECK(from_vector<float>({2.7f, -1.2f}, {2}).to(DType::I64).to_vector<int64_t>() ==
        std::vector<int64_t>{2, -1});
}

TEST_CASE("shape errors name the op, the shapes and the fix") {
  const Tensor x = ones({2, 3});
  check_error([&] { x.view({4, 2}); }, "view: [2,3] -> [4,2]: 6 elements do not fit 8");
  check_error([&] { x.transpose(0, 1).view({6}); },
              "view: [3,2] -> [6]: the strides [1,3] do not allow a view; use reshape()");
  check_error([&] { x.view({-1, -1}); }, "only one dim can be -1");
  check_error([&] { x.transpose(0, 2); }, "transpose: dim 2 is out of range for a tensor of 2 dimensions");
  check_error([&] { x.permute({0, 0}); }, "permute: [2,3] with order [0,0]: dim 0 repeats");
  check_error([&] { x.expand({4, 3}); }, "expand: [2,3] -> [4,3]: dim 0 has size 2");
  check_error([&] { x.slice(0, 0, 1, 0); }, "slice: step 0: must be positive");
  check_error([&] { concat({x, ones({3, 3})}, 1); },
              "concat: tensor 0 [2,3] and tensor 1 [3,3]: sizes must match except in dim 1");
  check_error([&] { split(x, {1, 1}, 1); }, "split: [2,3] into sizes summing to 2 along dim 1");
}

}  // namespace
}  // namespace loom::test
