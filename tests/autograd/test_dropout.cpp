// Dropout: inverted scaling, reproducible masks, gradient = mask, eval identity.
#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

TEST_CASE("dropout keeps about 1-p of the values, scaled by 1/(1-p)") {
  Generator gen(42);
  const Tensor y = dropout(ones({100000}), 0.25, true, gen);
  const auto v = y.to_vector<float>();
  int64_t kept = 0, other = 0;
  for (float e : v) {
    kept += e == float(1.0 / 0.75);
    other += e != 0.0f && e != float(1.0 / 0.75);
  }
  CHECK(other == 0);
  CHECK(double(kept) / double(v.size()) == doctest::Approx(0.75).epsilon(0.01));
  CHECK(gen.offset == 100000);  // the generator advanced by one counter per element
}

TEST_CASE("dropout masks are reproducible from (seed, offset)") {
  Generator a(7), b(7), c(8);
  const auto ya = dropout(ones({1000}), 0.5, true, a).to_vector<float>();
  const auto yb = dropout(ones({1000}), 0.5, true, b).to_vector<float>();
  const auto yc = dropout(ones({1000}), 0.5, true, c).to_vector<float>();
  CHECK(ya == yb);
  CHECK(ya != yc);
  const auto ya2 = dropout(ones({1000}), 0.5, true, a).to_vector<float>();
  CHECK(ya2 != ya);  // the next call continues the stream
}

TEST_CASE("dropout gradient is the mask, eval mode and p = 0 are the identity") {
  Generator gen(3);
  Tensor x = rand({4, 5}, gen, DType::F64).set_requires_grad();
  Generator g1(99), g2(99);
  const Tensor y = dropout(x, 0.3, true, g1);
  sum(y).backward();
  const Tensor expected = dropout(ones({4, 5}, DType::F64), 0.3, true, g2);
  CHECK(max_abs_diff(x.grad(), expected) == 0);
  CHECK(dropout(x, 0.3, false, gen).impl() == x.impl());
  CHECK(dropout(x, 0.0, true, gen).impl() == x.impl());
  CHECK(sum(dropout(x, 1.0, true, gen)).item<double>() == 0);
  clear_tape();
  check_error([&] { dropout(x, 1.5, true, gen); }, "dropout: p = 1.5: expected a probability in [0, 1]");
}

TEST_CASE("dropout: gradient check (fixed mask: the generator is re-seeded per call)") {
  OpSpec spec{.name = "dropout", .shapes = {{3, 4}},
              .op = [](const Tensors& in) {
                Generator gen(5);
                return dropout(in[0], 0.4, true, gen) * in[0];
              }};
  check_op(spec);
}

}  // namespace
}  // namespace loom::test
