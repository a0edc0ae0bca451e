// Philox4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011),
// written once for the CPU and the GPU so both draw the same numbers for the same
// (counter, key): dropout masks agree bit for bit across devices.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/host_device.h"

namespace loom::kernels {

// Philox4x32 multipliers and Weyl key increments (Salmon et al.).
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

// Ten rounds on counter c (four words) under key (k0, k1), in place.
LOOM_HOST_DEVICE inline void philox4x32_rounds(uint32_t (&c)[4], uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kPhiloxM0) * c[0], p1 = uint64_t(kPhiloxM1) * c[2];
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c[1] ^ k0, n1 = uint32_t(p1);
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c[3] ^ k1, n3 = uint32_t(p0);
    c[0] = n0, c[1] = n1, c[2] = n2, c[3] = n3;
    k0 += kPhiloxW0, k1 += kPhiloxW1;
  }
}

// Uniform in [0, 1) with 53 random bits from two Philox words.
LOOM_HOST_DEVICE inline double uniform01_from_words(uint32_t w0, uint32_t w1) {
  const uint64_t bits = (uint64_t(w0) << 21) ^ (uint64_t(w1) >> 11);
  return double(bits & ((uint64_t(1) << 53) - 1)) * 0x1.0p-53;
}

// The uniform of one 64-bit counter (upper counter words zero): its first two words.
LOOM_HOST_DEVICE inline double philox_uniform01(uint64_t counter, uint64_t seed) {
  uint32_t c[4] = {uint32_t(counter), uint32_t(counter >> 32), 0, 0};
  philox4x32_rounds(c, uint32_t(seed), uint32_t(seed >> 32));
  return uniform01_from_words(c[0], c[1]);
}

// Word k (0..3) of the Philox block of one 64-bit counter (upper counter words zero).
LOOM_HOST_DEVICE inline uint32_t philox_word(uint64_t counter, uint64_t seed, int k) {
  uint32_t c[4] = {uint32_t(counter), uint32_t(counter >> 32), 0, 0};
  philox4x32_rounds(c, uint32_t(seed), uint32_t(seed >> 32));
  return c[k];
}

// A standard normal from one counter by Box-Muller: u1 in (0, 1] from words 0-1 (so the
// log is finite), u2 from word 2.
LOOM_HOST_DEVICE inline double philox_normal(uint64_t counter, uint64_t seed) {
  uint32_t c[4] = {uint32_t(counter), uint32_t(counter >> 32), 0, 0};
  philox4x32_rounds(c, uint32_t(seed), uint32_t(seed >> 32));
  const double u1 = 1.0 - uniform01_from_words(c[0], c[1]);
  const double u2 = double(c[2]) * 0x1.0p-32;
  return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

}  // namespace loom::kernels
