// AdamW: three steps against PyTorch's torch.optim.AdamW (/adamw in the shared golden file,
// float32 and float64), hand values of the formula, the fused kernel across thread
// boundaries, parameter groups, skipped parameters, per-parameter step counts, state by
// name (in memory and through HDF5) and the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "autograd/ops.h"
#include "optim/adamw.h"
#include "recipes/h5.h"
#include "common/specs.h"

namespace loom::optim {
namespace {

using ag::DType;
using ag::Tensor;

std::string golden_path() { return test::spec_path("model_golden.h5"); }

Tensor leaf(Tensor t) {
  t.set_requires_grad(true);
  return t;
}

// Whether |got - want| <= rtol * |want| + atol for every element; prints the worst one.
bool close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  REQUIRE(got.sizes() == want.sizes());
  const std::vector<double> g = got.to(DType::F64).to_vector<double>();
  const std::vector<double> w = want.to(DType::F64).to_vector<double>();
  double worst = 0;  // (|got - want| - atol) / (rtol * |want|)
  size_t at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double r = (std::abs(g[i] - w[i]) - atol) / (rtol * std::abs(w[i]));
    if (r > worst) worst = r, at = i;
  }
  INFO("worst element ", at, ": ", g[at], " vs ", w[at], " (", worst, " of the tolerance)");
  CHECK(worst <= 1.0);
  return worst <= 1.0;
}

// One step of the documented algorithm on one element (the test's independent reference).
struct Reference {
  double p, m = 0, v = 0;
  int t = 0;
  void step(double g, double lr, double wd, double b1, double b2, double eps) {
    ++t;
    p -= lr * wd * p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    p -= lr * (m / (1 - std::pow(b1, t))) / (std::sqrt(v / (1 - std::pow(b2, t))) + eps);
  }
};

void check_golden(DType dtype) {
  const recipes::h5::File f = recipes::h5::File::open(golden_path());
  const recipes::h5::Group g = f.group("adamw");
  REQUIRE(g.string_attr("settings") ==
          "lr=1e-2 betas=(0.9,0.98) eps=1e-9; weight_decay 0.1 on w, 0.0 on b; decoupled (AdamW)");
  Tensor w = leaf(g.read_tensor("w0").to(dtype));
  Tensor b = leaf(g.read_tensor("b0").to(dtype));
  AdamW opt({ParamGroup{{{"w", w}}, {}, 0.1}, ParamGroup{{{"b", b}}, {}, 0.0}},
            {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.98, .eps = 1e-9});
  // float64 matches PyTorch's float64 run to rounding. float32 rounds the inputs and each
  // operation (2^-24 relative); exp_avg = 0.9 m + 0.1 g cancels where m and g have opposite
  // signs (w[1,0] at step 2: -0.142 + 0.148 = 0.006), which turns those roundings of the
  // ~0.15 operands into ~1e-8 absolute, hence the atol.
  const bool f64 = dtype == DType::F64;
  const double rtol = f64 ? 1e-12 : 1e-6, atol = f64 ? 0.0 : 1e-8;
  for (int k = 1; k <= 3; ++k) {
    const recipes::h5::Group s = g.group("step" + std::to_string(k));
    w.set_grad(s.read_tensor("grad_w").to(dtype));
    b.set_grad(s.read_tensor("grad_b").to(dtype));
    opt.step();
    INFO("step ", k, ", ", kernels::dtype_name(dtype));
    CHECK(opt.state("w").step == k);
    close(w, s.read_tensor("w"), rtol, atol);
    close(b, s.read_tensor("b"), rtol, atol);
    close(opt.state("w").exp_avg, s.read_tensor("exp_avg_w"), rtol, atol);
    close(opt.state("w").exp_avg_sq, s.read_tensor("exp_avg_sq_w"), rtol, atol);
  }
}

TEST_CASE("AdamW: three steps equal PyTorch's (golden file), float64 and float32") {
  check_golden(DType::F64);
  check_golden(DType::F32);
}

