// Dropout: inverted scaling, reproducible masks, gradient = mask, eval identity; the fused
// op equals x * fill_bernoulli(...) bit for bit and keeps only a bit mask for the backward.
#include "common/op_spec.h"
#include "kernels/dropout.h"
#include "kernels/storage.h"

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
  CHECK(gen.offset == 25000);  // one Philox counter (four words) per four elements
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

// The mask kernels/dropout.h defines, element by element from the Philox function itself.
Tensor reference_mask(const Dims& shape, uint64_t seed, uint64_t first, double p) {
  const int64_t n = shape.numel();
  std::vector<float> m(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t w = kernels::philox_word(first + uint64_t(i / 4), seed, int(i % 4));
    m[size_t(i)] = double(w) * 0x1p-32 < 1.0 - p ? float(1.0 / (1.0 - p)) : 0.0f;
  }
  return from_vector(m, shape);
}

TEST_CASE("dropout is x * its Philox mask bit for bit, forward and backward") {
  Generator init(21);
  // 1000 + 13 elements: the last keep word and Philox block are partial; the transpose
  // makes x strided.
  // The second offset makes the low counter word wrap inside the tensor (the vector kernel
  // carries into the high word itself).
  for (const uint64_t first : {uint64_t(64), (uint64_t(1) << 32) - 40})
    for (const Tensor& x0 : {rand({1013}, init), rand({29, 37}, init).transpose(0, 1)}) {
      INFO("first counter ", first);
      const Tensor x = x0.detach().set_requires_grad();
      const Tensor grad_y = rand(x.sizes(), init);
      Generator gen(123, first);
      const Tensor y = dropout(x, 0.35, true, gen);
      CHECK(gen.offset == first + (x.numel() + 3) / 4);
      sum(y * grad_y).backward();
      const Tensor mask = reference_mask(x.sizes(), 123, first, 0.35);
      NoGrad no_grad;
      CHECK(max_abs_diff(y, x * mask) == 0);
      CHECK(max_abs_diff(x.grad(), grad_y * mask) == 0);
    }
}

TEST_CASE("dropout keeps one bit per element for the backward, not its input or a mask") {
  const int64_t n = 4096;  // float32: 16 KiB; its keep bits: 128 words, 512 bytes
  Generator init(3);
  Tensor x = rand({n}, init).set_requires_grad();
  Tensor h = x * 2.0;  // a non-leaf input that only dropout could keep alive
  Generator gen(9);
  auto allocated = [] { return int64_t(kernels::cpu_allocator_stats().allocated_bytes); };
  const int64_t before = allocated();
  Tensor y = dropout(h, 0.5, true, gen);
  CHECK(allocated() - before == n * 4 + 512);
  const int64_t with_h = allocated();
  h = Tensor();  // neither dropout nor the scalar product saved it: freed now
  CHECK(with_h - allocated() == n * 4);
  sum(y).backward();
  Generator again(9);
  const Tensor expected = dropout(full({n}, 2.0), 0.5, true, again);
  CHECK(max_abs_diff(x.grad(), expected) == 0);
}

TEST_CASE("relu_dropout: gradient check (fixed mask: the generator is re-seeded per call)") {
  OpSpec spec{.name = "relu_dropout", .shapes = {{5, 7}},
              .op = [](const Tensors& in) {
                Generator gen(6);
                return relu_dropout(in[0], 0.4, true, gen) * in[0];
              }};
  check_op(spec);
}

TEST_CASE("relu_dropout equals dropout(relu(x)) bit for bit and keeps only its output") {
  Generator init(22);
  // Zeros included (relu'(0) = 0 on both sides); the transpose makes x strided.
  Tensor with_zeros = rand({1013}, init) * 2.0 - 1.0;
  with_zeros = where(gt(with_zeros, full({}, 0.8)), zeros({}), with_zeros);
  for (const Tensor& x0 : {with_zeros, (rand({29, 37}, init) - 0.5).transpose(0, 1)}) {
    const Tensor grad_y = rand(x0.sizes(), init);
    const Tensor xa = x0.detach().set_requires_grad(), xb = x0.detach().set_requires_grad();
    Generator ga(5, 32), gb(5, 32);
    // One backward at a time: backward consumes the whole tape.
    const Tensor ya = relu_dropout(xa, 0.3, true, ga);
    sum(ya * grad_y).backward();
    const Tensor yb = dropout(relu(xb), 0.3, true, gb);
    sum(yb * grad_y).backward();
    CHECK(max_abs_diff(ya, yb) == 0);
    CHECK(max_abs_diff(xa.grad(), xb.grad()) == 0);
    CHECK(ga.offset == gb.offset);
  }
  Generator g(1);
  const Tensor x = rand({8}, g).set_requires_grad();
  CHECK(max_abs_diff(relu_dropout(x, 0.3, false, g), relu(x)) == 0);  // eval: relu alone
  clear_tape();

  const int64_t n = 4096;
  auto allocated = [] { return int64_t(kernels::cpu_allocator_stats().allocated_bytes); };
  Tensor h = sum(x) * ones({n});  // a non-leaf input
  const int64_t before = allocated();
  const Tensor y = relu_dropout(h, 0.5, true, g);
  CHECK(allocated() - before == n * 4);  // y alone: no mask, no bits
  h = Tensor();
  CHECK(allocated() == before);  // h freed (relu_dropout did not keep it): y took its place
  clear_tape();
}

}  // namespace
}  // namespace loom::test
