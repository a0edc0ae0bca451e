// Fused inverted dropout that keeps its mask as bits:
//   y = x * m,  m = scale if element i is kept else 0,  and  grad_x = grad_y * m,
// with the mask read back from one bit per element (bit i % 32 of word i / 32 of an int32
// tensor): 1/32 of the memory a float32 mask takes.
//
// The draw: a call takes dropout_counters(n) = ceil(n / 4) Philox counters from the
// generator, starting at `first`; element i is kept when word i % 4 of the Philox block of
// counter first + i / 4 is below keep_threshold(keep_prob) = ceil(keep_prob * 2^32), i.e.
// when that word as a uniform w / 2^32 is below keep_prob. Four elements per block: a
// quarter of the rounds of one draw per element (fill_bernoulli), the same on every
// device and thread count.
//
// relu_dropout fuses the feed-forward block's relu(x) then dropout: y = relu(x) * m. Its
// backward needs no mask at all: y > 0 exactly where x > 0 and the element was kept (x * m
// cannot underflow for x > 0, m >= 1), so grad_x = grad_y * (y > 0 ? scale : 0), bit for bit
// the composite's (grad_y * m) * relu'(x); y is what the next Linear saves anyway.
#pragma once

#include <cmath>

#include "kernels/profile.h"
#include "kernels/random.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

// Words of keep bits for n elements.
inline int64_t dropout_mask_words(int64_t n) { return (n + 31) / 32; }
// Philox counters (blocks of four words) a dropout of n elements takes.
inline uint64_t dropout_counters(int64_t n) { return uint64_t(n + 3) / 4; }
// A Philox word w keeps its element when w < keep_threshold(keep_prob) (2^32 keeps all).
inline uint64_t keep_threshold(double keep_prob) {
  return uint64_t(std::ceil(keep_prob * 0x1p32));
}

// Backend entry points: first = the first counter, threshold = keep_threshold(keep_prob).
// relu: y = relu(x) * m; keep.data may then be null (no bits).
namespace cpu {
void dropout_forward(TensorRef y, TensorRef keep, TensorRef x, uint64_t seed, uint64_t first,
                     uint64_t threshold, double scale, bool relu);
void dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef keep, double scale);
void relu_dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef y, double scale);
}  // namespace cpu

namespace cuda {
void dropout_forward(TensorRef y, TensorRef keep, TensorRef x, uint64_t seed, uint64_t first,
                     uint64_t threshold, double scale, bool relu);
void dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef keep, double scale);
void relu_dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef y, double scale);
}  // namespace cuda

// x, y, grad_x, grad_y: contiguous, same size n and dtype; keep: contiguous int32,
// dropout_mask_words(n). The forward takes dropout_counters(n) counters from gen.
inline void check_dropout_operands(TensorRef a, TensorRef b, TensorRef keep) {
  LOOM_ASSERT(a.is_contiguous() && b.is_contiguous() && keep.is_contiguous());
  LOOM_ASSERT(a.numel() == b.numel() && a.dtype == b.dtype && a.device == b.device);
  LOOM_ASSERT(keep.dtype == DType::I32 && keep.numel() == dropout_mask_words(a.numel()));
  LOOM_ASSERT(keep.device == a.device);
}

// Takes the counters from gen and calls the backend (both forwards).
inline void draw_dropout(TensorRef y, TensorRef keep, TensorRef x, Generator& gen,
                         double keep_prob, double scale, bool relu) {
  profile::Scope scope(profile::Kind::Random);
  const uint64_t first = gen.take(dropout_counters(x.numel()));
  const uint64_t threshold = keep_threshold(keep_prob);
  if (x.device.is_cpu())
    return cpu::dropout_forward(y, keep, x, gen.seed, first, threshold, scale, relu);
  LOOM_ON_CUDA(cuda::dropout_forward(y, keep, x, gen.seed, first, threshold, scale, relu));
}

inline void dropout_forward(TensorRef y, TensorRef keep, TensorRef x, Generator& gen,
                            double keep_prob, double scale) {
  check_dropout_operands(y, x, keep);
  draw_dropout(y, keep, x, gen, keep_prob, scale, false);
}

inline void dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef keep, double scale) {
  profile::Scope scope(profile::Kind::Elementwise);
  check_dropout_operands(grad_x, grad_y, keep);
  if (grad_x.device.is_cpu()) return cpu::dropout_backward(grad_x, grad_y, keep, scale);
  LOOM_ON_CUDA(cuda::dropout_backward(grad_x, grad_y, keep, scale));
}

// y = relu(x) * m (x, y contiguous, same size and dtype); takes dropout_counters(n) from gen.
inline void relu_dropout_forward(TensorRef y, TensorRef x, Generator& gen, double keep_prob,
                                 double scale) {
  LOOM_ASSERT(x.is_contiguous() && y.is_contiguous() && x.numel() == y.numel());
  LOOM_ASSERT(x.dtype == y.dtype && x.device == y.device);
  TensorRef no_bits = x;
  no_bits.data = nullptr;
  draw_dropout(y, no_bits, x, gen, keep_prob, scale, true);
}

// grad_x = grad_y * (y > 0 ? scale : 0); all contiguous, same size.
inline void relu_dropout_backward(TensorRef grad_x, TensorRef grad_y, TensorRef y, double scale) {
  profile::Scope scope(profile::Kind::Elementwise);
  LOOM_ASSERT(grad_x.is_contiguous() && grad_y.is_contiguous() && y.is_contiguous());
  LOOM_ASSERT(grad_x.numel() == y.numel() && grad_y.numel() == y.numel());
  if (y.device.is_cpu()) return cpu::relu_dropout_backward(grad_x, grad_y, y, scale);
  LOOM_ON_CUDA(cuda::relu_dropout_backward(grad_x, grad_y, y, scale));
}

}  // namespace loom::kernels
