// cross_entropy: forward against the formula by a plain double loop and hand numbers,
// all reductions, label smoothing, ignore_index, 3-D logits, int32 targets, gradients
// (contiguous and non-contiguous logits) and error messages.
#include <cmath>
#include <string>

#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// PyTorch's formula by a plain double loop: per row (1-eps)(lse - x_t) + eps(lse - mean x);
// ignored rows give 0 and do not count towards the mean.
Tensor ce_reference(const Tensor& logits, const std::vector<int64_t>& target, int64_t ignore,
                    double eps, const std::string& reduction) {
  const int64_t V = logits.size(-1), M = int64_t(target.size());
  const std::vector<double> x = logits.to(DType::F64).to_vector<double>();
  std::vector<double> loss(size_t(M), 0.0);
  double total = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < M; ++r) {
    if (target[size_t(r)] == ignore) continue;
    double s = 0, sx = 0;
    for (int64_t v = 0; v < V; ++v) {
      s += std::exp(x[size_t(r * V + v)]);
      sx += x[size_t(r * V + v)];
    }
    const double lse = std::log(s);
    const double x_t = x[size_t(r * V + target[size_t(r)])];
    loss[size_t(r)] = (1 - eps) * (lse - x_t) + eps * (lse - sx / double(V));
    total += loss[size_t(r)];
    ++count;
  }
  const Dims target_shape(logits.sizes().begin(), logits.sizes().end() - 1);
  if (reduction == "none") return from_vector(loss, target_shape).to(logits.dtype());
  const double out = reduction == "sum" ? total : total / double(count);
  return full({}, out, logits.dtype());
}

// An OpSpec for cross_entropy on fixed logits in [-2, 2) and a fixed int64 target.
OpSpec ce_spec(const Dims& logits_shape, std::vector<int64_t> target, int64_t ignore, double eps,
               const std::string& reduction, DType target_dtype = DType::I64) {
  const Dims target_shape(logits_shape.begin(), logits_shape.end() - 1);
  return OpSpec{
      .name = "cross_entropy eps=" + std::to_string(eps) + " " + reduction,
      .op = [=](const Tensors& in) { return cross_entropy(in[0], in[1], ignore, eps, reduction); },
      .reference = [=](const Tensors& in) {
        return ce_reference(in[0], target, ignore, eps, reduction);
      },
      .differentiable = {true, false},
      .make_inputs = [=](DType dtype) {
        kernels::Generator gen(17);
        const Tensor logits = rand(logits_shape, gen, DType::F64) * 4.0 - 2.0;
        return Tensors{logits.to(dtype), from_vector(target, target_shape).to(target_dtype)};
      },
  };
}

TEST_CASE("cross_entropy: forward against the formula, gradients") {
  std::vector<OpSpec> specs;
  const std::vector<int64_t> t4 = {1, 0, 4, 2}, t4_ignored = {1, -100, 4, -100};
  for (double eps : {0.0, 0.1}) {
    for (const char* reduction : {"mean", "sum", "none"}) {
      specs.push_back(ce_spec({4, 5}, t4, -100, eps, reduction));
      specs.push_back(ce_spec({4, 5}, t4_ignored, -100, eps, reduction));
      specs.push_back(ce_spec({2, 3, 7}, {6, 0, 3, 0, 2, 5}, 0, eps, reduction));  // pad id 0
    }
  }
  specs.push_back(ce_spec({3, 4}, {3, 1, 0}, -100, 0.2, "mean", DType::I32));
  specs.push_back(ce_spec({6}, {2}, -100, 0.1, "none"));  // 1-D logits, 0-dim target
  for (const OpSpec& spec : specs) check_op(spec);
}

TEST_CASE("cross_entropy: hand-computed values") {
  const Tensor t0 = from_vector<int64_t>({0}, {1});
  // Two equal logits: p = 1/2, loss = ln 2 with or without smoothing.
  CHECK(cross_entropy(zeros({1, 2}), t0).item<float>() == doctest::Approx(std::log(2.0)));
  CHECK(cross_entropy(zeros({1, 2}), t0, -100, 0.3).item<float>() ==
        doctest::Approx(std::log(2.0)));
  // logits [1, 2, 3], target 2: lse = 3 + ln(1 + e^-1 + e^-2) = 3.4076059644443806.
  const Tensor x = from_vector<double>({1, 2, 3}, {1, 3});
  const Tensor t2 = from_vector<int64_t>({2}, {1});
  CHECK(cross_entropy(x, t2).item<double>() == doctest::Approx(0.4076059644443806).epsilon(1e-14));
  // eps 0.2: 0.8 * 0.40760596 + 0.2 * (3.40760596 - 2) = 0.6076059644443806
  CHECK(cross_entropy(x, t2, -100, 0.2).item<double>() ==
        doctest::Approx(0.6076059644443806).epsilon(1e-14));
  // Ignored rows: 0 in "none", excluded from the mean's denominator.
  const Tensor x2 = from_vector<double>({1, 2, 3, 5, 5, 5}, {2, 3});
  const Tensor t_ign = from_vector<int64_t>({2, -100}, {2});
  CHECK(cross_entropy(x2, t_ign, -100, 0.0, "none").to_vector<double>()[1] == 0.0);
  CHECK(cross_entropy(x2, t_ign).item<double>() ==
        doctest::Approx(0.4076059644443806).epsilon(1e-14));
  // Large logits stay finite.
  const Tensor big = from_vector<float>({1000, 0, -1000}, {1, 3});
  CHECK(cross_entropy(big, from_vector<int64_t>({0}, {1})).item<float>() == 0.0f);
  CHECK(cross_entropy(big, from_vector<int64_t>({1}, {1})).item<float>() ==
        doctest::Approx(1000.0));
}

