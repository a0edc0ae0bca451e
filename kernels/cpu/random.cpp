#include "kernels/random.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12 warns about its own _mm512_undefined_*() placeholders inside the intrinsics once
// they are inlined (GCC bug 105593); nothing here is read uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/cpu/common.h"

namespace loom::kernels {

namespace {

constexpr int kLanes = 32;  // Philox blocks per batch

// The ten rounds on 32 blocks at once; c[k][l] = word k of block l, in place.
#if defined(__AVX512F__)
// 32x32 -> 64-bit products of the 16 lanes of a with m: _mm512_mul_epu32 multiplies the
// even lanes, a shifted copy the odd ones; the halves are blended back into lane order.
inline void mul_hi_lo(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

// Two independent vectors of 16 blocks per round: the multiplies' latency overlaps.
// w[v][k]: word k of blocks 16 v .. 16 v + 15, in place.
inline void philox_rounds(__m512i (&w)[2][4], uint64_t seed) {
  const __m512i m0 = _mm512_set1_epi32(int(kPhiloxM0)), m1 = _mm512_set1_epi32(int(kPhiloxM1));
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const __m512i key0 = _mm512_set1_epi32(int(k0)), key1 = _mm512_set1_epi32(int(k1));
    for (int v = 0; v < 2; ++v) {
      __m512i hi0, lo0, hi1, lo1;
      mul_hi_lo(w[v][0], m0, hi0, lo0);
      mul_hi_lo(w[v][2], m1, hi1, lo1);
      const __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, w[v][1]), key0);
      const __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, w[v][3]), key1);
      w[v][0] = n0, w[v][1] = lo1, w[v][2] = n2, w[v][3] = lo0;
    }
    k0 += kPhiloxW0, k1 += kPhiloxW1;
  }
}

// The 32 blocks of counters first .. first + 31 (upper counter words zero), in registers:
// the low words count up, the high words carry.
inline void counter_blocks(__m512i (&w)[2][4], uint64_t first) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int v = 0; v < 2; ++v) {
    const uint64_t start = first + uint64_t(16 * v);
    const __m512i lo_start = _mm512_set1_epi32(int(uint32_t(start)));
    const __m512i lo = _mm512_add_epi32(lo_start, lane);
    const __mmask16 carry = _mm512_cmplt_epu32_mask(lo, lo_start);
    const __m512i hi = _mm512_set1_epi32(int(uint32_t(start >> 32)));
    w[v][0] = lo;
    w[v][1] = _mm512_mask_add_epi32(hi, carry, hi, _mm512_set1_epi32(1));
    w[v][2] = w[v][3] = _mm512_setzero_si512();
  }
}

void philox_rounds(uint32_t (&c)[4][kLanes], uint64_t seed) {
  __m512i w[2][4];
  for (int v = 0; v < 2; ++v)
    for (int k = 0; k < 4; ++k) w[v][k] = _mm512_loadu_si512(&c[k][16 * v]);
  philox_rounds(w, seed);
  for (int v = 0; v < 2; ++v)
    for (int k = 0; k < 4; ++k) _mm512_storeu_si512(&c[k][16 * v], w[v][k]);
}
#else
void philox_rounds(uint32_t (&c)[4][kLanes], uint64_t seed) {
  for (int l = 0; l < kLanes; ++l) {
    uint32_t w[4] = {c[0][l], c[1][l], c[2][l], c[3][l]};
    philox4x32_rounds(w, uint32_t(seed), uint32_t(seed >> 32));
    for (int k = 0; k < 4; ++k) c[k][l] = w[k];
  }
}
#endif

}  // namespace

void philox_words(uint32_t* out, int64_t blocks, uint64_t first_counter, uint64_t seed) {
  for (int64_t base = 0; base < blocks; base += kLanes) {
    uint32_t c[4][kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t counter = first_counter + uint64_t(base + l);
      c[0][l] = uint32_t(counter), c[1][l] = uint32_t(counter >> 32), c[2][l] = 0, c[3][l] = 0;
    }
    philox_rounds(c, seed);
    const int64_t m = std::min<int64_t>(kLanes, blocks - base);
    for (int64_t l = 0; l < m; ++l)
      for (int k = 0; k < 4; ++k) out[4 * (base + l) + k] = c[k][l];
  }
}

