// Pointwise ops: forward against closed forms, gradchecks (plain, broadcast,
// non-contiguous) and error messages.
#include <cmath>

#include "common/op_spec.h"
#include "kernels/storage.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// Applies a scalar function to every element (the closed-form reference).
Tensor map_values(const Tensor& x, double (*f)(double)) {
  std::vector<double> v = x.to(DType::F64).to_vector<double>();
  for (double& e : v) e = f(e);
  return from_vector(v, x.sizes()).to(x.dtype());
}

std::vector<OpSpec> unary_specs() {
  return {
      {.name = "neg", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return neg(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return -x; }); }},
      {.name = "exp", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return exp(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return std::exp(x); }); }},
      {.name = "log", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return log(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return std::log(x); }); },
       .low = 0.5, .high = 2.0},
      {.name = "sqrt", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return sqrt(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return std::sqrt(x); }); },
       .low = 0.5, .high = 2.0},
      {.name = "rsqrt", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return rsqrt(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return 1 / std::sqrt(x); }); },
       .low = 0.5, .high = 2.0},
      {.name = "pow", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return pow(in[0], 2.5); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return std::pow(x, 2.5); }); },
       .low = 0.5, .high = 2.0},
      {.name = "tanh", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return tanh(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return std::tanh(x); }); }},
      {.name = "relu", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return relu(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return x > 0 ? x : 0.0; }); }},
      {.name = "gelu", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return gelu(in[0]); },
       .reference = [](const Tensors& in) {
         return map_values(in[0], [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); });
       }, .low = -3, .high = 3},
      {.name = "sigmoid", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return sigmoid(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return 1 / (1 + std::exp(-x)); }); },
       .low = -4, .high = 4},
      {.name = "silu", .shapes = {{3, 4}}, .op = [](const Tensors& in) { return silu(in[0]); },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return x / (1 + std::exp(-x)); }); },
       .low = -4, .high = 4},
      {.name = "scalar add/sub/mul/div", .shapes = {{3, 4}},
       .op = [](const Tensors& in) { return ((in[0] + 1.5) * 3.0 - 0.25) / 2.0; },
       .reference = [](const Tensors& in) {
         return map_values(in[0], [](double x) { return ((x + 1.5) * 3.0 - 0.25) / 2.0; });
       }},
      {.name = "rsub/rdiv", .shapes = {{3, 4}},
       .op = [](const Tensors& in) { return 2.0 - 3.0 / in[0]; },
       .reference = [](const Tensors& in) { return map_values(in[0], [](double x) { return 2.0 - 3.0 / x; }); },
       .low = 0.5, .high = 2.0},
  };
}

TEST_CASE("unary ops: forward values and gradients") {
  for (const OpSpec& spec : unary_specs()) check_op(spec);
}

TEST_CASE("binary ops: same shape and broadcast gradients") {
  using Fn = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, Fn>> ops = {
      {"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}, {"maximum", maximum}, {"minimum", minimum}};
  const std::vector<std::pair<Dims, Dims>> shapes = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{2, 1, 4}, {3, 1}}, {{3, 4}, {}}, {{1}, {2, 3}}};
  for (const auto& [name, fn] : ops) {
    for (const auto& [sa, sb] : shapes) {
      OpSpec spec{.name = name, .shapes = {sa, sb},
                  .op = [fn](const Tensors& in) { return fn(in[0], in[1]); },
                  .low = 0.5, .high = 2.0};
      check_op(spec);
    }
  }
}

TEST_CASE("binary ops: forward values with broadcasting") {
  const Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = from_vector<float>({10, 20, 30}, {3});
  CHECK((a + b).to_vector<float>() == std::vector<float>{11, 22, 33, 14, 25, 36});
  CHECK((a - b).to_vector<float>() == std::vector<float>{-9, -18, -27, -6, -15, -24});
  CHECK((a * b).to_vector<float>() == std::vector<float>{10, 40, 90, 40, 100, 180});
  CHECK((b / a).to_vector<float>() == std::vector<float>{10, 10, 10, 2.5, 4, 5});
  const Tensor col = from_vector<float>({100, 200}, {2, 1});
  CHECK((a + col).to_vector<float>() == std::vector<float>{101, 102, 103, 204, 205, 206});
  CHECK(maximum(a, full({}, 3.5)).to_vector<float>() == std::vector<float>{3.5, 3.5, 3.5, 4, 5, 6});
  CHECK(minimum(a, full({}, 3.5)).to_vector<float>() == std::vector<float>{1, 2, 3, 3.5, 3.5, 3.5});
}