TEST_CASE("AdamW: hand values of the formula") {
  // Constant gradient 0.5: bias correction gives m_hat = 0.5, v_hat = 0.25 exactly, so
  // each step is p * (1 - lr * wd) - lr * 0.5 / (0.5 + eps).
  Tensor p = leaf(ag::from_vector<double>({1.0}, {1}));
  AdamW opt({{"p", p}}, {.lr = 0.1, .eps = 1e-8, .weight_decay = 0.01});
  p.set_grad(ag::full({1}, 0.5, DType::F64));
  opt.step();
  CHECK(p.item<double>() == doctest::Approx(0.899000002).epsilon(1e-14));
  opt.step();
  CHECK(p.item<double>() == doctest::Approx(0.7981010039980005).epsilon(1e-14));

  // Varying gradients and two elements against the reference loop.
  const std::vector<std::vector<double>> grads = {{0.3, -2.0}, {-0.7, 0.01}, {1.5, -0.2}};
  Tensor q = leaf(ag::from_vector<double>({0.25, -1.5}, {2}));
  AdamW opt2({{"q", q}},
             {.lr = 0.05, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.2});
  Reference r0{0.25}, r1{-1.5};
  for (const auto& g : grads) {
    q.set_grad(ag::from_vector<double>(g, {2}));
    opt2.step();
    r0.step(g[0], 0.05, 0.2, 0.8, 0.95, 1e-6);
    r1.step(g[1], 0.05, 0.2, 0.8, 0.95, 1e-6);
    const std::vector<double> got = q.to_vector<double>();
    CHECK(got[0] == doctest::Approx(r0.p).epsilon(1e-6));
    CHECK(got[1] == doctest::Approx(r1.p).epsilon(1e-6));
    CHECK(got[0] == doctest::Approx(r0.p).epsilon(1e-13));  // double: rounding only
    CHECK(got[1] == doctest::Approx(r1.p).epsilon(1e-13));
  }
  CHECK(opt2.state("q").exp_avg.to_vector<double>()[1] == doctest::Approx(r1.m).epsilon(1e-13));
  CHECK(opt2.state("q").exp_avg_sq.to_vector<double>()[0] == doctest::Approx(r0.v).epsilon(1e-13));
}

TEST_CASE("AdamW: the fused kernel updates many tensors across thread boundaries") {
  // 6001 elements * the kernel's cost estimate exceed the single-thread grain, so the index
  // range is split between threads, inside a tensor.
  ag::Generator gen(7);
  const std::vector<ag::Dims> shapes = {{40, 75}, {1}, {0, 3}, {2500}, {500}};
  ag::NamedTensors params;
  std::vector<std::vector<Reference>> refs;
  for (size_t k = 0; k < shapes.size(); ++k) {
    std::string name = "p";  // (not "p" + to_string: GCC 12's false -Wrestrict, PR 105329)
    name += std::to_string(k);
    params.push_back({name, leaf(ag::randn(shapes[k], gen, DType::F64))});
    refs.emplace_back();
    for (double x : params.back().tensor.to_vector<double>()) refs.back().push_back({x});
  }
  AdamW opt(params, {.lr = 0.01, .weight_decay = 0.05});
  for (int step = 0; step < 2; ++step) {
    for (size_t k = 0; k < params.size(); ++k) {
      const Tensor g = ag::randn(shapes[k], gen, DType::F64);
      params[k].tensor.set_grad(g);
      const std::vector<double> gv = g.to_vector<double>();
      for (size_t i = 0; i < gv.size(); ++i) refs[k][i].step(gv[i], 0.01, 0.05, 0.9, 0.999, 1e-8);
    }
    opt.step();
  }
  double worst = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    const std::vector<double> got = params[k].tensor.to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::abs(got[i] - refs[k][i].p) / std::abs(refs[k][i].p));
  }
  CHECK(worst < 1e-12);
}