TEST_CASE("cross_entropy: gradient is (softmax - onehot) / count, 0 on ignored rows") {
  Tensor x = from_vector<double>({1, 2, 3, 0, 0, 0, 4, -1, 2}, {3, 3}).set_requires_grad();
  const Tensor t = from_vector<int64_t>({2, -100, 0}, {3});
  cross_entropy(x, t).backward();
  const std::vector<double> g = x.grad().to_vector<double>();
  const std::vector<double> p = softmax(x.detach()).to_vector<double>();
  const std::vector<int> onehot = {0, 0, 1, 0, 0, 0, 1, 0, 0};
  for (size_t i = 0; i < 9; ++i) {
    const double want = (i / 3 == 1) ? 0.0 : (p[i] - onehot[i]) / 2.0;  // 2 rows count
    CHECK(g[i] == doctest::Approx(want).epsilon(1e-14));
  }
}

TEST_CASE("cross_entropy: the gradient reuses the logits' memory only when nothing else holds it") {
  Generator gen(31);
  const Tensor h0 = rand({6, 5}, gen);
  const Tensor w = rand({5, 40}, gen);
  const Tensor t = from_vector<int64_t>({3, 0, -100, 39, 7, 7}, {6});
  // Held: the caller's logits must read the same after backward.
  const Tensor h1 = h0.clone().set_requires_grad();
  const Tensor held = matmul(h1, w);
  const std::vector<float> before = held.to_vector<float>();
  cross_entropy(held, t, -100, 0.1).backward();
  CHECK(held.to_vector<float>() == before);
  // A temporary, as the trainer passes the model's output: its memory takes the gradient,
  // which must be the same.
  const Tensor h2 = h0.clone().set_requires_grad();
  cross_entropy(matmul(h2, w), t, -100, 0.1).backward();
  CHECK(max_abs_diff(h2.grad(), h1.grad()) == 0);
}

TEST_CASE("cross_entropy: every row ignored gives NaN for mean (as PyTorch), 0 for sum") {
  Tensor x = ones({2, 3}, DType::F64).set_requires_grad();
  const Tensor t = full({2}, -100.0, DType::I64);
  const Tensor loss = cross_entropy(x, t);
  CHECK(std::isnan(loss.item<double>()));
  loss.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>(6, 0.0));  // zeros, not NaN
  CHECK(cross_entropy(x.detach(), t, -100, 0.0, "sum").item<double>() == 0.0);
}

TEST_CASE("cross_entropy errors name the op, the operands and the rule") {
  check_error([] { cross_entropy(zeros({4, 10}), zeros({5}, DType::I64)); },
              "cross_entropy: logits [4,10] and target [5]: target must have logits' shape "
              "without the last (class) dim, [4]");
  check_error([] { cross_entropy(zeros({2, 3, 10}), zeros({3, 2}, DType::I64)); },
              "cross_entropy: logits [2,3,10] and target [3,2]");
  check_error([] { cross_entropy(zeros({4, 10}), zeros({4})); },
              "cross_entropy: target float32 [4]: expected int64 or int32 class indices");
  check_error([] { cross_entropy(zeros({4, 10}, DType::I64), zeros({4}, DType::I64)); },
              "cross_entropy: int64 [4,10]: expected a floating-point tensor");
  check_error([] { cross_entropy(scalar(1.0), zeros({}, DType::I64)); },
              "cross_entropy: logits float32 []: expected at least one dim (the classes, last)");
  check_error([] { cross_entropy(zeros({4, 10}), zeros({4}, DType::I64), -100, 1.5); },
              "cross_entropy: label_smoothing 1.5: expected a value in [0, 1]");
  check_error([] { cross_entropy(zeros({4, 10}), zeros({4}, DType::I64), -100, 0.0, "avg"); },
              "cross_entropy: reduction \"avg\": expected \"mean\", \"sum\" or \"none\"");
  check_error([] { cross_entropy(zeros({4, 10}), from_vector<int64_t>({1, 2, 10, 3}, {4})); },
              "cross_entropy: target 10 at row 2 (of 4) is out of range for V = 10 classes; "
              "expected 0 <= target < 10 or ignore_index (-100)");
  check_error([] { cross_entropy(zeros({2, 5}), from_vector<int32_t>({-1, 2}, {2})); },
              "cross_entropy: target -1 at row 0 (of 2) is out of range for V = 5 classes");
  // -100 is only special while it is the ignore_index.
  check_error([] { cross_entropy(zeros({2, 5}), from_vector<int64_t>({-100, 2}, {2}), 0); },
              "cross_entropy: target -100 at row 0 (of 2) is out of range for V = 5 classes; "
              "expected 0 <= target < 5 or ignore_index (0)");
}

}  // namespace
}  // namespace loom::test
