// layer_norm: forward against a composite and a plain loop, gradients (x, weight, bias;
// with and without the affine terms; one and two normalized dims), thread-count
// independence of the weight/bias gradients, and error messages.
#include <cmath>

#include "common/op_spec.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace loom::test {
namespace {

using namespace loom::ag;

// (x - mean) / sqrt(var + eps) * w + b over the last `k` dims, from tested ops.
Tensor layer_norm_composite(const Tensor& x, int k, const Tensor& w, const Tensor& b) {
  std::vector<int> dims;
  for (int d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  const Tensor c = x - mean(x, dims, true);
  Tensor y = c * rsqrt(mean(c * c, dims, true) + 1e-5);
  if (w.defined()) y = y * w;
  if (b.defined()) y = y + b;
  return y;
}

TEST_CASE("layer_norm: forward against the composite, gradients") {
  const std::vector<OpSpec> specs = {
      {.name = "layer_norm weight+bias", .shapes = {{3, 5}, {5}, {5}},
       .op = [](const Tensors& in) { return layer_norm(in[0], {5}, in[1], in[2]); },
       .reference = [](const Tensors& in) { return layer_norm_composite(in[0], 1, in[1], in[2]); }},
      {.name = "layer_norm no affine", .shapes = {{3, 5}},
       .op = [](const Tensors& in) { return layer_norm(in[0], {5}); },
       .reference = [](const Tensors& in) { return layer_norm_composite(in[0], 1, {}, {}); }},
      {.name = "layer_norm weight only", .shapes = {{4, 6}, {6}},
       .op = [](const Tensors& in) { return layer_norm(in[0], {6}, in[1]); },
       .reference = [](const Tensors& in) { return layer_norm_composite(in[0], 1, in[1], {}); }},
      {.name = "layer_norm bias only", .shapes = {{4, 6}, {6}},
       .op = [](const Tensors& in) { return layer_norm(in[0], {6}, Tensor(), in[1]); },
       .reference = [](const Tensors& in) { return layer_norm_composite(in[0], 1, {}, in[1]); }},
      {.name = "layer_norm 2 trailing dims", .shapes = {{2, 3, 4}, {3, 4}, {3, 4}},
       .op = [](const Tensors& in) { return layer_norm(in[0], {3, 4}, in[1], in[2]); },
       .reference = [](const Tensors& in) { return layer_norm_composite(in[0], 2, in[1], in[2]); }},
      {.name = "layer_norm 3-D, last dim", .shapes = {{2, 3, 4}, {4}, {4}},
       .op = [](const Tensors& in) { return layer_norm(in[0], {4}, in[1], in[2]); },
       .reference = [](const Tensors& in) { return layer_norm_composite(in[0], 1, in[1], in[2]); }},
      // Only the affine parameters differentiable (x held constant).
      {.name = "layer_norm weight/bias grads only", .shapes = {{5, 4}, {4}, {4}},
       .op = [](const Tensors& in) { return layer_norm(in[0], {4}, in[1], in[2]); },
       .differentiable = {false, true, true}},
      // Composed, so the incoming gradient is not uniform per row.
      {.name = "layer_norm squared", .shapes = {{3, 5}, {5}, {5}},
       .op = [](const Tensors& in) {
         const Tensor y = layer_norm(in[0], {5}, in[1], in[2]);
         return y * y;
       }},
  };
  for (const OpSpec& spec : specs) check_op(spec);
}

TEST_CASE("layer_norm: values equal (x - mean) / sqrt(var + eps) * w + b by a plain loop") {
  const std::vector<double> xv = {1, 2, 4, 7, -3, 0.5, 0.25, 8};
  const std::vector<double> wv = {0.5, -1, 2, 1.5}, bv = {0.1, 0.2, -0.3, 0};
  const double eps = 1e-3;
  const Tensor y = layer_norm(from_vector(xv, {2, 4}), {4}, from_vector(wv, {4}),
                              from_vector(bv, {4}), eps);
  const std::vector<double> got = y.to_vector<double>();
  for (int r = 0; r < 2; ++r) {
    double m = 0, var = 0;
    for (int j = 0; j < 4; ++j) m += xv[size_t(r * 4 + j)] / 4;
    for (int j = 0; j < 4; ++j) var += std::pow(xv[size_t(r * 4 + j)] - m, 2) / 4;  // biased
    for (int j = 0; j < 4; ++j) {
      const size_t i = size_t(r * 4 + j);
      const double want = (xv[i] - m) / std::sqrt(var + eps) * wv[size_t(j)] + bv[size_t(j)];
      CHECK(got[i] == doctest::Approx(want).epsilon(1e-14));
    }
  }
  // Without affine terms each row has mean 0 and (biased) variance 1 / (1 + eps / var).
  const Tensor z = layer_norm(from_vector<float>({3, 3, 3, 5}, {1, 4}), {4});
  const std::vector<float> zv = z.to_vector<float>();
  CHECK(zv[0] + zv[1] + zv[2] + zv[3] == doctest::Approx(0).epsilon(1e-6));
  CHECK(zv[3] == doctest::Approx(std::sqrt(3.0) * std::sqrt(0.75 / (0.75 + 1e-5))).epsilon(1e-6));
  // A constant row normalizes to 0 (var 0, rstd = 1 / sqrt(eps)), not NaN.
  CHECK(layer_norm(full({2, 3}, 7.0), {3}).to_vector<float>() == std::vector<float>(6, 0.0f));
}

TEST_CASE("layer_norm: many rows, float32, gradients independent of the thread count") {
  kernels::Generator gen(3);
  const Tensor x0 = randn({300, 64}, gen, DType::F64) * 2.0 + 1.0;
  const Tensor w0 = randn({64}, gen, DType::F64), b0 = randn({64}, gen, DType::F64);
  const Tensor r = randn({300, 64}, gen, DType::F64);
  {
    NoGrad no_grad;
    CHECK(max_abs_diff(layer_norm(x0, {64}, w0, b0), layer_norm_composite(x0, 1, w0, b0)) < 1e-12);
    const Tensor xf = x0.to(DType::F32), wf = w0.to(DType::F32), bf = b0.to(DType::F32);
    CHECK(max_abs_diff(layer_norm(xf, {64}, wf, bf), layer_norm_composite(xf, 1, wf, bf)) < 1e-5);
  }
  // Gradients of sum(layer_norm(x) * r) with 1 thread and with all threads: bitwise equal,
  // and equal to the composite's.
  auto grads = [&](const Tensor& xs, const Tensor& ws, const Tensor& bs, bool fused) {
    Tensor x = xs.detach().set_requires_grad(), w = ws.detach().set_requires_grad(),
           b = bs.detach().set_requires_grad();
    const Tensor y = fused ? layer_norm(x, {64}, w, b) : layer_norm_composite(x, 1, w, b);
    sum(y * r.to(xs.dtype())).backward();
    return std::vector<Tensor>{x.grad(), w.grad(), b.grad()};
  };
  for (DType dtype : {DType::F64, DType::F32}) {
    const Tensor x = x0.to(dtype), w = w0.to(dtype), b = b0.to(dtype);
    const std::vector<Tensor> all_threads = grads(x, w, b, true);
#ifdef _OPENMP
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const std::vector<Tensor> one_thread = grads(x, w, b, true);
    omp_set_num_threads(threads);
    for (size_t i = 0; i < 3; ++i) CHECK(max_abs_diff(all_threads[i], one_thread[i]) == 0);
#endif
    const std::vector<Tensor> composite = grads(x, w, b, false);
    const double tol = dtype == DType::F64 ? 1e-11 : 2e-3;
    for (size_t i = 0; i < 3; ++i) CHECK(max_abs_diff(all_threads[i], composite[i]) < tol);
  }
}

TEST_CASE("layer_norm errors name the op, the operands and the rule") {
  check_error([] { layer_norm(arange(4), {4}); },
              "layer_norm: int64 [4]: expected a floating-point tensor");
  check_error([] { layer_norm(ones({2, 4}), {}); },
              "layer_norm: input [2,4], normalized_shape []: expected at least one normalized dim");
  check_error([] { layer_norm(ones({2, 4}), {5}); },
              "layer_norm: input [2,4], normalized_shape [5]: the input's trailing dims must "
              "equal normalized_shape");
  check_error([] { layer_norm(ones({4}), {2, 4}); },
              "layer_norm: input [4], normalized_shape [2,4]: the input's trailing dims");
  check_error([] { layer_norm(ones({2, 3, 4}), {3, 4}, ones({4})); },
              "layer_norm: weight [4], normalized_shape [3,4]: weight must have shape "
              "normalized_shape");
  check_error([] { layer_norm(ones({2, 4}), {4}, ones({4}), ones({2, 4})); },
              "layer_norm: bias [2,4], normalized_shape [4]: bias must have shape "
              "normalized_shape");
  check_error([] { layer_norm(ones({2, 4}), {4}, ones({4}, DType::F64)); },
              "layer_norm: float32 [2,4] and float64 [4]: dtypes differ");
}

}  // namespace
}  // namespace loom::test
