// SGD with momentum (torch.optim.SGD, dampening 0, coupled weight decay): hand values,
// the momentum buffer by name, restore, and bad inputs.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "optim/sgd.h"

namespace loom::optim {
namespace {

using ag::DType;
using ag::Tensor;

Tensor leaf(Tensor t) {
  t.set_requires_grad(true);
  return t;
}

TEST_CASE("SGD: hand values with momentum and weight decay") {
  // lr 0.1, momentum 0.9, weight decay 0.1, p = 1, g = 0.5 twice:
  //   d1 = 0.5 + 0.1 * 1 = 0.6,  b1 = d1 = 0.6,  p1 = 1 - 0.1 * 0.6 = 0.94
  //   d2 = 0.5 + 0.1 * 0.94 = 0.594,  b2 = 0.9 * 0.6 + 0.594 = 1.134,  p2 = 0.94 - 0.1134 = 0.8266
  Tensor p = leaf(ag::from_vector<double>({1.0, -2.0}, {2}));
  SGD opt({{"p", p}}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
  CHECK_FALSE(opt.has_momentum_buffer("p"));
  p.set_grad(ag::from_vector<double>({0.5, 0.0}, {2}));
  opt.step();
  CHECK(p.to_vector<double>()[0] == doctest::Approx(0.94).epsilon(1e-15));
  CHECK(opt.momentum_buffer("p").to_vector<double>()[0] == doctest::Approx(0.6).epsilon(1e-15));
  opt.step();
  CHECK(p.to_vector<double>()[0] == doctest::Approx(0.8266).epsilon(1e-15));
  CHECK(opt.momentum_buffer("p").to_vector<double>()[0] == doctest::Approx(1.134).epsilon(1e-15));
  // Element 1: gradient 0, so only the decay term: d1 = -0.2, p1 = -1.98;
  // d2 = -0.198, b2 = -0.18 - 0.198 = -0.378, p2 = -1.98 + 0.0378 = -1.9422.
  CHECK(p.to_vector<double>()[1] == doctest::Approx(-1.9422).epsilon(1e-15));
}

TEST_CASE("SGD: plain steps without momentum keep no buffer, the gradient is not changed") {
  Tensor p = leaf(ag::from_vector<float>({3.0f}, {1}));
  SGD opt({{"p", p}}, {.lr = 0.5});
  const Tensor g = ag::full({1}, 2.0f);
  p.set_grad(g);
  opt.step();
  opt.step();
  CHECK(p.item<float>() == 1.0f);  // 3 - 0.5 * 2 - 0.5 * 2
  CHECK(g.item<float>() == 2.0f);
  CHECK_FALSE(opt.has_momentum_buffer("p"));
}

TEST_CASE("SGD: the momentum buffer restores the optimizer exactly") {
  ag::Generator gen(5);
  const std::vector<Tensor> grads = {ag::randn({2, 3}, gen), ag::randn({2, 3}, gen)};
  Tensor a = leaf(ag::randn({2, 3}, gen));
  Tensor b = leaf(a.detach().clone());
  SGD sa({{"w", a}}, {.lr = 0.05, .momentum = 0.9});
  SGD sb({{"w", b}}, {.lr = 0.05, .momentum = 0.9});
  a.set_grad(grads[0]);
  sa.step();
  {
    ag::NoGrad no_grad;
    b.copy_(a);
  }
  sb.set_momentum_buffer("w", sa.momentum_buffer("w"));
  a.set_grad(grads[1]);
  b.set_grad(grads[1]);
  sa.step();
  sb.step();
  CHECK(a.to_vector<float>() == b.to_vector<float>());
}

TEST_CASE("SGD: bad inputs") {
  Tensor w = leaf(ag::zeros({2, 2}));
  CHECK_THROWS_WITH_AS(SGD({{"w", w}}, {.lr = -1.0}), "SGD: lr -1: must be non-negative", Error);
  CHECK_THROWS_WITH_AS(SGD({{"w", w}}, {.momentum = -0.9}),
                       "SGD: momentum -0.9: must be non-negative", Error);
  CHECK_THROWS_WITH_AS(SGD({{"w", w}}, {.weight_decay = -0.1}),
                       "SGD: weight_decay -0.1: must be non-negative", Error);
  SGD opt({{"w", w}}, {.momentum = 0.9});
  CHECK_THROWS_WITH_AS(opt.momentum_buffer("w"),
                       "SGD.momentum_buffer: parameter 'w' has no momentum buffer (not stepped "
                       "yet, or momentum is 0)",
                       Error);
  CHECK_THROWS_WITH_AS(opt.set_momentum_buffer("v", ag::zeros({2, 2})),
                       "SGD.set_momentum_buffer: unknown parameter 'v'", Error);
  CHECK_THROWS_WITH_AS(opt.set_momentum_buffer("w", ag::zeros({4})),
                       "SGD.set_momentum_buffer: parameter 'w' [2,2]: buffer has shape [4]", Error);
}

}  // namespace
}  // namespace loom::optim
