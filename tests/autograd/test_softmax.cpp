// softmax and log_softmax: forward against a composite and a plain loop, stability on
// large inputs, masked (-inf) entries, gradients (contiguous and non-contiguous, last dim
// and other dims) and error messages.
#include <cmath>

#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// Composite references from tested ops (max, exp, sum, log) along dim.
Tensor softmax_composite(const Tensor& x, int dim) {
  const Tensor e = exp(x - max(x, {dim}, true));
  return e / sum(e, {dim}, true);
}
Tensor log_softmax_composite(const Tensor& x, int dim) {
  const Tensor s = x - max(x, {dim}, true);
  return s - log(sum(exp(s), {dim}, true));
}

TEST_CASE("softmax and log_softmax: forward against composites, gradients") {
  std::vector<OpSpec> specs;
  for (const Dims& shape : {Dims{3, 5}, Dims{2, 3, 4}}) {
    specs.push_back({.name = "softmax", .shapes = {shape},
                     .op = [](const Tensors& in) { return softmax(in[0]); },
                     .reference = [](const Tensors& in) { return softmax_composite(in[0], -1); },
                     .low = -3, .high = 3});
    specs.push_back({.name = "log_softmax", .shapes = {shape},
                     .op = [](const Tensors& in) { return log_softmax(in[0]); },
                     .reference = [](const Tensors& in) {
                       return log_softmax_composite(in[0], -1);
                     },
                     .low = -3, .high = 3});
  }
  // A dim other than the last goes through the transposed path.
  for (int dim : {0, 1}) {
    specs.push_back({.name = "softmax dim " + std::to_string(dim), .shapes = {{2, 3, 4}},
                     .op = [dim](const Tensors& in) { return softmax(in[0], dim); },
                     .reference = [dim](const Tensors& in) {
                       return softmax_composite(in[0], dim);
                     }});
    specs.push_back({.name = "log_softmax dim " + std::to_string(dim), .shapes = {{2, 3, 4}},
                     .op = [dim](const Tensors& in) { return log_softmax(in[0], dim); },
                     .reference = [dim](const Tensors& in) {
                       return log_softmax_composite(in[0], dim);
                     }});
  }
  // Composed with another op, so the incoming gradient is not all ones.
  specs.push_back({.name = "softmax * x", .shapes = {{4, 6}},
                   .op = [](const Tensors& in) { return softmax(in[0]) * in[0]; }});
  for (const OpSpec& spec : specs) check_op(spec);
}

TEST_CASE("softmax: values equal exp(x) / sum(exp(x)) by a plain loop, rows sum to 1") {
  const std::vector<double> v = {0.5, -1.0, 2.0, 0.0, 3.0, -2.5, 1.5, 1.0};
  const Tensor x = from_vector(v, {2, 4});
  const std::vector<double> y = softmax(x).to_vector<double>();
  const std::vector<double> ly = log_softmax(x).to_vector<double>();
  for (int r = 0; r < 2; ++r) {
    double s = 0, row_sum = 0;
    for (int j = 0; j < 4; ++j) s += std::exp(v[size_t(r * 4 + j)]);
    for (int j = 0; j < 4; ++j) {
      const size_t i = size_t(r * 4 + j);
      CHECK(y[i] == doctest::Approx(std::exp(v[i]) / s).epsilon(1e-14));
      CHECK(ly[i] == doctest::Approx(v[i] - std::log(s)).epsilon(1e-14));
      row_sum += y[i];
    }
    CHECK(row_sum == doctest::Approx(1.0).epsilon(1e-15));
  }
  // float32 agrees with float64
  CHECK(max_abs_diff(softmax(x.to(DType::F32)), softmax(x).to(DType::F32)) < 1e-6);
  // a 0-dim tensor is one row of one element
  CHECK(softmax(scalar(3.0)).item<float>() == 1.0f);
}

TEST_CASE("softmax: large inputs stay finite, -inf entries get probability 0") {
  const Tensor big = from_vector<float>({1000, 1001, 1002, -1000, -1001, -1002}, {2, 3});
  const std::vector<float> y = softmax(big).to_vector<float>();
  const std::vector<float> ly = log_softmax(big).to_vector<float>();
  const Tensor small = from_vector<float>({0, 1, 2, 0, -1, -2}, {2, 3});
  for (float e : y) CHECK(std::isfinite(e));
  for (float e : ly) CHECK(std::isfinite(e));
  CHECK(max_abs_diff(softmax(big), softmax(small)) < 1e-6);
  CHECK(max_abs_diff(log_softmax(big), log_softmax(small)) < 1e-4);

  const float inf = INFINITY;
  const Tensor masked = from_vector<float>({0, -inf, 0, -inf}, {1, 4});
  CHECK(softmax(masked).to_vector<float>() == std::vector<float>{0.5f, 0, 0.5f, 0});
  const std::vector<float> lm = log_softmax(masked).to_vector<float>();
  CHECK(lm[0] == doctest::Approx(-std::log(2.0)));
  CHECK(lm[1] == -inf);
}

TEST_CASE("softmax: many rows (multi-threaded path) match the composite, gradients too") {
  kernels::Generator gen(5);
  Tensor x = (randn({512, 96}, gen, DType::F64) * 3.0).set_requires_grad();
  const Tensor w = randn({512, 96}, gen, DType::F64);
  {
    NoGrad no_grad;
    CHECK(max_abs_diff(softmax(x), softmax_composite(x, -1)) < 1e-14);
    CHECK(max_abs_diff(log_softmax(x), log_softmax_composite(x, -1)) < 1e-12);
    const Tensor xf = x.to(DType::F32);
    CHECK(max_abs_diff(softmax(xf), softmax_composite(xf, -1)) < 1e-6);
  }
  sum(softmax(x) * w).backward();
  const Tensor g_fused = x.grad();
  x.zero_grad();
  sum(softmax_composite(x, -1) * w).backward();
  CHECK(max_abs_diff(g_fused, x.grad()) < 1e-14);
  x.zero_grad();
  sum(log_softmax(x) * w).backward();
  const Tensor lg_fused = x.grad();
  x.zero_grad();
  sum(log_softmax_composite(x, -1) * w).backward();
  CHECK(max_abs_diff(lg_fused, x.grad()) < 1e-12);
}

TEST_CASE("softmax errors name the op and the operand") {
  check_error([] { softmax(arange(4)); }, "softmax: int64 [4]: expected a floating-point tensor");
  check_error([] { log_softmax(arange(4)); },
              "log_softmax: int64 [4]: expected a floating-point tensor");
  check_error([] { softmax(ones({2, 3}), 2); },
              "softmax: dim 2 is out of range for a tensor of 2 dimensions (expected -2..1)");
  check_error([] { log_softmax(ones({2, 3}), -3); },
              "log_softmax: dim -3 is out of range for a tensor of 2 dimensions");
}

}  // namespace
}  // namespace loom::test
