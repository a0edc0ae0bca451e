// scaled_dot_product_attention: forward against the unfused composite (matmul, scale, bias,
// where(-inf), softmax, dropout, matmul; k and v repeated along heads for GQA/MQA) and
// gradchecks of q, k, v for masks, causal (T == S and end-aligned T < S), ALiBi bias,
// MHA/GQA/MQA and a custom scale; fully masked rows; strided inputs; dropout
// reproducibility; thread-count independence; error messages.
#include <cmath>

#include "common/attention_reference.h"
#include "common/op_spec.h"
#include "kernels/random.h"

namespace loom::test {
namespace {

using namespace loom::ag;

struct Case {
  const char* name;
  int64_t B, H, KV, T, S, D;
  Tensor mask, bias;  // mask: bool; bias: float64, converted to the spec's dtype
  bool causal = false;
  double scale = 0.0;
};

// q, k, v uniform in [-1, 1) (fixed seed), then the case's mask and bias where it has them.
Tensors case_inputs(const Case& c, DType dtype) {
  Generator gen(17);
  auto uniform = [&](const Dims& shape) {
    return (rand(shape, gen, DType::F64) * 2.0 - 1.0).to(dtype);
  };
  Tensors in = {uniform({c.B, c.H, c.T, c.D}), uniform({c.B, c.KV, c.S, c.D}),
                uniform({c.B, c.KV, c.S, c.D})};
  if (c.mask.defined()) in.push_back(c.mask);
  if (c.bias.defined()) in.push_back(c.bias.to(dtype));
  return in;
}

AttentionOptions options_of(const Case& c, const Tensors& in) {
  size_t next = 3;
  AttentionOptions opt{.causal = c.causal, .scale = c.scale};
  if (c.mask.defined()) opt.mask = in[next++];
  if (c.bias.defined()) opt.bias = in[next++];
  return opt;
}

OpSpec spec_of(const Case& c) {
  return {.name = c.name,
          .op =
              [c](const Tensors& in) {
                return scaled_dot_product_attention(in[0], in[1], in[2], options_of(c, in));
              },
          .reference =
              [c](const Tensors& in) { return composite(in[0], in[1], in[2], options_of(c, in)); },
          .differentiable = {true, true, true, false, false},
          .make_inputs = [c](DType dtype) { return case_inputs(c, dtype); }};
}

TEST_CASE("attention: forward equals the composite in f64 and f32, gradchecks of q, k, v") {
  Generator gen(3);
  const Tensor padding = bool_mask({1, 1, 0, 1, 0, 1, 0, 0}, {2, 1, 1, 4});     // (B, 1, 1, S)
  const Tensor rows = bool_mask({1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1}, {3, 4});  // (T, S)
  const std::vector<Case> cases = {
      {"MHA, no mask", 2, 2, 2, 3, 4, 3},
      {"padding mask (B,1,1,S)", 2, 2, 2, 3, 4, 3, padding},
      {"mask (T,S)", 2, 2, 2, 3, 4, 3, rows},
      {"causal T == S", 2, 2, 2, 4, 4, 3, {}, {}, true},
      {"causal T < S (end aligned)", 2, 2, 2, 2, 5, 3, {}, {}, true},
      {"ALiBi bias (1,H,T,S) + causal", 1, 4, 4, 3, 3, 2, {}, alibi_bias(4, 3, 3), true},
      {"bias (B,H,T,S)", 2, 2, 2, 3, 4, 3, {}, rand({2, 2, 3, 4}, gen, DType::F64) * 2.0},
      {"MQA (KV = 1)", 2, 4, 1, 3, 4, 3},
      {"GQA (H = 4, KV = 2)", 1, 4, 2, 3, 4, 3},
      {"custom scale", 2, 2, 2, 3, 4, 3, {}, {}, false, 0.7},
      {"GQA + padding + ALiBi + causal T < S", 2, 4, 2, 3, 4, 3, padding, alibi_bias(4, 3, 4), true,
       1.3},
      // T > 32: the causal kernel works in row chunks (Note [Causal row chunks]).
      {"GQA causal T = 34 < S = 36", 1, 2, 1, 34, 36, 2, {}, {}, true},
  };
  for (const Case& c : cases) check_op(spec_of(c));
}

TEST_CASE("attention: larger float32 and float64 blocks equal the composite") {
  Generator gen(5);
  const Tensor q = randn({2, 4, 48, 32}, gen, DType::F64),
               k = randn({2, 2, 64, 32}, gen, DType::F64);
  const Tensor v = randn({2, 2, 64, 32}, gen, DType::F64);
  const Tensor mask = gt(rand({2, 1, 1, 64}, gen, DType::F64), full({}, 0.2, DType::F64));
  NoGrad no_grad;
  for (DType dtype : {DType::F64, DType::F32}) {
    const AttentionOptions opt{
        .mask = mask, .bias = alibi_bias(4, 48, 64).to(dtype), .causal = true};
    const Tensor want = composite(q.to(dtype), k.to(dtype), v.to(dtype), opt);
    const Tensor got = scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), opt);
    CHECK(max_abs_diff(got, want) < (dtype == DType::F64 ? 1e-12 : 1e-5));
  }
}

