// matmul, bmm and linear: forward against a naive triple loop, gradchecks (plain,
// broadcast batch dims, 1-D promotion, non-contiguous inputs), no copies for transposed
// operands, and error messages.
#include "kernels/storage.h"
#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// torch.matmul by definition, in double: promote 1-D operands, broadcast the batch dims,
// sum over k, drop the promoted dims.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  const Dims as = a.dim() == 1 ? Dims{1, a.size(0)} : a.sizes();
  const Dims bs = b.dim() == 1 ? Dims{b.size(0), 1} : b.sizes();
  const int64_t M = as[as.size() - 2], K = as[as.size() - 1], N = bs[bs.size() - 1];
  const Dims batch =
      broadcast_shapes("naive", Dims(as.begin(), as.end() - 2), Dims(bs.begin(), bs.end() - 2));
  const std::vector<double> av = a.to(DType::F64).to_vector<double>();
  const std::vector<double> bv = b.to(DType::F64).to_vector<double>();
  // Offset of batch element `i` in an operand with batch dims `own` (right-aligned).
  auto batch_offset = [&](int64_t i, const Dims& own, int64_t matrix) {
    int64_t off = 0, stride = matrix;
    for (int d = batch.size() - 1, od = own.size() - 3; d >= 0; --d, --od) {
      const int64_t idx = i % batch[d];
      i /= batch[d];
      if (od < 0) continue;
      if (own[od] != 1) off += idx * stride;
      stride *= own[od];
    }
    return off;
  };
  std::vector<double> out;
  for (int64_t i = 0; i < batch.numel(); ++i) {
    const int64_t oa = batch_offset(i, as, M * K), ob = batch_offset(i, bs, K * N);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += av[size_t(oa + m * K + k)] * bv[size_t(ob + k * N + n)];
        out.push_back(acc);
      }
  }
  Dims shape = batch;
  if (a.dim() > 1) shape.push_back(M);
  if (b.dim() > 1) shape.push_back(N);
  return from_vector(out, shape).to(a.dtype());
}

// y = x W^T + bias, rows of x by definition.
Tensor naive_linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
  const std::vector<double> xv = x.to(DType::F64).to_vector<double>();
  const std::vector<double> wv = w.to(DType::F64).to_vector<double>();
  const std::vector<double> bv =
      bias.defined() ? bias.to(DType::F64).to_vector<double>() : std::vector<double>(size_t(out));
  std::vector<double> y;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bv[size_t(o)];
      for (int64_t i = 0; i < in; ++i) acc += xv[size_t(r * in + i)] * wv[size_t(o * in + i)];
      y.push_back(acc);
    }
  Dims shape = x.sizes();
  shape[shape.size() - 1] = out;
  return from_vector(y, shape).to(x.dtype());
}

OpSpec matmul_spec(Dims a, Dims b) {
  return {.name = loom::detail::cat("matmul ", a, " x ", b),
          .shapes = {a, b},
          .op = [](const Tensors& in) { return matmul(in[0], in[1]); },
          .reference = [](const Tensors& in) { return naive_matmul(in[0], in[1]); }};
}

TEST_CASE("matmul: values and gradients, batched, broadcast and 1-D operands") {
  const std::vector<std::pair<Dims, Dims>> shapes = {
      {{3, 4}, {4, 5}},           // 2-D x 2-D
      {{2, 3, 4}, {2, 4, 5}},     // batched
      {{2, 1, 3, 4}, {3, 4, 5}},  // batch dims broadcast both ways
      {{2, 3, 4}, {4, 5}},        // shared right matrix (one GEMM over 2*3 rows)
      {{3, 4}, {2, 4, 5}},        // shared left matrix
      {{4}, {4}},                 // dot product -> 0-dim
      {{4}, {4, 5}},              // vector x matrix
      {{3, 4}, {4}},              // matrix x vector
      {{4}, {2, 4, 5}},           // vector x batch
      {{2, 3, 4}, {4}},           // batch x vector
      {{1, 4}, {4, 1}},           // size-1 M and N
      {{3, 1}, {1, 5}},           // K = 1 (outer product)
  };
  for (const auto& [a, b] : shapes) check_op(matmul_spec(a, b));
}

TEST_CASE("bmm and linear: values and gradients") {
  check_op({.name = "bmm",
            .shapes = {{2, 3, 4}, {2, 4, 5}},
            .op = [](const Tensors& in) { return bmm(in[0], in[1]); },
            .reference = [](const Tensors& in) { return naive_matmul(in[0], in[1]); }});
  const std::vector<Dims> x_shapes = {{3, 4}, {2, 3, 4}, {4}};
  for (const Dims& xs : x_shapes) {
    check_op({.name = loom::detail::cat("linear ", xs, " with bias"),
              .shapes = {xs, {5, 4}, {5}},
              .op = [](const Tensors& in) { return linear(in[0], in[1], in[2]); },
              .reference = [](const Tensors& in) { return naive_linear(in[0], in[1], in[2]); }});
    check_op({.name = loom::detail::cat("linear ", xs, " without bias"),
              .shapes = {xs, {5, 4}},
              .op = [](const Tensors& in) { return linear(in[0], in[1]); },
              .reference = [](const Tensors& in) { return naive_linear(in[0], in[1], Tensor()); }});
  }
}