void philox_keep_bits(uint64_t* bits, int64_t blocks, uint64_t first_counter, uint64_t seed,
                      uint64_t threshold) {
  LOOM_ASSERT(blocks % 16 == 0);
  const bool keep_all = threshold > 0xffffffffu;
#if defined(__AVX512F__) && defined(__BMI2__)
  const __m512i limit = _mm512_set1_epi32(int(uint32_t(keep_all ? 0 : threshold)));
  for (int64_t base = 0; base < blocks; base += kLanes) {
    __m512i w[2][4];
    counter_blocks(w, first_counter + uint64_t(base));
    philox_rounds(w, seed);
    // Word k of block b is element 4 b + k: pdep spreads each word's 16 lane bits to
    // every fourth bit of the 64 elements of 16 blocks.
    for (int v = 0; v < 2 && base + 16 * v < blocks; ++v) {
      uint64_t word = 0;
      for (int k = 0; k < 4; ++k) {
        const uint64_t kept =
            keep_all ? 0xffffu : uint64_t(_mm512_cmplt_epu32_mask(w[v][k], limit));
        word |= _pdep_u64(kept, 0x1111111111111111ull << k);
      }
      bits[(base + 16 * v) / 16] = word;
    }
  }
#else
  uint32_t words[4 * 16];
  for (int64_t base = 0; base < blocks; base += 16) {
    philox_words(words, 16, first_counter + uint64_t(base), seed);
    uint64_t word = 0;
    for (int e = 0; e < 64; ++e) word |= uint64_t(keep_all || words[e] < threshold) << e;
    bits[base / 16] = word;
  }
#endif
}

void philox_bernoulli_bits(uint64_t* bits, int64_t n, uint64_t first_counter, uint64_t seed,
                           double keep_prob) {
  // u = b / 2^53 with b the top 53 bits of v = (word 0 << 32 | word 1); u < keep iff
  // b < ceil(keep 2^53) (b is an integer, keep 2^53 exact) iff v < ceil(keep 2^53) 2^11.
  const double scaled = std::ceil(std::max(keep_prob, 0.0) * 0x1p53);
  const bool keep_all = scaled >= 0x1p53;
  const uint64_t limit = keep_all ? 0 : uint64_t(scaled) << 11;
  for (int64_t w = 0; w < (n + 63) / 64; ++w) bits[w] = 0;
#if defined(__AVX512F__) && defined(__BMI2__)
  const __m512i limit_v = _mm512_set1_epi64(int64_t(limit));
  for (int64_t base = 0; base < n; base += kLanes) {
    __m512i w[2][4];
    counter_blocks(w, first_counter + uint64_t(base));
    philox_rounds(w, seed);
    for (int v = 0; v < 2; ++v) {
      // 64-bit lanes (word 1 low, word 0 high): unpacklo holds blocks 4k, 4k + 1 of each
      // 128-bit lane k, unpackhi blocks 4k + 2, 4k + 3.
      const __m512i first = _mm512_unpacklo_epi32(w[v][1], w[v][0]);
      const __m512i second = _mm512_unpackhi_epi32(w[v][1], w[v][0]);
      uint64_t kept = 0xffff;
      if (!keep_all)
        kept = _pdep_u64(_mm512_cmplt_epu64_mask(first, limit_v), 0x3333) |
               _pdep_u64(_mm512_cmplt_epu64_mask(second, limit_v), 0xcccc);
      const int64_t i0 = base + 16 * v;
      if (i0 >= n) break;
      if (n - i0 < 16) kept &= (uint64_t(1) << (n - i0)) - 1;
      bits[i0 / 64] |= kept << (i0 % 64);
    }
  }
#else
  for (int64_t i = 0; i < n; ++i)
    if (keep_all || philox_uniform01(first_counter + uint64_t(i), seed) < keep_prob)
      bits[i / 64] |= uint64_t(1) << (i % 64);
#endif
}

void philox_uniform01(double* out, int64_t n, uint64_t first_counter, uint64_t seed) {
  uint32_t w[4 * kLanes];
  for (int64_t base = 0; base < n; base += kLanes) {
    const int64_t m = std::min<int64_t>(kLanes, n - base);
    philox_words(w, m, first_counter + uint64_t(base), seed);
    for (int64_t l = 0; l < m; ++l) out[base + l] = uniform01_from_words(w[4 * l], w[4 * l + 1]);
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
