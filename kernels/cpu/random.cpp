#include "kernels/random.h"

#include <algorithm>
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

void philox_uniform01(double* out, int64_t n, uint64_t first_counter, uint64_t seed) {
  constexpr int kLanes = 16;
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int64_t base = 0; base < n; base += kLanes) {
    uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t c = first_counter + uint64_t(base + l);
      c0[l] = uint32_t(c), c1[l] = uint32_t(c >> 32), c2[l] = 0, c3[l] = 0;
    }
    uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      for (int l = 0; l < kLanes; ++l) {
        const uint64_t p0 = uint64_t(kM0) * c0[l], p1 = uint64_t(kM1) * c2[l];
        const uint32_t n0 = uint32_t(p1 >> 32) ^ c1[l] ^ k0, n2 = uint32_t(p0 >> 32) ^ c3[l] ^ k1;
        c1[l] = uint32_t(p1), c3[l] = uint32_t(p0), c0[l] = n0, c2[l] = n2;
      }
      k0 += kW0, k1 += kW1;
    }
    const int64_t m = std::min<int64_t>(kLanes, n - base);
    for (int64_t l = 0; l < m; ++l) out[base + l] = uniform01_from_words(c0[l], c1[l]);
  }
}

namespace cpu {
namespace {

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

// Elementwise f(u_i) over uniforms u_i = philox_uniform01(offset + i, seed), drawn in
// batches of 64.
template <class F>
void fill_from_uniforms(TensorRef out, const char* name, uint64_t seed, uint64_t offset, F f) {
  LOOM_CHECK(out.is_contiguous(), name, ": output must be contiguous");
  dispatch_floating(out.dtype, name, [&]<class T>() {
    T* p = out.ptr<T>();
    parallel_for(out.numel(), 16, [&](int64_t begin, int64_t end) {
      double u[64];
      for (int64_t i = begin; i < end; i += 64) {
        const int64_t m = std::min<int64_t>(64, end - i);
        philox_uniform01(u, m, offset + uint64_t(i), seed);
        for (int64_t j = 0; j < m; ++j) p[i + j] = static_cast<T>(f(u[j]));
      }
    });
  });
}

}  // namespace

void fill_uniform(TensorRef out, uint64_t seed, uint64_t offset, double low, double high) {
  fill_from_uniforms(out, "uniform", seed, offset, [=](double u) { return low + (high - low) * u; });
}

// Box-Muller on two independent uniforms; u1 in (0, 1] so log(u1) is finite.
void fill_normal(TensorRef out, uint64_t seed, uint64_t offset, double mean, double std) {
  fill_contiguous(out, "normal", [=](int64_t i) {
    const auto r = philox4x32(offset + uint64_t(i), seed);
    const double u1 = 1.0 - uniform01_from_words(r[0], r[1]);
    const double u2 = double(r[2]) * 0x1.0p-32;
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

void fill_bernoulli(TensorRef out, uint64_t seed, uint64_t offset, double keep_prob, double scale) {
  fill_from_uniforms(out, "bernoulli", seed, offset,
                     [=](double u) { return u < keep_prob ? scale : 0.0; });
}

}  // namespace cpu
}  // namespace loom::kernels
