#include "recipes/demo.h"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <random>
#include <vector>

#include "autograd/ops.h"
#include "optim/sgd.h"

namespace loom::recipes {
namespace {

using ag::Tensor;
using kernels::DType;

constexpr int kClasses = 3;

struct Dataset {
  std::vector<float> x;  // (N, 2)
  std::vector<int64_t> y;
  int64_t size() const { return int64_t(y.size()); }
};

// Three spiral arms (class k starts at angle 4k), radius growing along the arm, with
// angular noise: not linearly separable, easy for a small MLP.
Dataset make_spirals(int per_class, std::mt19937_64& rng) {
  std::normal_distribution<double> noise(0.0, 0.2);
  Dataset d;
  for (int k = 0; k < kClasses; ++k) {
    for (int i = 0; i < per_class; ++i) {
      const double r = double(i) / per_class;
      const double theta = 4.0 * k + 4.0 * r + noise(rng);
      d.x.push_back(float(r * std::sin(theta)));
      d.x.push_back(float(r * std::cos(theta)));
      d.y.push_back(k);
    }
  }
  return d;
}

struct Mlp {
  Tensor w1, b1, w2, b2;  // w1: (H, 2), w2: (3, H), Linear layout [out, in]

  Mlp(int hidden, kernels::Generator& gen) {
    auto xavier = [&](int64_t out, int64_t in) {
      const double bound = std::sqrt(6.0 / double(in + out));
      Tensor w = ag::empty({out, in});
      w.uniform_(gen, -bound, bound);
      return w.set_requires_grad();
    };
    w1 = xavier(hidden, 2);
    b1 = ag::zeros({hidden}).set_requires_grad();
    w2 = xavier(kClasses, hidden);
    b2 = ag::zeros({kClasses}).set_requires_grad();
  }

  ag::NamedTensors params() const { return {{"w1", w1}, {"b1", b1}, {"w2", w2}, {"b2", b2}}; }

  Tensor forward(const Tensor& x) const {  // x: (B, 2) -> logits (B, 3)
    return ag::linear(ag::relu(ag::linear(x, w1, b1)), w2, b2);
  }
};

double accuracy(const Mlp& model, const Dataset& d) {
  ag::NoGrad no_grad;
  const Tensor logits = model.forward(ag::from_vector(d.x, {d.size(), 2}));
  const std::vector<float> v = logits.to_vector<float>();
  int64_t correct = 0;
  for (int64_t i = 0; i < d.size(); ++i) {
    const float* row = &v[size_t(i * kClasses)];
    const int64_t pred = std::max_element(row, row + kClasses) - row;
    correct += pred == d.y[size_t(i)];
  }
  return double(correct) / double(d.size());
}

}  // namespace

DemoResult run_demo(const DemoOptions& opt, std::ostream& out) {
  std::mt19937_64 rng(opt.seed);
  const Dataset train = make_spirals(300, rng), test = make_spirals(100, rng);
  kernels::Generator gen(opt.seed);
  Mlp model(opt.hidden, gen);
  optim::SGDOptions sgd_options;
  sgd_options.lr = opt.lr;
  sgd_options.momentum = opt.momentum;
  optim::SGD sgd(model.params(), sgd_options);
  out << "loom demo: 2-layer MLP (2 -> " << opt.hidden << " -> 3, ReLU) on 3 spirals, "
      << train.size() << " train / " << test.size() << " test points, SGD lr " << opt.lr
      << " momentum " << opt.momentum << ", batch " << opt.batch << "\n";

  DemoResult result;
  std::uniform_int_distribution<int64_t> pick(0, train.size() - 1);
  double window = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int step = 1; step <= opt.steps; ++step) {
    std::vector<float> xb;
    std::vector<int64_t> yb;
    for (int i = 0; i < opt.batch; ++i) {
      const int64_t j = pick(rng);
      xb.push_back(train.x[size_t(2 * j)]);
      xb.push_back(train.x[size_t(2 * j + 1)]);
      yb.push_back(train.y[size_t(j)]);
    }
    const Tensor logits = model.forward(ag::from_vector(xb, {opt.batch, 2}));
    Tensor loss = ag::cross_entropy(logits, ag::from_vector(yb, {opt.batch}));
    window += loss.item<float>();
    loss.backward();
    sgd.step();
    sgd.zero_grad();
    if (step % opt.log_every == 0) {
      const double mean_loss = window / opt.log_every;
      if (result.first_loss == 0) result.first_loss = mean_loss;
      result.final_loss = mean_loss;
      window = 0;
      out << "step " << std::setw(5) << step << "/" << opt.steps << "  loss " << std::fixed
          << std::setprecision(4) << mean_loss << "  train acc " << std::setprecision(1)
          << 100 * accuracy(model, train) << "%\n";
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.test_accuracy = accuracy(model, test);
  out << "held-out accuracy " << std::setprecision(1) << 100 * result.test_accuracy << "% after "
      << opt.steps << " steps (" << std::setprecision(0) << opt.steps / secs << " steps/s)\n";
  return result;
}

}  // namespace loom::recipes
