// Gradient accumulation needs no optimizer support: backward adds into existing leaf
// gradients, so k micro-batches each with loss / k give the full batch's gradients.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "optim/sgd.h"

namespace loom::optim {
namespace {

using ag::DType;
using ag::Tensor;

// Mean squared error of a linear model y = x W^T + b on rows [start, start + n).
Tensor mse(const Tensor& w, const Tensor& b, const Tensor& x, const Tensor& t, int64_t start,
           int64_t n) {
  const Tensor d = ag::linear(x.narrow(0, start, n), w, b) - t.narrow(0, start, n);
  return ag::mean(d * d);
}

double max_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> u = a.to(DType::F64).to_vector<double>();
  const std::vector<double> v = b.to(DType::F64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < u.size(); ++i) m = std::max(m, std::abs(u[i] - v[i]));
  return m;
}

TEST_CASE("accumulation: k micro-batches with loss / k give the full batch's gradients") {
  for (DType dtype : {DType::F64, DType::F32}) {
    ag::Generator gen(11);
    const Tensor x = ag::randn({8, 4}, gen, dtype), t = ag::randn({8, 3}, gen, dtype);
    Tensor w = ag::randn({3, 4}, gen, dtype).set_requires_grad(true);
    Tensor b = ag::randn({3}, gen, dtype).set_requires_grad(true);

    mse(w, b, x, t, 0, 8).backward();
    const Tensor full_w = w.grad().clone(), full_b = b.grad().clone();
    SGD opt({{"w", w}, {"b", b}}, {.lr = 0.1});
    for (int64_t k : {2, 4, 8}) {
      INFO(kernels::dtype_name(dtype), ", k = ", k);
      opt.zero_grad();
      const int64_t n = 8 / k;
      for (int64_t i = 0; i < k; ++i) (mse(w, b, x, t, i * n, n) / double(k)).backward();
      // float32: a few roundings of values of order 1 (the sums differ in association).
      const double tol = dtype == DType::F64 ? 1e-14 : 1e-6;
      CHECK(max_diff(w.grad(), full_w) < tol);
      CHECK(max_diff(b.grad(), full_b) < tol);
      CHECK(max_diff(w.grad(), full_w) < tol);
    }
  }
}

}  // namespace
}  // namespace loom::optim