TEST_CASE("attention: a query row that sees no key outputs zeros and gets zero gradients") {
  Generator gen(7);
  const Tensor q = rand({2, 2, 3, 4}, gen, DType::F64), k = rand({2, 2, 5, 4}, gen, DType::F64);
  const Tensor v = rand({2, 2, 5, 4}, gen, DType::F64), r = randn({2, 2, 3, 4}, gen, DType::F64);
  // Batch 1 masks every key: its outputs and all its gradients are zero, batch 0 is intact.
  const AttentionOptions opt{.mask = bool_mask({1, 0, 1, 1, 0, 0, 0, 0, 0, 0}, {2, 1, 1, 5})};
  const Tensors g = grads_of(
      [&](const Tensors& x) { return scaled_dot_product_attention(x[0], x[1], x[2], opt); },
      {q, k, v}, r);
  const Tensor y = [&] {
    NoGrad no_grad;
    return scaled_dot_product_attention(q, k, v, opt);
  }();
  CHECK(max_abs_diff(y.slice(0, 1, 2), zeros({1, 2, 3, 4}, DType::F64)) == 0);
  for (const Tensor& gi : g)
    CHECK(max_abs_diff(gi.slice(0, 1, 2), zeros_like(gi.slice(0, 1, 2))) == 0);
  {
    NoGrad no_grad;
    CHECK(max_abs_diff(y.slice(0, 0, 1), composite(q, k, v, opt).slice(0, 0, 1)) < 1e-12);
  }
  // Causal with T > S: queries i < T - S see no key (zeros, where PyTorch gives NaN).
  const Tensor q6 = rand({1, 2, 6, 4}, gen, DType::F64);
  const Tensor y6 = scaled_dot_product_attention(q6, k.slice(0, 0, 1).slice(2, 0, 4),
                                                 v.slice(0, 0, 1).slice(2, 0, 4), {.causal = true});
  CHECK(max_abs_diff(y6.slice(2, 0, 2), zeros({1, 2, 2, 4}, DType::F64)) == 0);
  CHECK(max_abs_diff(y6.slice(2, 2, 6),
                     composite(q6.slice(2, 2, 6), k.slice(0, 0, 1).slice(2, 0, 4),
                               v.slice(0, 0, 1).slice(2, 0, 4), {.causal = true})) < 1e-12);
  // No keys at all (S = 0): zeros; no queries (T = 0): an empty output, zero k/v gradients.
  const Tensors g0 =
      grads_of([&](const Tensors& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); },
               {q, zeros({2, 2, 0, 4}, DType::F64), zeros({2, 2, 0, 4}, DType::F64)}, r);
  CHECK(max_abs_diff(g0[0], zeros_like(q)) == 0);
  CHECK(max_abs_diff(scaled_dot_product_attention(q, k.slice(2, 0, 0), v.slice(2, 0, 0)),
                     zeros_like(q)) == 0);
  const Tensors gt0 =
      grads_of([&](const Tensors& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); },
               {q.slice(2, 0, 0), k, v}, zeros({2, 2, 0, 4}, DType::F64));
  CHECK(max_abs_diff(gt0[1], zeros_like(k)) == 0);
  CHECK(max_abs_diff(gt0[2], zeros_like(v)) == 0);
  clear_tape();
}

