// Philox4x32-10 against the known-answer vectors published with Random123 (Salmon et al.,
// SC 2011, kat_vectors), and fills that do not depend on the thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include <vector>

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

}  // namespace
}  // namespace loom::kernels
