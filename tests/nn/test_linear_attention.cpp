// Linear attention (nn/linear_attention.h): the chunked causal form and the non-causal form
// against the quadratic formula φ(q) φ(k)ᵀ v / rowsum written out with a (T, S) mask, for
// several chunk sizes, GQA, padding and Dv != D, with gradchecks (contiguous and strided);
// decoding in pieces through the state equals one pass; the feature map elu + 1.
#include <doctest/doctest.h>

#include "common/op_spec.h"
#include "nn/linear_attention.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// (B, KV, S, X) -> (B, KV * G, S, X).
Tensor repeat(const Tensor& x, int64_t G) {
  const int64_t B = x.size(0), KV = x.size(1), S = x.size(2), X = x.size(3);
  return x.unsqueeze(2).expand({B, KV, G, S, X}).reshape({B, KV * G, S, X});
}

// The quadratic form: A = φq φkᵀ, zeroed above the diagonal (causal) and at masked keys,
// out = A v / (rowsum(A) + eps).
Tensor quadratic(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                 const Tensor& key_mask, double eps = 1e-6) {
  const int64_t G = q.size(1) / k.size(1), T = q.size(2), S = k.size(2);
  Tensor a = matmul(q, repeat(k, G).transpose(2, 3));  // (B, H, T, S)
  if (causal) {
    std::vector<double> tril;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j) tril.push_back(j <= i ? 1.0 : 0.0);
    a = a * from_vector(tril, {T, S}).to(q.dtype());
  }
  if (key_mask.defined()) a = a * key_mask.to(q.dtype());
  return matmul(a, repeat(v, G)) / (sum(a, {3}, true) + eps);
}

struct LinearCase {
  const char* name;
  int64_t B, H, KV, T, D, Dv;
  bool causal;
  int64_t chunk;
  Tensor mask;  // (B, 1, 1, T) bool or undefined
};

OpSpec linear_spec(const LinearCase& c) {
  return {
      .name = c.name,
      .op =
          [c](const Tensors& in) {
            return nn::linear_attention(in[0], in[1], in[2],
                                        {.causal = c.causal, .key_mask = c.mask, .chunk = c.chunk});
          },
      .reference =
          [c](const Tensors& in) { return quadratic(in[0], in[1], in[2], c.causal, c.mask); },
      .make_inputs =
          [c](DType dtype) {
            Generator gen(41);
            // Feature-mapped queries and keys are positive; values any sign.
            auto positive = [&](const Dims& s) {
              return (rand(s, gen, DType::F64) + 0.1).to(dtype);
            };
            return Tensors{positive({c.B, c.H, c.T, c.D}), positive({c.B, c.KV, c.T, c.D}),
                           (rand({c.B, c.KV, c.T, c.Dv}, gen, DType::F64) * 2.0 - 1.0).to(dtype)};
          }};
}

Tensor padding_mask() {
  return ne(from_vector<int64_t>({1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1}, {2, 1, 1, 7}),
            zeros({}, DType::I64));
}

TEST_CASE("linear attention: equals the quadratic formula, gradchecks") {
  const std::vector<LinearCase> cases = {
      {"non-causal", 2, 2, 2, 5, 3, 3, false, 64},
      {"non-causal, padding, GQA, Dv != D", 2, 4, 2, 7, 3, 2, false, 64, padding_mask()},
      {"causal, one chunk", 2, 2, 2, 5, 3, 3, true, 64},
      {"causal, chunks of 3 over 7", 2, 2, 1, 7, 3, 4, true, 3},
      {"causal, chunks of 1", 1, 2, 2, 4, 2, 2, true, 1},
      {"causal, chunks of 2, padding", 2, 2, 2, 7, 3, 3, true, 2, padding_mask()},
  };
  for (const LinearCase& c : cases) check_op(linear_spec(c));
}

TEST_CASE("linear attention: decoding in pieces through the state equals one pass") {
  Generator gen(43);
  const Tensor q = rand({2, 4, 9, 3}, gen, DType::F64) + 0.1,
               k = rand({2, 2, 9, 3}, gen, DType::F64) + 0.1;
  const Tensor v = randn({2, 2, 9, 5}, gen, DType::F64);
  NoGrad no_grad;
  const Tensor whole = nn::linear_attention(q, k, v, {.causal = true, .chunk = 4});
  nn::LinearAttentionState state;
  std::vector<Tensor> parts;
  for (const auto& [t0, t1] : std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {3, 4}, {4, 9}})
    parts.push_back(nn::linear_attention(q.slice(2, t0, t1), k.slice(2, t0, t1), v.slice(2, t0, t1),
                                         {.causal = true, .chunk = 2, .state = &state}));
  CHECK(max_abs_diff(concat(parts, 2), whole) < 1e-12);
  CHECK(state.kv.sizes() == Dims{2, 4, 3, 5});  // the state does not grow with the length
  CHECK(state.z.sizes() == Dims{2, 4, 3});
}

TEST_CASE("linear attention: elu + 1 feature map values and gradient") {
  const Tensor x = from_vector<double>({-2.0, -0.5, 0.0, 0.5, 3.0}, {5});
  const auto y = nn::elu_feature_map(x).to_vector<double>();
  const std::vector<double> want = {std::exp(-2.0), std::exp(-0.5), 1.0, 1.5, 4.0};
  for (size_t i = 0; i < want.size(); ++i) CHECK(y[i] == doctest::Approx(want[i]).epsilon(1e-15));
  check_op({.name = "elu_feature_map",
            .shapes = {{3, 4}},
            .op = [](const Tensors& in) { return nn::elu_feature_map(in[0]); },
            .reference =
                [](const Tensors& in) {
                  return where(gt(in[0], zeros({}, in[0].dtype())), in[0] + 1.0, exp(in[0]));
                },
            .low = -2.0,
            .high = 2.0});
}

TEST_CASE("linear attention: errors name the shapes and the rule") {
  const Tensor q = ones({1, 2, 3, 4}), k = ones({1, 2, 5, 4});
  check_error([&] { nn::linear_attention(q, k, k, {.causal = true}); },
              "linear_attention: causal with q [1,2,3,4] and k [1,2,5,4]: queries and keys must be "
              "the same tokens (T == S)");
  check_error(
      [&] {
        nn::linear_attention(q, ones({1, 3, 3, 4}), ones({1, 3, 3, 4}));
      },
      "expected q (B, H, T, D), k (B, KV, S, D), v (B, KV, S, Dv) with H % KV == 0");
}

}  // namespace
}  // namespace loom::test
