// clip_grad_norm (torch.nn.utils.clip_grad_norm_, norm_type 2): the returned total norm,
// the scaling (hand values), a no-op under the limit, parameters without gradients.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "optim/clip.h"

namespace loom::optim {
namespace {

using ag::DType;
using ag::Tensor;

// Parameters with gradients [3, 4] (norm 5) and [[12]] (norm 12), and one without a gradient:
// total norm 13.
ag::NamedTensors params_3_4_12(DType dtype) {
  Tensor a = ag::zeros({2}, dtype).set_requires_grad(true);
  Tensor b = ag::zeros({1, 1}, dtype).set_requires_grad(true);
  Tensor c = ag::zeros({5}, dtype).set_requires_grad(true);
  a.set_grad(ag::from_vector<double>({3, 4}, {2}).to(dtype));
  b.set_grad(ag::from_vector<double>({12}, {1, 1}).to(dtype));
  return {{"a", a}, {"b", b}, {"c", c}};
}

TEST_CASE("clip_grad_norm: scales every gradient by max_norm / (norm + 1e-6)") {
  for (DType dtype : {DType::F64, DType::F32}) {
    INFO(kernels::dtype_name(dtype));
    const ag::NamedTensors p = params_3_4_12(dtype);
    CHECK(grad_norm(p) == 13.0);
    CHECK(clip_grad_norm(p, 6.5) == 13.0);
    const double coef = 6.5 / (13.0 + 1e-6);
    const double tol = dtype == DType::F64 ? 1e-15 : 1e-7;  // float32 rounding of the product
    const std::vector<double> a = p[0].tensor.grad().to(DType::F64).to_vector<double>();
    CHECK(a[0] == doctest::Approx(3 * coef).epsilon(tol));
    CHECK(a[1] == doctest::Approx(4 * coef).epsilon(tol));
    CHECK(p[1].tensor.grad().to(DType::F64).item<double>() ==
          doctest::Approx(12 * coef).epsilon(tol));
    CHECK_FALSE(p[2].tensor.grad().defined());
    CHECK(grad_norm(p) == doctest::Approx(6.5).epsilon(1e-6));
  }
}

TEST_CASE("clip_grad_norm: no change under the limit") {
  const ag::NamedTensors p = params_3_4_12(DType::F32);
  CHECK(clip_grad_norm(p, 13.5) == 13.0);
  CHECK(p[0].tensor.grad().to_vector<float>() == std::vector<float>{3, 4});
  CHECK(p[1].tensor.grad().item<float>() == 12.0f);
  // Exactly at the limit the coefficient 13 / (13 + 1e-6) is just below 1, as in PyTorch.
  CHECK(clip_grad_norm(p, 13.0) == 13.0);
  CHECK(p[1].tensor.grad().item<float>() == doctest::Approx(12.0 * 13 / (13 + 1e-6)).epsilon(1e-7));
}

TEST_CASE("clip_grad_norm: no gradients, bad max_norm") {
  const ag::NamedTensors none = {{"w", ag::zeros({3}).set_requires_grad(true)}};
  CHECK(clip_grad_norm(none, 1.0) == 0.0);
  CHECK_THROWS_WITH_AS(clip_grad_norm(none, 0.0), "clip_grad_norm: max_norm 0: must be positive",
                       Error);
}

}  // namespace
}  // namespace loom::optim
