// Philox4x32-10 against the known-answer vectors published with Random123 (Salmon et al.,
// SC 2011, kat_vectors), and fills that do not depend on the thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include <vector>

#include "kernels/dropout.h"
#include "kernels/random.h"

namespace loom::kernels {
namespace {

TEST_CASE("philox4x32-10 known-answer vectors") {
  using W = std::array<uint32_t, 4>;
  CHECK(philox4x32_block({0, 0, 0, 0}, {0, 0}) == W{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32_block({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        W{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(philox4x32_block({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
        W{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

std::vector<float> normal_fill(int threads, uint64_t seed) {
  omp_set_num_threads(threads);
  std::vector<float> v(200000);
  TensorRef r{v.data(), DType::F32, Device::cpu(), {200000}, {1}};
  Generator gen(seed);
  fill_normal(r, gen, 0.0, 1.0);
  return v;
}

TEST_CASE("fills are identical across thread counts and runs, moments are right") {
  const int saved = omp_get_max_threads();
  const std::vector<float> one = normal_fill(1, 5), two = normal_fill(2, 5);
  omp_set_num_threads(saved);
  CHECK(one == two);
  double mean = 0, sq = 0;
  for (float x : one) mean += x, sq += double(x) * x;
  mean /= double(one.size());
  sq /= double(one.size());
  CHECK(mean == doctest::Approx(0.0).epsilon(0.01));
  CHECK(sq == doctest::Approx(1.0).epsilon(0.01));

  std::vector<double> u(1000);
  Generator gen(1);
  fill_uniform({u.data(), DType::F64, Device::cpu(), {1000}, {1}}, gen, -2.0, 3.0);
  for (double x : u) CHECK((x >= -2.0 && x < 3.0));
  CHECK(gen.offset == 1000);
}

TEST_CASE("vector Philox paths equal the scalar definition, counters wrapping 2^32 included") {
  const uint64_t seed = 0x0123456789abcdefull;
  for (const uint64_t first : {uint64_t(5), (uint64_t(1) << 32) - 21}) {
    INFO("first counter ", first);
    // philox_words: 40 blocks (one batch of 32 and a partial one).
    std::vector<uint32_t> words(4 * 40);
    philox_words(words.data(), 40, first, seed);
    for (int64_t b = 0; b < 40; ++b)
      for (int k = 0; k < 4; ++k)
        CHECK(words[size_t(4 * b + k)] == philox_word(first + uint64_t(b), seed, k));
    // Dropout's keep bits: word k of block b is element 4 b + k, below the threshold.
    const uint64_t threshold = keep_threshold(0.7);
    std::vector<uint64_t> keep(3);
    philox_keep_bits(keep.data(), 48, first, seed, threshold);
    for (int64_t e = 0; e < 192; ++e)
      CHECK(((keep[size_t(e / 64)] >> (e % 64)) & 1u) ==
            (philox_word(first + uint64_t(e / 4), seed, int(e % 4)) < threshold));
    // Bernoulli bits: one counter per element, uniform < keep; 77 elements leave the
    // last word partial, its high bits clear. keep = 1 keeps all, keep = 0 none.
    for (const double keep_prob : {0.9, 0.5, 1.0, 0.0}) {
      INFO("keep ", keep_prob);
      std::vector<uint64_t> bits(2, ~uint64_t(0));
      philox_bernoulli_bits(bits.data(), 77, first, seed, keep_prob);
      for (int64_t i = 0; i < 128; ++i) {
        const bool want = i < 77 && philox_uniform01(first + uint64_t(i), seed) < keep_prob;
        CHECK(bool((bits[size_t(i / 64)] >> (i % 64)) & 1u) == want);
      }
    }
  }
}

}  // namespace
}  // namespace loom::kernels
