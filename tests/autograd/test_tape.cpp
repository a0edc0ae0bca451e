// The tape: gradient routing and accumulation, NoGrad, release of saved tensors,
// consumed tapes, in-place writes after saving, and leaf rules.
#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

TEST_CASE("shared subexpressions accumulate gradients") {
  Tensor x = from_vector<double>({1, -2, 3}, {3}).set_requires_grad();
  Tensor y = x * x + x;  // x used three times
  sum(y).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3, -3, 7});  // 2x + 1

  Tensor a = from_vector<double>({2}, {1}).set_requires_grad();
  Tensor b = from_vector<double>({5}, {1}).set_requires_grad();
  Tensor z = a * b;                 // z feeds two consumers
  Tensor out = z + z * z;           // d/dz = 1 + 2z = 21
  out.backward(ones_like(out));
  CHECK(a.grad().item<double>() == doctest::Approx(21 * 5));
  CHECK(b.grad().item<double>() == doctest::Approx(21 * 2));
}

TEST_CASE("a leaf's gradient accumulates over backward passes until zero_grad") {
  Tensor x = from_vector<double>({1, 2}, {2}).set_requires_grad();
  sum(x * 3.0).backward();
  sum(x * 3.0).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 6});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("gradients of two leaves never share memory") {
  Tensor a = ones({3}).set_requires_grad();
  Tensor b = ones({3}).set_requires_grad();
  sum(a + b).backward();  // add's backward hands the same tensor to both inputs
  CHECK(a.grad().storage() != b.grad().storage());
  {
    NoGrad no_grad;
    a.grad().mul_(5.0);  // e.g. clipping in place
  }
  CHECK(b.grad().to_vector<float>() == std::vector<float>{1, 1, 1});
}

TEST_CASE("NoGrad records nothing") {
  Tensor x = ones({2, 2}).set_requires_grad();
  {
    NoGrad no_grad;
    Tensor y = exp(x) * 2.0 + x;
    CHECK_FALSE(y.requires_grad());
    CHECK(tape_size() == 0);
  }
  CHECK(grad_mode());
  Tensor y = exp(x);
  CHECK(y.requires_grad());
  CHECK(tape_size() == 1);
  clear_tape();
  CHECK_FALSE(y.requires_grad());  // its node is gone: it is a constant now
}

TEST_CASE("ops on tensors that do not require grad record nothing") {
  Tensor y = exp(ones({2})) + ones({2});
  CHECK(tape_size() == 0);
  CHECK_FALSE(y.requires_grad());
}

TEST_CASE("saved tensors are released by backward, node by node") {
  const auto before = kernels::cpu_allocator_stats().allocated_bytes;
  Tensor x = ones({1000}, DType::F64).set_requires_grad();
  std::weak_ptr<kernels::Storage> hidden;
  Tensor loss;
  {
    Tensor h = exp(x);  // exp saves its output h
    hidden = h.storage();
    loss = sum(h * 2.0);  // mul by a scalar saves nothing of h
  }
  CHECK_FALSE(hidden.expired());  // only the tape keeps h alive now
  loss.backward();
  CHECK(hidden.expired());
  CHECK(tape_size() == 0);
  x = Tensor();
  loss = Tensor();
  CHECK(kernels::cpu_allocator_stats().allocated_bytes == before);
}

TEST_CASE("backward on a consumed tape is a clear error") {
  Tensor x = ones({2}).set_requires_grad();
  Tensor loss = sum(x * x);
  loss.backward();
  check_error([&] { loss.backward(); }, "the tape that recorded this tensor was already consumed");
}

TEST_CASE("backward needs a scalar or an explicit gradient") {
  Tensor x = ones({2}).set_requires_grad();
  Tensor y = x * 2.0;
  check_error([&] { y.backward(); }, "backward: [2]: a gradient can be created implicitly only");
  y.backward(from_vector<float>({1, 10}, {2}));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2, 20});
  check_error([] { sum(ones({2})).backward(); }, "tensor does not require grad");
}

TEST_CASE("modifying a saved tensor in place before backward is an error") {
  Tensor x = ones({3}).set_requires_grad();
  Tensor y = exp(x);  // saves y
  Tensor loss = sum(y * y);
  {
    NoGrad no_grad;
    y.fill_(0.0);
  }
  check_error([&] { loss.backward(); }, "a tensor saved for backward was modified in place");
  CHECK(tape_size() == 0);  // the failed backward still cleared the tape
}

TEST_CASE("leaf rules") {
  Tensor x = ones({2}).set_requires_grad();
  Tensor y = x * 2.0;
  check_error([&] { y.set_requires_grad(); }, "only leaf tensors can be marked");
  check_error([] { arange(3).set_requires_grad(); },
              "set_requires_grad: int64 [3]: only floating-point tensors can require grad");
  check_error([&] { x.fill_(1.0); }, "fill_: float32 [2]: in-place write to a tensor that requires grad");
  Tensor d = y.detach();
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.storage() == y.storage());
  clear_tape();
}

TEST_CASE("gradcheck itself detects a wrong backward") {
  // A deliberately wrong op: forward x^2, backward claims 3x.
  struct WrongBackward final : Node {
    SavedTensor x;
    explicit WrongBackward(Tensor x) : x(std::move(x)) {}
    const char* name() const override { return "wrong"; }
    std::vector<Tensor> backward(const Tensor& g) override { return {g * x.get("wrong") * 3.0}; }
  };
  auto wrong_square = [](const Tensors& in) {
    Tensor y;
    {
      NoGrad no_grad;
      y = in[0] * in[0];
    }
    record<WrongBackward>(y, {&in[0]}, in[0]);
    return y;
  };
  Tensor x = from_vector<double>({0.5, -1.5}, {2}).set_requires_grad();
  const GradcheckResult r = gradcheck(wrong_square, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("analytic") != std::string::npos);
}

}  // namespace
}  // namespace loom::test