TEST_CASE("AdamW: groups, skipped parameters, per-parameter step counts") {
  Tensor a = leaf(ag::from_vector<double>({1.0, 2.0}, {2}));
  Tensor b = leaf(ag::from_vector<double>({-1.0}, {1}));
  AdamW opt({ParamGroup{{{"a", a}}, 0.1, 0.0}, ParamGroup{{{"b", b}}, {}, {}}},
            {.lr = 0.01, .weight_decay = 0.5});
  CHECK(opt.lr(0) == 0.1);
  CHECK(opt.lr(1) == 0.01);
  CHECK(*opt.group(1).weight_decay == 0.5);
  CHECK(opt.param_names() == std::vector<std::string>{"a", "b"});

  // Step 1: only a has a gradient; b is untouched and has no state.
  a.set_grad(ag::full({2}, 1.0, DType::F64));
  const auto version = a.storage()->version();
  opt.step();
  CHECK(a.storage()->version() > version);  // saved-for-backward checks see the write
  CHECK(b.item<double>() == -1.0);
  CHECK_FALSE(opt.has_state("b"));
  CHECK(opt.has_state("a"));
  // Step 2: both; b's first step uses t = 1 (bias correction of its own count).
  b.set_grad(ag::full({1}, 2.0, DType::F64));
  opt.step();
  CHECK(opt.state("a").step == 2);
  CHECK(opt.state("b").step == 1);
  Reference rb{-1.0};
  rb.step(2.0, 0.01, 0.5, 0.9, 0.999, 1e-8);
  CHECK(b.item<double>() == doctest::Approx(rb.p).epsilon(1e-14));
  // Changing a group's lr takes effect at the next step.
  opt.set_lr(1, 0.0);
  const double before = b.item<double>();
  opt.step();
  CHECK(b.item<double>() == before);  // lr 0 and weight decay * lr = 0: no change
  opt.set_lr(0.5);
  CHECK(opt.lr(0) == 0.5);
  CHECK(opt.lr(1) == 0.5);
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
}

// Steps `opt` once with gradient `g` on parameter w.
void step_with(AdamW& opt, Tensor& w, const Tensor& g) {
  w.set_grad(g);
  opt.step();
}

TEST_CASE("AdamW: state by name restores the optimizer exactly (memory and HDF5)") {
  ag::Generator gen(3);
  const Tensor w0 = ag::randn({3, 4}, gen);
  const std::vector<Tensor> grads = {ag::randn({3, 4}, gen), ag::randn({3, 4}, gen),
                                     ag::randn({3, 4}, gen)};
  Tensor w = leaf(w0.clone());
  AdamW a({{"w", w}}, {.lr = 0.01});
  step_with(a, w, grads[0]);
  step_with(a, w, grads[1]);

  // Save what a checkpoint saves: parameter, moments, step count.
  const std::string name = "loom_test_adamw_" + std::to_string(std::random_device()()) + ".h5";
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  {
    recipes::h5::File f = recipes::h5::File::create(path);
    f.write_tensor("model/w", w);
    f.write_tensor("optim/exp_avg/w", a.state("w").exp_avg);
    f.write_tensor("optim/exp_avg_sq/w", a.state("w").exp_avg_sq);
    f.group("optim").set_int_attr("step", a.state("w").step);
  }
  Tensor w2 = leaf(ag::zeros({3, 4}));
  AdamW b({{"w", w2}}, {.lr = 0.01});
  {
    const recipes::h5::File f = recipes::h5::File::open(path);
    ag::NoGrad no_grad;
    w2.copy_(f.read_tensor("model/w"));
    AdamW::State s{f.group("optim").int_attr("step"), f.read_tensor("optim/exp_avg/w"),
                   f.read_tensor("optim/exp_avg_sq/w")};
    b.set_state("w", s);
    s.exp_avg.fill_(100.0);  // set_state copied: this does not reach b
  }
  std::filesystem::remove(path);
  // In memory too.
  Tensor w3 = leaf(w.detach().clone());
  AdamW c({{"w", w3}}, {.lr = 0.01});
  c.set_state("w", a.state("w"));

  step_with(a, w, grads[2]);
  step_with(b, w2, grads[2]);
  step_with(c, w3, grads[2]);
  CHECK(b.state("w").step == 3);
  CHECK(w2.to_vector<float>() == w.to_vector<float>());  // bit for bit
  CHECK(w3.to_vector<float>() == w.to_vector<float>());
  CHECK(b.state("w").exp_avg_sq.to_vector<float>() == a.state("w").exp_avg_sq.to_vector<float>());
}

