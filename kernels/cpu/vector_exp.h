// exp over contiguous float arrays, 16 lanes at a time with AVX-512 (8 with AVX2) through
// glibc's vector math library libmvec (_ZGVeN16v_expf / _ZGVdN8v_expf, the functions GCC
// itself calls when it vectorises expf under -ffast-math; loom is not built with
// -ffast-math, so they are called by name). They are within 3 ulp of exp (measured: worst
// 2.6 ulp over 2M points of [-86, 88], 78% of them below 1 ulp; glibc's scalar expf
// is 0.5 ulp; tests/kernels/test_vector_exp.cpp checks the bound): a relative error of
// 3e-7, far below what a softmax over float32 logits resolves. -inf gives 0 and NaN stays
// NaN, as std::exp.
// float64, and builds without libmvec or without AVX2, use std::exp.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cpu/row_reduce.h"

#if defined(LOOM_HAVE_LIBMVEC) && (defined(__AVX512F__) || defined(__AVX2__))
#include <immintrin.h>
#define LOOM_VECTOR_EXP 1
extern "C" __m512 _ZGVeN16v_expf(__m512);
extern "C" __m256 _ZGVdN8v_expf(__m256);
#endif

namespace loom::kernels::cpu {

// y[i] = exp(x[i] - shift) for i < n; y may be x. Each element is computed the same way
// wherever it sits in the array (the AVX-512 tail is a masked vector, not a scalar loop).
template <class T> inline void exp_shifted(T* y, const T* x, T shift, int64_t n) {
  int64_t i = 0;
#ifdef LOOM_VECTOR_EXP
  if constexpr (sizeof(T) == 4) {
#if defined(__AVX512F__)
    const __m512 s = _mm512_set1_ps(shift);
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(y + i, _ZGVeN16v_expf(_mm512_sub_ps(_mm512_loadu_ps(x + i), s)));
    if (i < n) {
      const __mmask16 tail = __mmask16((1u << (n - i)) - 1);
      const __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), s);
      _mm512_mask_storeu_ps(y + i, tail, _ZGVeN16v_expf(v));
      return;
    }
#else
    const __m256 s = _mm256_set1_ps(shift);
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(y + i, _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
    if (i < n) {
      alignas(32) float buf[8] = {};
      for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
      _mm256_store_ps(buf, _ZGVdN8v_expf(_mm256_sub_ps(_mm256_load_ps(buf), s)));
      for (int64_t j = i; j < n; ++j) y[j] = buf[j - i];
      return;
    }
#endif
  }
#endif
  for (; i < n; ++i) y[i] = std::exp(x[i] - shift);
}

// sum_i exp(x[i] - shift) in double (the values exp_shifted gives), i < n, through
// lane_sum<kWidth>'s fixed order.
template <int kWidth = kLanes, class T>
inline double sum_exp_shifted(const T* x, T shift, int64_t n) {
  constexpr int64_t kChunk = 256;
  T buf[kChunk];
  double s = 0;
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = n - i < kChunk ? n - i : kChunk;
    exp_shifted(buf, x + i, shift, m);
    s += lane_sum<kWidth>(m, [&](int64_t j) { return double(buf[j]); });
  }
  return s;
}

}  // namespace loom::kernels::cpu
