#include "kernels/random.h"

#include <cmath>

#include "kernels/cpu/common.h"

namespace loom::kernels {

std::array<uint32_t, 4> philox4x32_block(std::array<uint32_t, 4> counter,
                                         std::array<uint32_t, 2> key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // multipliers (Salmon et al.)
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kM0) * c0, p1 = uint64_t(kM1) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n1 = uint32_t(p1);
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1, n3 = uint32_t(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += kW0, k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

namespace cpu {
namespace {

// Uniform in [0, 1) with 53 random bits (exactly representable in double).
inline double uniform01(const std::array<uint32_t, 4>& r) {
  const uint64_t bits = (uint64_t(r[0]) << 21) ^ (uint64_t(r[1]) >> 11);
  return double(bits & ((uint64_t(1) << 53) - 1)) * 0x1.0p-53;
}

template <class Gen>
void fill_contiguous(TensorRef out, const char* name, Gen gen) {
  LOOM_CHECK(out.is_contiguous(), name, ": output must be contiguous");
  dispatch_floating(out.dtype, name, [&]<class T>() {
    T* p = out.ptr<T>();
    parallel_for(out.numel(), 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) p[i] = static_cast<T>(gen(i));
    });
  });
}

}  // namespace

void fill_uniform(TensorRef out, uint64_t seed, uint64_t offset, double low, double high) {
  fill_contiguous(out, "uniform", [=](int64_t i) {
    return low + (high - low) * uniform01(philox4x32(offset + uint64_t(i), seed));
  });
}

// Box-Muller on two independent uniforms; u1 in (0, 1] so log(u1) is finite.
void fill_normal(TensorRef out, uint64_t seed, uint64_t offset, double mean, double std) {
  fill_contiguous(out, "normal", [=](int64_t i) {
    const auto r = philox4x32(offset + uint64_t(i), seed);
    const double u1 = 1.0 - uniform01(r);
    const double u2 = double(r[2]) * 0x1.0p-32;
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

void fill_bernoulli(TensorRef out, uint64_t seed, uint64_t offset, double keep_prob, double scale) {
  fill_contiguous(out, "bernoulli", [=](int64_t i) {
    return uniform01(philox4x32(offset + uint64_t(i), seed)) < keep_prob ? scale : 0.0;
  });
}

}  // namespace cpu
}  // namespace loom::kernels
