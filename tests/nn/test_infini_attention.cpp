// Infini-attention (nn/infini_attention.h). With the linear memory update the memory's
// retrieval is the quadratic form φ(q) φ(k)ᵀ v / rowsum over the keys of earlier segments,
// written out with a (T, T) mask; with the delta rule, the paper's equations segment by
// segment. Both against the op (causal and not, a shorter last segment, GQA, padding,
// separate local and memory q/k), with gradchecks on all six inputs including the gate β;
// decoding in pieces through the carried memory equals one pass; a segment covering T
// with a closed gate is full attention; the delta rule stores a repeated pair once; errors.
#include <doctest/doctest.h>

#include "common/attention_reference.h"
#include "common/op_spec.h"
#include "nn/infini_attention.h"
#include "nn/linear_attention.h"

namespace loom::test {
namespace {

using namespace loom::ag;

struct InfiniCase {
  const char* name;
  int64_t B, H, KV, T, D, segment;
  bool causal, delta;
  Tensor key_mask;  // (B, 1, 1, T) or undefined
};

// (T, T) 0/1 from a predicate on (query i, key j), times the key padding: (B or 1, 1, T, T).
Tensor pairs(int64_t T, const Tensor& key_mask, const std::function<bool(int64_t, int64_t)>& f) {
  const Tensor m = mask_of(T, T, f).to(DType::F64).view({1, 1, T, T});
  return key_mask.defined() ? m * key_mask.to(DType::F64) : m;
}

// in: q_local, k_local, q_mem, k_mem, v, gate.
Tensor reference(const InfiniCase& c, const Tensors& in) {
  const Tensor &ql = in[0], &kl = in[1], &v = in[4], &gate = in[5];
  const int64_t N = c.segment, T = c.T, G = c.H / c.KV;
  const DType dt = ql.dtype();
  const Tensor qf = nn::elu_feature_map(in[2]), kf = nn::elu_feature_map(in[3]);
  // Local: softmax inside the segment (and causal).
  const Tensor local_mask = pairs(
      T, c.key_mask, [&](int64_t i, int64_t j) { return i / N == j / N && (!c.causal || j <= i); });
  const Tensor local = composite(ql, kl, v, {.mask = gt(local_mask, zeros({}, DType::F64))});
  Tensor mem;
  if (!c.delta) {  // quadratic form over the keys of earlier segments
    const Tensor earlier =
        pairs(T, c.key_mask, [&](int64_t i, int64_t j) { return j / N < i / N; });
    const Tensor a = matmul(qf, repeat_heads(kf, G).transpose(2, 3)) * earlier.to(dt);
    mem = matmul(a, repeat_heads(v, G)) / (sum(a, {3}, true) + 1e-6);
  } else {  // the paper's recurrence, segment by segment
    Tensor kfm = kf;
    if (c.key_mask.defined()) kfm = kf * c.key_mask.transpose(2, 3).to(dt);
    Tensor M = zeros({c.B, c.KV, c.D, c.D}, dt), z = zeros({c.B, c.KV, c.D, 1}, dt);
    std::vector<Tensor> parts;
    for (int64_t s0 = 0; s0 < T; s0 += N) {
      const int64_t s1 = std::min(T, s0 + N);
      const Tensor qs = qf.slice(2, s0, s1), ks = kfm.slice(2, s0, s1), vs = v.slice(2, s0, s1);
      parts.push_back(matmul(qs, repeat_heads(M, G)) / (matmul(qs, repeat_heads(z, G)) + 1e-6));
      M = M + matmul(ks.transpose(2, 3), vs - matmul(ks, M) / (matmul(ks, z) + 1e-6));
      z = z + sum(ks, {2}, true).transpose(2, 3);
    }
    mem = concat(parts, 2);
  }
  const Tensor g = sigmoid(gate).view({1, c.H, 1, 1});
  return g * mem + (1.0 - g) * local;
}

OpSpec infini_spec(const InfiniCase& c) {
  const nn::InfiniOptions o{
      .segment = c.segment, .delta_rule = c.delta, .causal = c.causal, .key_mask = c.key_mask};
  const Dims q{c.B, c.H, c.T, c.D}, k{c.B, c.KV, c.T, c.D};
  return {.name = c.name,
          .shapes = {q, k, q, k, k, {c.H}},
          .op =
              [o](const Tensors& in) {
                return nn::infini_attention(in[0], in[1], in[2], in[3], in[4], in[5], o);
              },
          .reference = [c](const Tensors& in) { return reference(c, in); }};
}

Tensor padding() {  // row 0: key 3 is padding; row 1: keys 4 and 5
  return bool_mask({1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1}, {2, 1, 1, 7});
}

TEST_CASE("Infini-attention: equals the reference, gradchecks (gate included)") {
  const std::vector<InfiniCase> cases = {
      {"causal, segments of 3 over 7, linear update", 1, 2, 2, 7, 3, 3, true, false},
      {"causal, segments of 3 over 7, delta rule", 1, 2, 2, 7, 3, 3, true, true},
      {"non-causal, segments of 2 over 6, delta rule, GQA", 2, 4, 2, 6, 2, 2, false, true},
      {"non-causal, segments of 3 over 7, linear update, padding", 2, 2, 2, 7, 3, 3, false, false,
       padding()},
      {"causal, segments of 3 over 7, delta rule, padding, GQA", 2, 4, 2, 7, 2, 3, true, true,
       padding()},
      {"causal, segments of 1 over 4, delta rule", 1, 2, 1, 4, 2, 1, true, true},
  };
  for (const InfiniCase& c : cases) check_op(infini_spec(c));
}

TEST_CASE("Infini-attention: decoding in pieces through the memory equals one pass") {
  Generator gen(61);
  const Tensor q = randn({2, 4, 10, 3}, gen, DType::F64), k = randn({2, 2, 10, 3}, gen, DType::F64),
               v = randn({2, 2, 10, 3}, gen, DType::F64), gate = randn({4}, gen, DType::F64);
  const Tensor qm = randn({2, 4, 10, 3}, gen, DType::F64),
               km = randn({2, 2, 10, 3}, gen, DType::F64);
  NoGrad no_grad;
  for (const bool delta : {false, true}) {
    INFO("delta rule ", delta);
    const nn::InfiniOptions o{.segment = 3, .delta_rule = delta, .causal = true};
    const Tensor whole = nn::infini_attention(q, k, qm, km, v, gate, o);
    nn::InfiniMemory memory;
    std::vector<Tensor> parts;
    // Pieces that end inside, at and across segment ends; keys from the first query's
    // segment start, as the decoder's cache keeps them.
    for (const auto& [t0, t1] :
         std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {2, 3}, {3, 4}, {4, 8}, {8, 10}}) {
      const int64_t k0 = t0 / 3 * 3;
      nn::InfiniOptions step = o;
      step.q_start = t0, step.k_start = k0, step.memory = &memory;
      parts.push_back(nn::infini_attention(q.slice(2, t0, t1), k.slice(2, k0, t1),
                                           qm.slice(2, t0, t1), km.slice(2, k0, t1),
                                           v.slice(2, k0, t1), gate, step));
    }
    CHECK(max_abs_diff(concat(parts, 2), whole) < 1e-12);
    CHECK(memory.M.sizes() == Dims{2, 2, 3, 3});  // per kv head, whatever the length
    CHECK(memory.z.sizes() == Dims{2, 2, 3, 1});
  }
}

TEST_CASE("Infini-attention: a segment covering T with a closed gate is full attention") {
  Generator gen(62);
  const Tensor q = randn({1, 2, 6, 3}, gen, DType::F64), k = randn({1, 2, 6, 3}, gen, DType::F64),
               v = randn({1, 2, 6, 3}, gen, DType::F64);
  for (const bool causal : {false, true}) {
    INFO("causal ", causal);
    const Tensor closed = full({2}, -80.0, DType::F64);  // sigmoid(-80) ~ 2e-35
    const Tensor out =
        nn::infini_attention(q, k, q, k, v, closed, {.segment = 6, .causal = causal});
    CHECK(max_abs_diff(out, scaled_dot_product_attention(q, k, v, {.causal = causal})) < 1e-12);
    // Shorter segments: the local part loses keys, and an open gate reads the memory.
    CHECK(max_abs_diff(
              nn::infini_attention(q, k, q, k, v, closed, {.segment = 2, .causal = causal}), out) >
          1e-3);
  }
}

TEST_CASE("Infini-attention: the delta rule stores a repeated key-value pair once") {
  // Two segments holding the same single key and value: the linear update adds σ(k) vᵀ
  // twice, the delta rule only once (the second time M already returns v for k).
  const Tensor k = from_vector<double>({0.3, -0.2, 0.3, -0.2}, {1, 1, 2, 2});
  const Tensor v = from_vector<double>({1.0, 2.0, 1.0, 2.0}, {1, 1, 2, 2});
  const Tensor gate = zeros({1}, DType::F64);
  const Tensor once =
      matmul(nn::elu_feature_map(k.slice(2, 0, 1)).transpose(2, 3), v.slice(2, 0, 1));
  for (const bool delta : {false, true}) {
    nn::InfiniMemory memory;
    nn::infini_attention(k, k, k, k, v, gate,
                         {.segment = 1, .delta_rule = delta, .causal = true, .memory = &memory});
    CHECK(max_abs_diff(memory.M, delta ? once : once * 2.0) < 1e-5);
  }
}

TEST_CASE("Infini-attention: errors name the shapes and the rule") {
  const Tensor q = ones({1, 2, 3, 4}), k = ones({1, 2, 3, 4}), gate = zeros({2});
  check_error([&] { nn::infini_attention(q, k, q, k, k, zeros({3}), {.segment = 2}); },
              "infini_attention: gate [3]: expected one β per query head (2)");
  check_error([&] { nn::infini_attention(q, k, q, k, k, gate, {.segment = 0}); },
              "infini_attention: segment = 0: must be >= 1");
  check_error(
      [&] {
        nn::infini_attention(q, k, q, k, k, gate,
                             {.segment = 2, .causal = true, .q_start = 2, .k_start = 1});
      },
      "infini_attention: queries at 2..5, keys at 1..4: keys must end with the queries and "
      "reach back to the start of the first query's segment (2)");
  check_error(
      [&] {
        nn::infini_attention(q, k, q, k, k, gate,
                             {.segment = 2, .causal = true, .q_start = 3, .k_start = 3});
      },
      "keys at 3..6: keys must end with the queries and reach back to the start of the first "
      "query's segment (2)");
}

}  // namespace
}  // namespace loom::test
