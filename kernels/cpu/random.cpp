#include "kernels/random.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/common.h"

namespace loom::kernels {

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

// Box-Muller (kernels/philox.h), one counter per element.
void fill_normal(TensorRef out, uint64_t seed, uint64_t offset, double mean, double std) {
  fill_contiguous(out, "normal", [=](int64_t i) {
    return mean + std * philox_normal(offset + uint64_t(i), seed);
  });
}

void fill_bernoulli(TensorRef out, uint64_t seed, uint64_t offset, double keep_prob, double scale) {
  fill_from_uniforms(out, "bernoulli", seed, offset,
                     [=](double u) { return u < keep_prob ? scale : 0.0; });
}

}  // namespace cpu
}  // namespace loom::kernels