TEST_CASE("matmul and linear: exact small values") {
  const Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  CHECK(matmul(a, b).to_vector<float>() == std::vector<float>{4, 5, 10, 11});
  CHECK(matmul(a.transpose(0, 1), a).to_vector<float>() ==
        std::vector<float>{17, 22, 27, 22, 29, 36, 27, 36, 45});
  CHECK(matmul(from_vector<float>({1, 2, 3}, {3}), from_vector<float>({4, 5, 6}, {3}))
            .item<float>() == 32);
  const Tensor bias = from_vector<float>({10, 20}, {2});
  CHECK(linear(a, b.transpose(0, 1), bias).to_vector<float>() ==
        std::vector<float>{14, 25, 20, 31});
}

// Tensor storages allocated so far (each one a copy or a result).
uint64_t allocations() {
  const kernels::AllocatorStats s = kernels::cpu_allocator_stats();
  return s.system_allocs + s.reuses;
}

TEST_CASE("matmul and linear: transposed operands and gradients are not copied") {
  kernels::Generator gen(5);
  Tensor a = randn({64, 32}, gen).set_requires_grad();
  Tensor b = randn({32, 48}, gen).set_requires_grad();
  const Tensor bt = randn({48, 32}, gen);
  uint64_t before = allocations();
  {
    NoGrad no_grad;
    const Tensor c = matmul(a, bt.transpose(0, 1));  // bt^T: a view BLAS reads transposed
    CHECK(allocations() - before == 1);              // the result only
  }
  const Tensor c = matmul(a, b);
  const Tensor g = ones_like(c);
  before = allocations();
  c.backward(g);                       // g @ b^T and a^T @ g on transposed views
  CHECK(allocations() - before == 2);  // grad_a and grad_b only
  CHECK(max_abs_diff(a.grad(), matmul(g, b.transpose(0, 1))) < 1e-4);
  CHECK(max_abs_diff(b.grad(), matmul(a.transpose(0, 1), g)) < 1e-4);

  Tensor x = randn({2, 16, 32}, gen).set_requires_grad();
  Tensor w = randn({8, 32}, gen).set_requires_grad();
  Tensor bias = randn({8}, gen).set_requires_grad();
  before = allocations();
  const Tensor y = linear(x, w, bias);  // x viewed as (32, 32) rows, W^T a view
  CHECK(allocations() - before == 1);
  const Tensor gy = ones_like(y);
  before = allocations();
  y.backward(gy);
  CHECK(allocations() - before == 3);  // grad_x, grad_w, grad_b
}

TEST_CASE("linear: 3-D input is one GEMM and matches matmul + bias") {
  kernels::Generator gen(9);
  Tensor x = randn({2, 5, 8}, gen).set_requires_grad();
  Tensor w = randn({3, 8}, gen).set_requires_grad();
  Tensor bias = randn({3}, gen).set_requires_grad();
  const Tensor y = linear(x, w, bias);
  CHECK(y.sizes() == Dims{2, 5, 3});
  NoGrad no_grad;
  CHECK(max_abs_diff(y, matmul(x, w.transpose(0, 1)) + bias) < 1e-5);
}

TEST_CASE("matmul, bmm and linear errors name the op and the shapes") {
  check_error(
      [] {
        matmul(ones({32, 64}), ones({32, 64}));
      },
      "matmul: [32,64] x [32,64]: inner dimensions 64 and 32 differ");
  check_error([] { matmul(ones({3}), ones({4})); },
              "matmul: [3] x [4]: inner dimensions 3 and 4 differ");
  check_error(
      [] {
        matmul(ones({2, 3, 4}), ones({5, 4, 5}));
      },
      "matmul: [2,3,4] x [5,4,5]: batch dimensions [2] and [5] do not broadcast");
  check_error([] { matmul(ones({}), ones({3})); },
              "matmul: [] x [3]: both operands need at least 1 dimension");
  check_error(
      [] {
        matmul(ones({2, 3}), ones({3, 2}, DType::F64));
      },
      "matmul: float32 [2,3] and float64 [3,2]: dtypes differ");
  check_error([] { matmul(arange(4), arange(4)); },
              "matmul: int64 [4]: expected a floating-point tensor");
  check_error(
      [] {
        bmm(ones({2, 3}), ones({2, 3, 4}));
      },
      "bmm: [2,3] x [2,3,4]: expected two 3-D tensors [B, M, K] and [B, K, N]");
  check_error(
      [] {
        bmm(ones({2, 3, 4}), ones({3, 4, 5}));
      },
      "bmm: [2,3,4] x [3,4,5]: batch sizes 2 and 3 differ");
  check_error(
      [] {
        linear(ones({4, 128, 512}), ones({768, 768}));
      },
      "linear: input [4,128,512], weight [768,768]: input last dim 512 != in_features 768");
  check_error(
      [] {
        linear(ones({2, 4}), ones({4}));
      },
      "linear: input [2,4], weight [4]: expected input [..., in_features] and weight "
      "[out_features, in_features]");
  check_error(
      [] {
        linear(ones({2, 4}), ones({5, 4}), ones({4}));
      },
      "linear: weight [5,4], bias [4]: bias must be [out_features] = [5]");
  check_error(
      [] {
        linear(ones({2, 4}), ones({5, 4}), ones({5}, DType::F64));
      },
      "linear: float32 [2,4] and float64 [5]: dtypes differ");
}

}  // namespace
}  // namespace loom::test
