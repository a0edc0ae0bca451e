// Block-sparse attention (nn/block_sparse_attention.h) against the unfused composite with
// the pattern written out as a (T, T) mask from block_sparse_visible: causal and not,
// global tokens, a last block shorter than the others, GQA, key padding, with gradchecks
// (contiguous and strided); a block or global span covering T equals full attention; the
// pattern itself (which keys a query sees); dropout draws a reproducible mask; errors.
#include <doctest/doctest.h>

#include "common/attention_reference.h"
#include "common/op_spec.h"
#include "nn/block_sparse_attention.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// (T, T) bool: the pattern of the header, query i against key j.
Tensor pattern(int64_t T, int64_t block, int64_t global, bool causal) {
  return mask_of(T, T, [&](int64_t i, int64_t j) {
    return nn::block_sparse_visible(i, j, block, global, causal);
  });
}

struct SparseCase {
  const char* name;
  int64_t B, H, KV, T, D, block, global;
  bool causal;
  Tensor key_mask;  // (B, 1, 1, T) or undefined
};

// The reference's mask: the pattern and the key padding.
Tensor reference_mask(const SparseCase& c) {
  const Tensor p = pattern(c.T, c.block, c.global, c.causal);
  if (!c.key_mask.defined()) return p;
  return gt(p.to(DType::F64) * c.key_mask.to(DType::F64), zeros({}, DType::F64));
}

OpSpec sparse_spec(const SparseCase& c) {
  const nn::BlockSparseOptions o{
      .block = c.block, .global = c.global, .causal = c.causal, .key_mask = c.key_mask};
  return {
      .name = c.name,
      .shapes = {{c.B, c.H, c.T, c.D}, {c.B, c.KV, c.T, c.D}, {c.B, c.KV, c.T, c.D}},
      .op = [o](const Tensors& in) { return nn::block_sparse_attention(in[0], in[1], in[2], o); },
      .reference =
          [c](const Tensors& in) {
            return composite(in[0], in[1], in[2], {.mask = reference_mask(c)});
          }};
}

