// Reductions: values against loops, keepdim/axes handling, gradients, amax ties.
#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

TEST_CASE("sum, mean and max values") {
  const Tensor x = arange(24, DType::F64).view({2, 3, 4});
  CHECK(sum(x).item<double>() == 276);
  CHECK(mean(x).item<double>() == 11.5);
  CHECK(max(x).item<double>() == 23);
  CHECK(sum(x, {1}).to_vector<double>() ==
        std::vector<double>{12, 15, 18, 21, 48, 51, 54, 57});
  CHECK(sum(x, {0, 2}).to_vector<double>() == std::vector<double>{60, 92, 124});
  CHECK(sum(x, {-1}, true).sizes() == Dims{2, 3, 1});
  CHECK(sum(x, {-1}).to_vector<double>() == std::vector<double>{6, 22, 38, 54, 70, 86});
  CHECK(max(x, {0}).to_vector<double>()[0] == 12);
  CHECK(max(x.transpose(0, 2), {2}).sizes() == Dims{4, 3});  // strided input
  CHECK(mean(x, {0, 1}).to_vector<double>() == std::vector<double>{10, 11, 12, 13});
  // The row-accumulating path (kept last dim, reduced leading dims) on float32.
  const Tensor big = ones({300, 64});
  CHECK(sum(big, {0}).to_vector<float>() == std::vector<float>(64, 300.0f));
  CHECK(sum_to(ones({4, 2, 3}), {2, 1}).to_vector<float>() == std::vector<float>{12, 12});
}

TEST_CASE("reductions: gradients") {
  const std::vector<OpSpec> specs = {
      {.name = "sum all", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return sum(in[0] * in[0]); }},
      {.name = "sum dims", .shapes = {{2, 3, 4}}, .op = [](const Tensors& in) { return sum(in[0], {0, 2}); }},
      {.name = "sum keepdim", .shapes = {{2, 3, 4}}, .op = [](const Tensors& in) { return sum(in[0], {1}, true) * in[0]; }},
      {.name = "sum rows", .shapes = {{20, 16}}, .op = [](const Tensors& in) { return sum(in[0], {0}); }},
      {.name = "mean", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return mean(in[0], {-1}); }},
      {.name = "max", .shapes = {{3, 5}}, .op = [](const Tensors& in) { return max(in[0], {1}); }},
      {.name = "max all", .shapes = {{2, 3, 4}}, .op = [](const Tensors& in) { return max(in[0]); }},
      {.name = "sum_to", .shapes = {{2, 3, 4}}, .op = [](const Tensors& in) { return sum_to(in[0], {3, 1}); }},
  };
  for (const OpSpec& spec : specs) check_op(spec);
}

TEST_CASE("max shares the gradient among ties, like torch.amax") {
  Tensor x = from_vector<double>({1, 3, 3, 0}, {4}).set_requires_grad();
  max(x).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5, 0});
}

TEST_CASE("reduction errors") {
  check_error([] { sum(ones({2, 3}), {2}); }, "sum: dim 2 is out of range for a tensor of 2 dimensions");
  check_error([] { sum(ones({2, 3}), {1, -1}); }, "sum: a dim appears more than once");
  check_error([] { max(ones({2, 0}), {1}); }, "max: float32 [2,0]: cannot reduce over empty dim 1");
  check_error([] { sum(arange(3)); }, "sum: int64 [3]: expected a floating-point tensor");
  check_error([] { sum_to(ones({2, 3}), {4}); }, "sum_to: [2,3] cannot be summed to [4]");
}

}  // namespace
}  // namespace loom::test
