// Sliding-window attention (AttentionOptions::window_left / window_right): forward against
// the unfused composite with the window written out as a (T, S) mask, gradchecks of q, k, v
// (symmetric, causal, one-sided, end-aligned T < S, GQA with padding and ALiBi, several
// query chunks), dropout drawing full attention's mask, a window that hides nothing equal to
// full attention, banded saved probabilities, thread-count independence and errors.
#include "common/attention_reference.h"
#include "common/op_spec.h"
#include "kernels/storage.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// (T, S): query i (position S - T + i) sees key j iff i' - left <= j <= i' + right, a side
// of -1 unbounded.
Tensor window_mask(int64_t T, int64_t S, int64_t left, int64_t right) {
  return mask_of(T, S, [&](int64_t i, int64_t j) {
    const int64_t at = S - T + i;
    return (left < 0 || j >= at - left) && (right < 0 || j <= at + right);
  });
}

struct WindowCase {
  const char* name;
  int64_t B, H, KV, T, S, D, left, right;
  bool causal = false;
  Tensor mask, bias;  // bool (broadcast to (B, H, T, S)), float64 bias
};

Tensors inputs_of(const WindowCase& c, DType dtype) {
  Generator gen(19);
  auto uniform = [&](const Dims& shape) {
    return (rand(shape, gen, DType::F64) * 2.0 - 1.0).to(dtype);
  };
  Tensors in = {uniform({c.B, c.H, c.T, c.D}), uniform({c.B, c.KV, c.S, c.D}),
                uniform({c.B, c.KV, c.S, c.D})};
  if (c.bias.defined()) in.push_back(c.bias.to(dtype));
  return in;
}

AttentionOptions fused_options(const WindowCase& c, const Tensors& in) {
  AttentionOptions o{.mask = c.mask, .causal = c.causal};
  if (c.bias.defined()) o.bias = in[3];
  o.window_left = c.left, o.window_right = c.right;
  return o;
}

// The same attention with the window as part of the mask, for the composite.
AttentionOptions masked_options(const WindowCase& c, const Tensors& in) {
  AttentionOptions o = fused_options(c, in);
  o.window_left = o.window_right = -1;
  const Tensor band = window_mask(c.T, c.S, c.left, c.right);
  o.mask = c.mask.defined() ? gt(c.mask.to(DType::F64) * band.to(DType::F64), zeros({}, DType::F64))
                            : band;
  return o;
}

OpSpec window_spec(const WindowCase& c) {
  return {
      .name = c.name,
      .op =
          [c](const Tensors& in) {
            return scaled_dot_product_attention(in[0], in[1], in[2], fused_options(c, in));
          },
      .reference =
          [c](const Tensors& in) { return composite(in[0], in[1], in[2], masked_options(c, in)); },
      .differentiable = {true, true, true, false},
      .make_inputs = [c](DType dtype) { return inputs_of(c, dtype); }};
}

TEST_CASE("window attention: equals the composite with the window as a mask, gradchecks") {
  const Tensor padding = bool_mask({1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1}, {2, 1, 1, 7});
  const std::vector<WindowCase> cases = {
      {"symmetric window 1, T == S", 2, 2, 2, 6, 6, 3, 1, 1},
      {"causal window 2", 2, 2, 2, 6, 6, 3, 2, -1, true},
      {"left only (right unbounded)", 1, 2, 2, 5, 5, 3, 1, -1},
      {"right only (left unbounded)", 1, 2, 2, 5, 5, 3, -1, 2},
      {"asymmetric 2 / 0 without causal", 1, 2, 2, 5, 5, 3, 2, 0},
      {"causal window, T < S end aligned", 2, 2, 1, 3, 7, 3, 2, -1, true},
      {"GQA + padding + ALiBi, window 2", 2, 4, 2, 7, 7, 3, 2, 2, false, padding,
       alibi_bias(4, 7, 7)},
      {"window 0: each query sees itself", 1, 2, 2, 4, 4, 3, 0, 0},
      // T > 32: several query chunks, each with its own key range.
      {"causal window 5, T = S = 70", 1, 2, 1, 70, 70, 2, 5, -1, true},
      {"symmetric window 3, T = S = 40", 1, 1, 1, 40, 40, 2, 3, 3},
  };
  for (const WindowCase& c : cases) check_op(window_spec(c));
}