TEST_CASE("attention: GQA equals MHA with k and v repeated along heads (values and gradients)") {
  Generator gen(9);
  const Tensor q = randn({2, 6, 4, 8}, gen, DType::F64), k = randn({2, 2, 5, 8}, gen, DType::F64);
  const Tensor v = randn({2, 2, 5, 8}, gen, DType::F64), r = randn({2, 6, 4, 8}, gen, DType::F64);
  const AttentionOptions opt{.mask = bool_mask({1, 1, 0, 1, 1, 0, 1, 1, 1, 1}, {2, 1, 1, 5})};
  const Tensors gqa = grads_of(
      [&](const Tensors& x) { return scaled_dot_product_attention(x[0], x[1], x[2], opt); },
      {q, k, v}, r);
  const Tensors mha = grads_of(
      [&](const Tensors& x) {
        return scaled_dot_product_attention(x[0], repeat_heads(x[1], 3), repeat_heads(x[2], 3),
                                            opt);
      },
      {q, k, v}, r);
  for (size_t i = 0; i < 3; ++i) CHECK(max_abs_diff(gqa[i], mha[i]) < 1e-12);
  NoGrad no_grad;
  CHECK(max_abs_diff(scaled_dot_product_attention(q, k, v, opt),
                     scaled_dot_product_attention(q, repeat_heads(k, 3), repeat_heads(v, 3), opt)) <
        1e-12);
}

TEST_CASE("attention: (B, T, H, D) -> (B, H, T, D) views give the results of contiguous copies") {
  Generator gen(11);
  // Projections as the attention module lays them out: (B, T, H * D) viewed (B, T, H, D).
  const Tensor qp = randn({2, 5, 4 * 8}, gen, DType::F64),
               kp = randn({2, 6, 2 * 8}, gen, DType::F64);
  const Tensor vp = randn({2, 6, 2 * 8}, gen, DType::F64), r = randn({2, 4, 5, 8}, gen, DType::F64);
  auto heads = [](const Tensor& x, int64_t n) {
    return x.view({x.size(0), x.size(1), n, 8}).transpose(1, 2);
  };
  const AttentionOptions opt{.causal = true};
  auto from_projections = [&](const Tensors& x) {
    return scaled_dot_product_attention(heads(x[0], 4), heads(x[1], 2), heads(x[2], 2), opt);
  };
  auto from_copies = [&](const Tensors& x) {
    return scaled_dot_product_attention(heads(x[0], 4).contiguous(), heads(x[1], 2).contiguous(),
                                        heads(x[2], 2).contiguous(), opt);
  };
  const Tensors strided = grads_of(from_projections, {qp, kp, vp}, r);
  const Tensors copied = grads_of(from_copies, {qp, kp, vp}, r);
  for (size_t i = 0; i < 3; ++i) CHECK(max_abs_diff(strided[i], copied[i]) < 1e-13);
  Tensors leaves = {qp.detach().set_requires_grad(), kp.detach().set_requires_grad(),
                    vp.detach().set_requires_grad()};
  const GradcheckResult g = gradcheck(from_projections, leaves);
  INFO(g.message);
  CHECK(g.ok);
  // On the cpu the output is written as the heads of a (B, T, H * D) buffer, so merging the
  // heads back into rows (transpose, reshape) is a view, not a copy.
  const Tensor y = from_projections({qp, kp, vp});
  CHECK(y.transpose(1, 2).is_contiguous());
  NoGrad no_grad;  // not recording: P lives in scratch instead of a saved tensor
  CHECK(max_abs_diff(from_projections({qp, kp, vp}),
                     composite(heads(qp, 4), heads(kp, 2), heads(vp, 2), opt)) < 1e-12);
}