TEST_CASE("AdamW: bad inputs") {
  Tensor w = leaf(ag::zeros({3, 4}));
  Tensor b = leaf(ag::zeros({4}));
  CHECK_THROWS_WITH_AS(AdamW({{"w", w}}, {.lr = -0.1}), "AdamW: lr -0.1: must be non-negative",
                       Error);
  CHECK_THROWS_WITH_AS(AdamW({{"w", w}}, {.beta1 = 1.0}), "AdamW: beta1 1: must be in [0, 1)",
                       Error);
  CHECK_THROWS_WITH_AS(AdamW({{"w", w}}, {.beta2 = -0.5}), "AdamW: beta2 -0.5: must be in [0, 1)",
                       Error);
  CHECK_THROWS_WITH_AS(AdamW({{"w", w}}, {.eps = -1e-8}), "AdamW: eps -1e-08: must be non-negative",
                       Error);
  CHECK_THROWS_WITH_AS(AdamW({ParamGroup{{{"w", w}}, {}, {}}, ParamGroup{{{"b", b}}, -1.0, {}}}),
                       "AdamW: group 1: lr -1: must be non-negative", Error);
  CHECK_THROWS_WITH_AS(AdamW({ParamGroup{{{"w", w}}, {}, {}}, ParamGroup{{{"w", b}}, {}, {}}}),
                       "AdamW: parameter 'w' appears twice (groups 0 and 1)", Error);
  CHECK_THROWS_WITH_AS(AdamW({{"ids", ag::arange(3)}}),
                       "AdamW: parameter 'ids': int64 [3]: expected a floating-point tensor",
                       Error);

  AdamW opt({ParamGroup{{{"w", w}}, {}, {}}, ParamGroup{{{"b", b}}, {}, 0.0}});
  CHECK_THROWS_WITH_AS(opt.set_lr(1, -1.0), "AdamW: group 1: lr -1: must be non-negative", Error);
  CHECK_THROWS_WITH_AS(opt.lr(2), "AdamW: group 2: the optimizer has 2 groups", Error);
  CHECK_THROWS_WITH_AS(opt.state("w"),
                       "AdamW.state: parameter 'w' has no state yet (it has not been stepped)",
                       Error);
  const AdamW::State good{1, ag::zeros({3, 4}), ag::zeros({3, 4})};
  CHECK_THROWS_WITH_AS(opt.set_state("nope", good), "AdamW.set_state: unknown parameter 'nope'",
                       Error);
  CHECK_THROWS_WITH_AS(opt.set_state("w", {1, ag::zeros({4, 3}), ag::zeros({3, 4})}),
                       "AdamW.set_state: parameter 'w' [3,4]: exp_avg has shape [4,3]", Error);
  CHECK_THROWS_WITH_AS(opt.set_state("w", {1, ag::zeros({3, 4}), ag::zeros({3, 4}, DType::F64)}),
                       "AdamW.set_state: parameter 'w' float32: exp_avg_sq is float64",
                       Error);
  CHECK_THROWS_WITH_AS(opt.set_state("w", {0, ag::zeros({3, 4}), ag::zeros({3, 4})}),
                       "AdamW.set_state: parameter 'w': step 0: must be at least 1", Error);
  CHECK_FALSE(opt.has_state("w"));  // failed restores change nothing
  opt.set_state("w", good);
  CHECK(opt.state("w").step == 1);
}

}  // namespace
}  // namespace loom::optim