TEST_CASE("window attention: a window that hides nothing gives full attention") {
  Generator gen(23);
  const Tensor q = randn({2, 4, 37, 8}, gen, DType::F64), k = randn({2, 2, 37, 8}, gen, DType::F64);
  const Tensor v = randn({2, 2, 37, 8}, gen, DType::F64), r = randn({2, 4, 37, 8}, gen, DType::F64);
  for (const bool causal : {false, true}) {
    INFO("causal " << causal);
    auto run = [&](int64_t left, int64_t right) {
      return grads_of(
          [&](const Tensors& x) {
            Generator drop(3);
            AttentionOptions o{.causal = causal, .dropout_p = 0.2, .generator = &drop};
            o.window_left = left, o.window_right = right;
            return scaled_dot_product_attention(x[0], x[1], x[2], o);
          },
          {q, k, v}, r);
    };
    const Tensors full = run(-1, -1), wide = run(36, 36), wider = run(500, 500);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(max_abs_diff(wide[i], full[i]) < 1e-12);
      CHECK(max_abs_diff(wider[i], full[i]) < 1e-12);
    }
  }
}

TEST_CASE("window attention dropout: full attention's mask under the window, gradcheck") {
  Generator init(29);
  const Tensor q = randn({2, 2, 9, 4}, init, DType::F64), k = randn({2, 1, 9, 4}, init, DType::F64);
  const Tensor v = randn({2, 1, 9, 4}, init, DType::F64);
  {
    NoGrad no_grad;
    Generator a(7, 40), b(7, 40);
    AttentionOptions fused{.causal = true, .dropout_p = 0.3, .generator = &a};
    fused.window_left = 3;
    const Tensor got = scaled_dot_product_attention(q, k, v, fused);
    const Tensor want = composite(
        q, k, v,
        {.mask = window_mask(9, 9, 3, 0), .causal = true, .dropout_p = 0.3, .generator = &b});
    CHECK(max_abs_diff(got, want) < 1e-12);
    CHECK(a.offset == b.offset);  // B * H * T * S counters, as full attention takes
  }
  const WindowCase c{"window 2 with dropout", 1, 2, 1, 6, 6, 3, 2, 2};
  OpSpec spec = window_spec(c);
  spec.op = [c](const Tensors& in) {
    Generator gen(5);
    AttentionOptions o = fused_options(c, in);
    o.dropout_p = 0.4, o.generator = &gen;
    return scaled_dot_product_attention(in[0], in[1], in[2], o);
  };
  spec.reference = [c](const Tensors& in) {
    Generator gen(5);
    AttentionOptions o = masked_options(c, in);
    o.dropout_p = 0.4, o.generator = &gen;
    return composite(in[0], in[1], in[2], o);
  };
  check_op(spec);
}

TEST_CASE("window attention: the saved probabilities are a band, linear in T") {
  Generator gen(31);
  const int64_t B = 1, H = 2, T = 256, D = 8, window = 15;  // bytes: whole allocator classes
  const Tensor q = randn({B, H, T, D}, gen).set_requires_grad(), k = randn({B, H, T, D}, gen);
  const Tensor v = randn({B, H, T, D}, gen);
  auto saved_bytes = [&](int64_t left) {
    const auto before = int64_t(kernels::cpu_allocator_stats().allocated_bytes);
    AttentionOptions o{.causal = true};
    o.window_left = left;
    const Tensor y = scaled_dot_product_attention(q, k, v, o);
    const auto after = int64_t(kernels::cpu_allocator_stats().allocated_bytes);
    clear_tape();
    return after - before - int64_t(y.numel() * 4);  // what the op keeps beside its output
  };
  CHECK(saved_bytes(-1) == B * H * T * T * 4);                 // full: (B, H, T, S)
  CHECK(saved_bytes(window) == B * H * T * (window + 1) * 4);  // causal band: window + 1 keys
}

TEST_CASE("window attention: results and gradients do not depend on the thread count") {
  Generator gen(37);
  const Tensor q = randn({3, 4, 40, 8}, gen), k = randn({3, 2, 40, 8}, gen);
  const Tensor v = randn({3, 2, 40, 8}, gen), r = randn({3, 4, 40, 8}, gen);
  check_thread_count_independent([&] {
    Generator drop(1);
    return grads_of(
        [&](const Tensors& x) {
          AttentionOptions o{.dropout_p = 0.1, .generator = &drop};
          o.window_left = 4, o.window_right = 2;
          return scaled_dot_product_attention(x[0], x[1], x[2], o);
        },
        {q, k, v}, r);
  });
}

TEST_CASE("window attention: a window size below -1 is refused with the rule") {
  const Tensor q = ones({1, 2, 3, 4});
  AttentionOptions o;
  o.window_left = -2;
  check_error([&] { scaled_dot_product_attention(q, q, q, o); },
              "scaled_dot_product_attention: window (-2, -1): expected sizes >= 0, or -1 for no "
              "bound on that side");
}

}  // namespace
}  // namespace loom::test