TEST_CASE("attention dropout: reproducible, equal to the composite's dropout, p = 0 is none") {
  Generator init(13);
  const Tensor q = randn({2, 2, 4, 8}, init, DType::F64), k = randn({2, 1, 6, 8}, init, DType::F64);
  const Tensor v = randn({2, 1, 6, 8}, init, DType::F64);
  const Tensor mask = bool_mask({1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1}, {2, 1, 1, 6});
  NoGrad no_grad;
  auto fused = [&](double p, Generator* gen) {
    return scaled_dot_product_attention(q, k, v, {.mask = mask, .dropout_p = p, .generator = gen});
  };
  Generator a(21, 100), b(21, 100), c(22, 100);
  const Tensor ya = fused(0.3, &a), yb = fused(0.3, &b), yc = fused(0.3, &c);
  CHECK(max_abs_diff(ya, yb) == 0);
  CHECK(max_abs_diff(ya, yc) > 0.01);
  CHECK(a.offset == 100 + 2 * 2 * 4 * 6);  // one counter per weight, as dropout on (B, H, T, S)
  CHECK(max_abs_diff(fused(0.3, &a), ya) > 0.01);  // the stream moves on
  // The same mask as dropout() draws for P of shape (B, H, T, S) from the same state.
  Generator d(21, 100);
  CHECK(max_abs_diff(ya, composite(q, k, v, {.mask = mask, .dropout_p = 0.3, .generator = &d})) <
        1e-12);
  CHECK(max_abs_diff(fused(0.0, nullptr), fused(0.0, &c)) == 0);
  CHECK(max_abs_diff(fused(0.0, nullptr), composite(q, k, v, {.mask = mask})) < 1e-12);
}

TEST_CASE("attention dropout: gradient check (the generator is re-seeded per call)") {
  const Case c{"dropout + padding + causal, MQA",
               2,
               2,
               1,
               3,
               4,
               3,
               bool_mask({1, 1, 0, 1, 0, 1, 1, 1}, {2, 1, 1, 4}),
               {},
               true};
  OpSpec spec = spec_of(c);
  spec.name = c.name;
  spec.op = [c](const Tensors& in) {
    Generator gen(5);
    AttentionOptions opt = options_of(c, in);
    opt.dropout_p = 0.4;
    opt.generator = &gen;
    return scaled_dot_product_attention(in[0], in[1], in[2], opt);
  };
  spec.reference = [c](const Tensors& in) {
    Generator gen(5);
    AttentionOptions opt = options_of(c, in);
    opt.dropout_p = 0.4;
    opt.generator = &gen;
    return composite(in[0], in[1], in[2], opt);
  };
  check_op(spec);
}

TEST_CASE("attention: results and gradients do not depend on the thread count") {
  Generator gen(15);
  const Tensor q = randn({3, 4, 16, 8}, gen), k = randn({3, 2, 16, 8}, gen);
  const Tensor v = randn({3, 2, 16, 8}, gen), r = randn({3, 4, 16, 8}, gen);
  check_thread_count_independent([&] {
    Generator drop(1);
    return grads_of(
        [&](const Tensors& x) {
          return scaled_dot_product_attention(
              x[0], x[1], x[2], {.causal = true, .dropout_p = 0.1, .generator = &drop});
        },
        {q, k, v}, r);
  });
}