TEST_CASE("maximum sends a tie's gradient to the first operand") {
  Tensor a = from_vector<double>({1, 2}, {2}).set_requires_grad();
  Tensor b = from_vector<double>({1, 3}, {2}).set_requires_grad();
  sum(maximum(a, b)).backward();
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 0});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{0, 1});
}

TEST_CASE("comparisons, where and masked_fill") {
  const Tensor a = from_vector<float>({1, 5, 3}, {3});
  const Tensor b = from_vector<float>({2, 5, 1}, {3});
  CHECK(eq(a, b).to_vector<bool>() == std::vector<bool>{false, true, false});
  CHECK(ne(a, b).to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK(lt(a, b).to_vector<bool>() == std::vector<bool>{true, false, false});
  CHECK(le(a, b).to_vector<bool>() == std::vector<bool>{true, true, false});
  CHECK(gt(a, b).to_vector<bool>() == std::vector<bool>{false, false, true});
  CHECK(ge(a, b).to_vector<bool>() == std::vector<bool>{false, true, true});
  CHECK(where(lt(a, b), a, b).to_vector<float>() == std::vector<float>{1, 5, 1});
  const Tensor mask = gt(from_vector<float>({0, 1}, {2, 1}), full({}, 0.5));  // rows
  const Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 2});
  CHECK(masked_fill(x, mask, -1e9).to_vector<float>() == std::vector<float>{1, 2, -1e9, -1e9});

  // Gradients: where (a where cond, b elsewhere, b broadcast) and masked_fill.
  OpSpec w{.name = "where", .shapes = {{3, 4}, {4}},
           .op = [](const Tensors& in) {
             const Tensor cond = gt(arange(12, DType::F64).view({3, 4}), full({}, 5.0, DType::F64));
             return where(cond, in[0], in[1]);
           }};
  check_op(w);
  OpSpec m{.name = "masked_fill", .shapes = {{2, 3, 4}},
           .op = [](const Tensors& in) {
             const Tensor mask = gt(arange(4, DType::F64), full({}, 1.0, DType::F64));  // [4]
             return masked_fill(in[0], mask, -3.0);
           }};
  check_op(m);
}

TEST_CASE("ops save only what their backward reads: relu its output, x * c and x * mask "
          "nothing of x") {
  const int64_t n = 4096, bytes = n * 4;
  auto allocated = [] { return int64_t(kernels::cpu_allocator_stats().allocated_bytes); };
  Generator gen(4);
  Tensor x = rand({n}, gen) * 2.0 - 1.0;  // U[-1, 1)
  x.set_requires_grad();
  const Tensor mask = rand({n}, gen);  // needs no gradient
  Tensor h = x * 3.0;                  // non-leaf: alive only while something keeps it
  Tensor r = relu(h);                  // keeps r, not h
  Tensor h2 = r * 2.0;
  Tensor m = h2 * mask;                // keeps mask, not h2
  const int64_t live = allocated();
  h = Tensor();
  h2 = Tensor();
  CHECK(live - allocated() == 2 * bytes);
  sum(m).backward();
  NoGrad no_grad;  // d/dx = 3 * relu'(3x) * 2 * mask
  const Tensor expected = where(gt(x, zeros({})), mask * 2.0 * 3.0, zeros({}));
  CHECK(max_abs_diff(x.grad(), expected) == 0);
}

TEST_CASE("pointwise errors name the op and the operands") {
  check_error([] { add(ones({2, 3}), ones({4})); },
              "add: [2,3] and [4]: shapes do not broadcast (dim -1: 3 vs 4)");
  check_error([] { mul(ones({2}), ones({2}, DType::F64)); },
              "mul: float32 [2] and float64 [2]: dtypes differ");
  check_error([] { gelu(arange(4)); }, "gelu: int64 [4]: expected a floating-point tensor");
  check_error([] { where(ones({2}), ones({2}), ones({2})); },
              "where: condition float32 [2]: expected a bool tensor");
  check_error([] { masked_fill(ones({2}), eq(ones({3, 2}), ones({3, 2})), 0); },
              "masked_fill: mask [3,2] does not broadcast to x [2]");
}

}  // namespace
}  // namespace loom::test
