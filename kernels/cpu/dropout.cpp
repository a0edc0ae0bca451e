#include "kernels/dropout.h"

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12 warns about its own _mm512_undefined_*() placeholders inside the intrinsics once
// they are inlined (GCC bug 105593); nothing here is read uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/cpu/common.h"

namespace loom::kernels::cpu {
namespace {

// The AVX-512 mask of the first min(16, left) lanes.
#if defined(__AVX512F__)
inline __mmask16 live_lanes(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}
#endif

// y[j] = v[j] * (kept ? on : 0) for j < m, v = relu ? relu(x) : x, kept = bit j of the
// little-endian bit string keep. The float AVX-512 form computes the same values 16 at a
// time: max(x, 0) is x > 0 ? x : 0 for every x, NaN and -0 included.
template <class T>
void apply(T* y, const T* x, const uint64_t* keep, int64_t m, T on, bool relu) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512 zero = _mm512_setzero_ps(), on_v = _mm512_set1_ps(on);
    // Whole vectors with plain loads and stores: masked ones, even with every lane live,
    // made this loop 4x slower on Zen 5 (bench_ops: 5.6 -> 1.3 ms over 4096 x 1024).
    int64_t j = 0;
    for (; j + 16 <= m; j += 16) {
      const __mmask16 kept = __mmask16(keep[j / 64] >> (j % 64));
      __m512 v = _mm512_loadu_ps(x + j);
      if (relu) v = _mm512_max_ps(v, zero);
      _mm512_storeu_ps(y + j, _mm512_mul_ps(v, _mm512_mask_blend_ps(kept, zero, on_v)));
    }
    if (j < m) {
      const __mmask16 live = live_lanes(m - j);
      const __mmask16 kept = __mmask16(keep[j / 64] >> (j % 64)) & live;
      __m512 v = _mm512_maskz_loadu_ps(live, x + j);
      if (relu) v = _mm512_max_ps(v, zero);
      _mm512_mask_storeu_ps(y + j, live, _mm512_mul_ps(v, _mm512_mask_blend_ps(kept, zero, on_v)));
    }
    return;
  }
#endif
  for (int64_t j = 0; j < m; ++j) {
    const bool kept = (keep[j / 64] >> (j % 64)) & 1u;
    const T v = relu ? (x[j] > T(0) ? x[j] : T(0)) : x[j];
    y[j] = v * (kept ? on : T(0));
  }
}

// gx[j] = gy[j] * (bit j of word ? on : 0), j < m <= 32.
template <class T> void unmask(T* gx, const T* gy, uint32_t word, int64_t m, T on) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512 zero = _mm512_setzero_ps(), on_v = _mm512_set1_ps(on);
    int64_t j = 0;
    for (; j + 16 <= m; j += 16) {  // whole vectors: plain loads and stores (see apply)
      const __mmask16 kept = __mmask16(word >> j);
      _mm512_storeu_ps(gx + j, _mm512_mul_ps(_mm512_loadu_ps(gy + j),
                                             _mm512_mask_blend_ps(kept, zero, on_v)));
    }
    if (j < m) {
      const __mmask16 live = live_lanes(m - j);
      const __mmask16 kept = __mmask16(word >> j) & live;
      const __m512 g = _mm512_maskz_loadu_ps(live, gy + j);
      _mm512_mask_storeu_ps(gx + j, live, _mm512_mul_ps(g, _mm512_mask_blend_ps(kept, zero, on_v)));
    }
    return;
  }
#endif
  for (int64_t j = 0; j < m; ++j) gx[j] = gy[j] * ((word >> j) & 1u ? on : T(0));
}

}  // namespace

// Four keep words (128 elements, 32 Philox blocks) at a time, the bits straight from
// philox_keep_bits (no words written out and read back to be compared).
void dropout_forward(TensorRef y, TensorRef keep, TensorRef x, uint64_t seed, uint64_t first,
                     uint64_t threshold, double scale, bool relu) {
  constexpr int64_t kWords = 4;
  const int64_t n = x.numel();
  uint32_t* bits = reinterpret_cast<uint32_t*>(keep.ptr<int32_t>());
  dispatch_floating(x.dtype, "dropout", [&]<class T>() {
    const T* xp = x.ptr<T>();
    T* yp = y.ptr<T>();
    const T on = static_cast<T>(scale);
    parallel_for(dropout_mask_words(n), 32 * 4, [&](int64_t word_begin, int64_t word_end) {
      for (int64_t w = word_begin; w < word_end; w += kWords) {
        const int64_t i0 = w * 32;
        const int64_t m = std::min({32 * kWords, n - i0, (word_end - w) * 32});
        uint64_t kept[2];
        philox_keep_bits(kept, 32, first + uint64_t(i0 / 4), seed, threshold);
        for (int h = 0; h < 2; ++h)  // bits past the last element stay clear
          if (m < 64 * (h + 1)) kept[h] &= m <= 64 * h ? 0 : ~0ull >> (64 * (h + 1) - m);
        apply(yp + i0, xp + i0, kept, m, on, relu);
        if (bits)
          for (int64_t k = 0; k < kWords && 32 * k < m; ++k)
            bits[w + k] = uint32_t(kept[k / 2] >> (32 * (k % 2)));
      }
    });
  });
}

void dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef keep, double scale) {
  const int64_t n = grad_y.numel();
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(keep.ptr<int32_t>());
  dispatch_floating(grad_y.dtype, "dropout backward", [&]<class T>() {
    const T* gy = grad_y.ptr<T>();
    T* gx = grad_x.ptr<T>();
    const T on = static_cast<T>(scale);
    parallel_for(dropout_mask_words(n), 32, [&](int64_t word_begin, int64_t word_end) {
      for (int64_t w = word_begin; w < word_end; ++w) {
        const int64_t i0 = w * 32;
        unmask(gx + i0, gy + i0, bits[w], std::min<int64_t>(32, n - i0), on);
      }
    });
  });
}

void relu_dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef y, double scale) {
  dispatch_floating(y.dtype, "relu_dropout backward", [&]<class T>() {
    const T* gy = grad_y.ptr<T>();
    const T* yp = y.ptr<T>();
    T* gx = grad_x.ptr<T>();
    const T on = static_cast<T>(scale), off = static_cast<T>(0.0);
    parallel_for(y.numel(), 2, [&](int64_t begin, int64_t end) {
      int64_t i = begin;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        const __m512 zero = _mm512_setzero_ps(), on_v = _mm512_set1_ps(on);
        for (; i + 16 <= end; i += 16) {
          const __mmask16 pass = _mm512_cmp_ps_mask(_mm512_loadu_ps(yp + i), zero, _CMP_GT_OQ);
          _mm512_storeu_ps(gx + i, _mm512_mul_ps(_mm512_loadu_ps(gy + i),
                                                 _mm512_mask_blend_ps(pass, zero, on_v)));
        }
      }
#endif
      for (; i < end; ++i) gx[i] = gy[i] * (yp[i] > T(0) ? on : off);
    });
  });
}

}  // namespace loom::kernels::cpu