Tensor padding() {  // batch row 0: key 3 is padding; row 1: the last two
  return bool_mask({1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {2, 1, 1, 7});
}

TEST_CASE("block-sparse attention: equals the composite with the pattern as a mask, gradchecks") {
  const std::vector<SparseCase> cases = {
      {"non-causal, blocks of 2 over 7, 1 global", 1, 2, 2, 7, 3, 2, 1, false},
      {"causal, blocks of 2 over 7, 1 global", 1, 2, 2, 7, 3, 2, 1, true},
      {"non-causal, blocks of 2 over 8, no global", 2, 2, 1, 8, 3, 2, 0, false},
      {"causal, blocks of 3 over 10, 2 global, GQA", 1, 4, 2, 10, 2, 3, 2, true},
      {"non-causal, blocks of 1 over 6, 2 global", 1, 2, 2, 6, 2, 1, 2, false},
      {"non-causal, padding, GQA", 2, 4, 2, 7, 3, 2, 1, false, padding()},
      {"causal, padding", 2, 2, 2, 7, 3, 2, 1, true, padding()},
  };
  for (const SparseCase& c : cases) check_op(sparse_spec(c));
}

TEST_CASE("block-sparse attention: a block or a global span covering T is full attention") {
  Generator gen(51);
  const Tensor q = randn({2, 4, 6, 3}, gen, DType::F64), k = randn({2, 2, 6, 3}, gen, DType::F64),
               v = randn({2, 2, 6, 3}, gen, DType::F64);
  for (const bool causal : {false, true}) {
    INFO("causal ", causal);
    const Tensor full = scaled_dot_product_attention(q, k, v, {.causal = causal});
    for (const auto& [block, global] : std::vector<std::pair<int64_t, int64_t>>{
             {6, 0}, {100, 0}, {4, 0}, {1, 6}, {2, 9}, {2, 4}}) {
      INFO("block ", block, ", global ", global);
      const Tensor out =
          nn::block_sparse_attention(q, k, v, {.block = block, .global = global, .causal = causal});
      // Blocks of 4 over 6: two blocks, each seeing the other (causal: block 1 sees block
      // 0), the one-call path. Blocks of 2 with 4 global over 6: three blocks through the
      // gathered path, where the global keys 0..3 and the neighbours cover every key.
      CHECK(max_abs_diff(out, full) < 1e-12);
    }
    // Blocks of 1, no global: the pattern hides keys, so the result differs.
    CHECK(max_abs_diff(nn::block_sparse_attention(q, k, v, {.block = 1, .causal = causal}), full) >
          1e-3);
  }
}

TEST_CASE("block-sparse attention: the pattern") {
  // Blocks of 2, 1 global, non-causal, T = 7: query 4 (block 2) sees the global key 0 and
  // blocks 1..3 (keys 2..6); query 0 (global) sees all; query 1 (block 0) sees 0..3.
  const auto bits = pattern(7, 2, 1, false).to(DType::I64).to_vector<int64_t>();
  auto row = [&](int64_t i) { return std::vector<int64_t>(&bits[i * 7], &bits[i * 7 + 7]); };
  CHECK(row(4) == std::vector<int64_t>{1, 0, 1, 1, 1, 1, 1});
  CHECK(row(0) == std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1});
  CHECK(row(1) == std::vector<int64_t>{1, 1, 1, 1, 0, 0, 0});
  CHECK(row(6) == std::vector<int64_t>{1, 0, 0, 0, 1, 1, 1});
  // Causal: query 5 (block 2) sees key 0 (global) and keys 2..5; not 1 or 6.
  const auto causal = pattern(7, 2, 1, true).to(DType::I64).to_vector<int64_t>();
  CHECK(std::vector<int64_t>(&causal[35], &causal[42]) ==
        std::vector<int64_t>{1, 0, 1, 1, 1, 1, 0});
  // The op agrees: moving key 6 changes query 4 (block 2 sees block 3) but not query 1.
  Generator gen(52);
  const Tensor q = randn({1, 1, 7, 2}, gen, DType::F64), k = randn({1, 1, 7, 2}, gen, DType::F64),
               v = randn({1, 1, 7, 2}, gen, DType::F64);
  const Tensor v2 = v.clone();
  v2.slice(2, 6, 7).fill_(5.0);
  const nn::BlockSparseOptions o{.block = 2, .global = 1};
  const Tensor a = nn::block_sparse_attention(q, k, v, o),
               b = nn::block_sparse_attention(q, k, v2, o);
  CHECK(max_abs_diff(a.slice(2, 1, 2), b.slice(2, 1, 2)) == 0);
  CHECK(max_abs_diff(a.slice(2, 4, 5), b.slice(2, 4, 5)) > 1e-3);
}

TEST_CASE("block-sparse attention: dropout is reproducible and p = 0 is none") {
  Generator gen(53);
  const Tensor q = randn({1, 2, 9, 4}, gen), k = randn({1, 2, 9, 4}, gen),
               v = randn({1, 2, 9, 4}, gen);
  auto run = [&](double p, uint64_t seed) {
    Generator drop(seed);
    return nn::block_sparse_attention(
        q, k, v, {.block = 3, .global = 1, .dropout_p = p, .generator = &drop});
  };
  CHECK(max_abs_diff(run(0.5, 7), run(0.5, 7)) == 0);
  CHECK(max_abs_diff(run(0.5, 7), run(0.5, 8)) > 1e-3);
  CHECK(max_abs_diff(run(0.0, 7), nn::block_sparse_attention(q, k, v, {.block = 3, .global = 1})) ==
        0);
}

TEST_CASE("block-sparse attention: errors name the shapes and the rule") {
  const Tensor q = ones({1, 2, 3, 4}), k = ones({1, 2, 5, 4});
  check_error([&] { nn::block_sparse_attention(q, k, k, {.block = 2}); },
              "block_sparse_attention: q [1,2,3,4], k [1,2,5,4], v [1,2,5,4]: expected q (B, H, "
              "T, D) and k, v (B, KV, T, D) over the same T positions");
  check_error([&] { nn::block_sparse_attention(q, q, q, {.block = 0}); },
              "block = 0, global = 0: expected block >= 1 and global >= 0");
  check_error(
      [&] {
        nn::block_sparse_attention(q, q, q,
                                   {.block = 2, .key_mask = bool_mask({1, 1, 1, 1}, {1, 1, 1, 4})});
      },
      "key_mask [1,1,1,4]: expected (1, 1, 1, 3)");
}

}  // namespace
}  // namespace loom::test