TEST_CASE("attention errors name the op, the operands and the rule") {
  const Tensor q = ones({2, 4, 3, 8}), k = ones({2, 2, 5, 8});
  auto sdpa = [](const Tensor& a, const Tensor& b, const Tensor& c,
                 const AttentionOptions& o = {}) { scaled_dot_product_attention(a, b, c, o); };
  check_error(
      [&] {
        sdpa(ones({4, 3, 8}), k, k);
      },
      "scaled_dot_product_attention: q [4,3,8], k [2,2,5,8], v [2,2,5,8]: expected 4-D q "
      "(B, H, T, D) and k, v (B, KV, S, D)");
  check_error(
      [&] {
        sdpa(q, ones({2, 2, 5, 4}), ones({2, 2, 5, 4}));
      },
      "scaled_dot_product_attention: q [2,4,3,8], k [2,2,5,4]: head dims differ (8 vs 4)");
  check_error(
      [&] {
        sdpa(q, ones({2, 3, 5, 8}), ones({2, 3, 5, 8}));
      },
      "scaled_dot_product_attention: q [2,4,3,8], k [2,3,5,8]: 4 query heads are not a "
      "multiple of 3 kv heads");
  check_error(
      [&] {
        sdpa(q, k, ones({2, 2, 6, 8}));
      },
      "scaled_dot_product_attention: k [2,2,5,8], v [2,2,6,8]: k and v must have the same "
      "shape (B, KV, S, D)");
  check_error(
      [&] {
        sdpa(q, ones({3, 2, 5, 8}), ones({3, 2, 5, 8}));
      },
      "scaled_dot_product_attention: q [2,4,3,8], k [3,2,5,8]: batch sizes differ (2 vs 3)");
  check_error(
      [&] {
        sdpa(q, k, k, {.mask = ones({2, 1, 1, 5})});
      },
      "scaled_dot_product_attention: mask float32 [2,1,1,5]: expected a bool mask (true = "
      "attend)");
  check_error(
      [&] {
        sdpa(q, k, k, {.mask = bool_mask({1, 1, 1, 1}, {1, 4})});
      },
      "scaled_dot_product_attention: mask [1,4] does not broadcast to (B, H, T, S) = "
      "[2,4,3,5]");
  check_error(
      [&] {
        sdpa(q, k, k, {.bias = ones({1, 1, 2, 4, 3, 5})});
      },
      "scaled_dot_product_attention: bias [1,1,2,4,3,5] does not broadcast to (B, H, T, S) "
      "= [2,4,3,5]");
  check_error(
      [&] {
        sdpa(q, k, k, {.bias = ones({4, 3, 5}, DType::F64)});
      },
      "scaled_dot_product_attention: float32 [2,4,3,8] and float64 [4,3,5]: dtypes differ");
  const Tensor trainable_bias = ones({4, 3, 5}).set_requires_grad();
  check_error([&] { sdpa(q, k, k, {.bias = trainable_bias}); },
              "scaled_dot_product_attention: bias [4,3,5] requires grad, but the bias is not "
              "differentiated; pass bias.detach()");
  check_error(
      [&] {
        sdpa(q, ones({2, 2, 5, 8}, DType::F64), ones({2, 2, 5, 8}, DType::F64));
      },
      "scaled_dot_product_attention: float32 [2,4,3,8] and float64 [2,2,5,8]: dtypes differ");
  check_error(
      [&] {
        sdpa(arange(2 * 4 * 3 * 8).view({2, 4, 3, 8}), k, k);
      },
      "scaled_dot_product_attention: int64 [2,4,3,8]: expected a floating-point tensor");
  Generator gen(1);
  check_error([&] { sdpa(q, k, k, {.dropout_p = 1.0, .generator = &gen}); },
              "scaled_dot_product_attention: dropout_p = 1: expected a probability in [0, 1)");
  check_error([&] { sdpa(q, k, k, {.dropout_p = -0.1, .generator = &gen}); },
              "scaled_dot_product_attention: dropout_p = -0.1: expected a probability in [0, 1)");
  check_error([&] { sdpa(q, k, k, {.dropout_p = 0.1}); },
              "scaled_dot_product_attention: dropout_p = 0.1: dropout needs a generator "
              "(AttentionOptions::generator)");
}

}  // namespace
}  // namespace loom::test
