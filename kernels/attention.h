// Fused scaled-dot-product attention, forward and backward, one (batch, head) block at a
// time (see autograd/ops/attention.cpp for the formulas and the op's semantics).
//
// Layouts: q (B, H, T, D); k, v (B, KV, S, D) with H % KV == 0, query head h reading kv
// head h / (H / KV). q, k, v and grad_out may have any strides as long as the head dim D
// is contiguous and rows are at least D apart (each head is a BLAS matrix). out, grad_q
// (B, H, T, D), grad_k, grad_v (B, KV, S, D) are contiguous on cuda; on the cpu they may be
// strided the same way (the op layer lays them out as the heads of a (B, T, H * D) buffer,
// so merging heads and the projections' gradients need no copy). probs (B, H, T, S) is
// contiguous. mask
// (bool) and bias (q's dtype) are refs stretched to (B, H, T, S), stride 0 on broadcast
// dims. An absent operand is a TensorRef with data == nullptr: mask, bias, probs (the
// forward then keeps P in per-thread scratch) and each of grad_q, grad_k, grad_v (skipped).
//
// Dropout: weight (b, h, i, j) is kept iff u < 1 - p, u the uniform of Philox counter
// offset + ((b * H + h) * T + i) * S + j under key seed, the same stream fill_bernoulli
// draws for a (B, H, T, S) tensor, so the fused op and the composite
// softmax -> dropout -> matmul agree bit for bit on the mask. The backward does not draw
// again: the saved probs carry the mask in their sign (Note [Dropped weights keep their
// sign] in kernels/cpu/attention.cpp).
//
// Each (b, h) block is computed by one thread in a fixed order, and each (b, kv head)
// gradient sums its query heads in head order, so results do not depend on the thread
// count.
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/cuda/runtime.h"
#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

struct AttentionParams {
  double scale = 1.0;      // multiplies q kᵀ
  bool causal = false;     // key j is visible to query i iff j <= S - T + i (end-aligned)
  double dropout_p = 0.0;  // probability of dropping an attention weight; 0: no dropout
  uint64_t seed = 0;       // dropout stream (see above)
  uint64_t offset = 0;
  // Sliding window (FlashAttention's window_size): query i, at end-aligned position
  // i' = S - T + i, sees key j only when i' - window_left <= j <= i' + window_right (and
  // the causal rule and mask allow it). Both are >= 0 when windowed, -1 (both) otherwise.
  // Windowed, probs is banded: (B, H, T, window_left + window_right + 1), column c of row
  // i holding key j = i' - window_left + c (0 where no such key is visible), and the work
  // grows with T * (window_left + window_right + 1), not T * S.
  int64_t window_left = -1, window_right = -1;
  bool windowed() const { return window_left >= 0; }
  int64_t band() const { return window_left + window_right + 1; }
};

namespace cpu {
void attention_forward(TensorRef out, TensorRef probs, TensorRef q, TensorRef k, TensorRef v,
                       TensorRef mask, TensorRef bias, const AttentionParams& p);
void attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v, TensorRef grad_out,
                        TensorRef q, TensorRef k, TensorRef v, TensorRef probs,
                        const AttentionParams& p);
// The windowed kernels (kernels/cpu/window_attention.cpp): p.windowed(), banded probs.
void window_attention_forward(TensorRef out, TensorRef probs, TensorRef q, TensorRef k,
                              TensorRef v, TensorRef mask, TensorRef bias,
                              const AttentionParams& p);
void window_attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v,
                               TensorRef grad_out, TensorRef q, TensorRef k, TensorRef v,
                               TensorRef probs, const AttentionParams& p);
}  // namespace cpu

namespace cuda {
void attention_forward(TensorRef out, TensorRef probs, TensorRef q, TensorRef k, TensorRef v,
                       TensorRef mask, TensorRef bias, const AttentionParams& p);
void attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v, TensorRef grad_out,
                        TensorRef q, TensorRef k, TensorRef v, TensorRef probs,
                        const AttentionParams& p);
// Flash-style attention (kernels/cuda/flash_attention.cu): the same out and gradients
// without materialising P. The forward writes each query row's log-sum-exp of its scores,
// lse (B, H, T) float32 contiguous (-inf for a row with no visible key); the backward
// recomputes P from q, k, mask, bias and lse, and the dropout decisions from the Philox
// stream (the counters above), given the forward's out. See use_flash_attention below.
void flash_attention_forward(TensorRef out, TensorRef lse, TensorRef q, TensorRef k, TensorRef v,
                             TensorRef mask, TensorRef bias, const AttentionParams& p);
void flash_attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v,
                              TensorRef grad_out, TensorRef q, TensorRef k, TensorRef v,
                              TensorRef out, TensorRef lse, TensorRef mask, TensorRef bias,
                              const AttentionParams& p);
}  // namespace cuda

// A (B, heads, rows, D) ref whose heads are matrices with contiguous rows: what the cpu
// kernels read and write through head().
inline bool is_head_matrices(const TensorRef& x) {
  return x.dim() == 4 && (x.sizes[3] <= 1 || x.strides[3] == 1) &&
         (x.sizes[2] <= 1 || x.strides[2] >= x.sizes[3]);
}

// The layouts both backends rely on (asserted: the op layer guarantees them): q (B, H, T,
// D), k and v (B, KV, S, D) with H % KV == 0, each head a matrix with contiguous rows.
inline void check_attention_operands(const TensorRef& q, const TensorRef& k, const TensorRef& v) {
  LOOM_ASSERT(q.dim() == 4 && k.dim() == 4 && k.sizes == v.sizes);
  LOOM_ASSERT(q.sizes[0] == k.sizes[0] && q.sizes[3] == k.sizes[3]);
  LOOM_ASSERT(k.sizes[1] > 0 && q.sizes[1] % k.sizes[1] == 0);
  LOOM_ASSERT(q.dtype == k.dtype && q.dtype == v.dtype);
  for (const TensorRef* x : {&q, &k, &v}) {
    LOOM_ASSERT(is_head_matrices(*x));
    LOOM_ASSERT(x->sizes[2] < INT_MAX && x->sizes[3] < INT_MAX && x->strides[2] < INT_MAX);
  }
}

// out = dropout(P) v with P = softmax(scale * q kᵀ + bias, masked to -inf), row by row;
// a row with no visible key gives P = 0 and out = 0. When probs is present it receives P
// (before dropout), negated where dropout dropped the weight: what the backward reads.
inline void attention_forward(TensorRef out, TensorRef probs, TensorRef q, TensorRef k, TensorRef v,
                              TensorRef mask, TensorRef bias, const AttentionParams& p) {
  profile::Scope scope(profile::Kind::Attention);
  check_attention_operands(q, k, v);
  LOOM_ASSERT(out.sizes == q.sizes && out.dtype == q.dtype);
  LOOM_ASSERT(q.device.is_cpu() ? is_head_matrices(out) : out.is_contiguous());
  const Dims scores{q.sizes[0], q.sizes[1], q.sizes[2], k.sizes[2]};
  const Dims saved{scores[0], scores[1], scores[2], p.windowed() ? p.band() : scores[3]};
  LOOM_ASSERT(!probs.data || (probs.sizes == saved && probs.is_contiguous()));
  LOOM_ASSERT(!mask.data || (mask.sizes == scores && mask.dtype == DType::Bool));
  LOOM_ASSERT(!bias.data || (bias.sizes == scores && bias.dtype == q.dtype));
  LOOM_ASSERT(!p.windowed() || p.window_right >= 0);
  if (q.device.is_cpu() && p.windowed())
    return cpu::window_attention_forward(out, probs, q, k, v, mask, bias, p);
  if (q.device.is_cpu()) return cpu::attention_forward(out, probs, q, k, v, mask, bias, p);
  LOOM_ASSERT(!p.windowed());  // the op refuses windows on CUDA
  LOOM_ON_CUDA(cuda::attention_forward(out, probs, q, k, v, mask, bias, p));
}

// From the forward's probs and the same params:
//   grad_v = dropout(P)ᵀ grad_out,  dP = dropout(grad_out vᵀ),
//   dZ = scale * P * (dP - rowsum(dP * P)),  grad_q = dZ k,  grad_k = dZᵀ q,
// grad_k and grad_v summed over the H / KV query heads that share a kv head.
inline void attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v,
                               TensorRef grad_out, TensorRef q, TensorRef k, TensorRef v,
                               TensorRef probs, const AttentionParams& p) {
  profile::Scope scope(profile::Kind::Attention);
  check_attention_operands(q, k, v);
  check_attention_operands(grad_out, k, v);
  LOOM_ASSERT(grad_out.sizes == q.sizes);
  LOOM_ASSERT((probs.data || probs.numel() == 0) && probs.is_contiguous());
  LOOM_ASSERT(!grad_q.data || grad_q.sizes == q.sizes);
  LOOM_ASSERT(!grad_k.data || grad_k.sizes == k.sizes);
  LOOM_ASSERT(!grad_v.data || grad_v.sizes == v.sizes);
  for (const TensorRef* g : {&grad_q, &grad_k, &grad_v})
    LOOM_ASSERT(!g->data || (q.device.is_cpu() ? is_head_matrices(*g) : g->is_contiguous()));
  if (q.device.is_cpu() && p.windowed())
    return cpu::window_attention_backward(grad_q, grad_k, grad_v, grad_out, q, k, v, probs, p);
  if (q.device.is_cpu())
    return cpu::attention_backward(grad_q, grad_k, grad_v, grad_out, q, k, v, probs, p);
  LOOM_ASSERT(!p.windowed());
  LOOM_ON_CUDA(cuda::attention_backward(grad_q, grad_k, grad_v, grad_out, q, k, v, probs, p));
}

// Whether the op layer runs q's attention through the flash kernels: switched on
// (cuda::flash_attention()), a cuda float32 q with head dim <= 128, no window.
inline bool use_flash_attention(const TensorRef& q, const AttentionParams& p) {
  return q.device.is_cuda() && cuda::flash_attention() && q.dtype == DType::F32 &&
         q.sizes[3] <= 128 && !p.windowed();
}

inline void flash_attention_forward(TensorRef out, TensorRef lse, TensorRef q, TensorRef k,
                                    TensorRef v, TensorRef mask, TensorRef bias,
                                    const AttentionParams& p) {
  profile::Scope scope(profile::Kind::Attention);
  check_attention_operands(q, k, v);
  LOOM_ASSERT(use_flash_attention(q, p) && out.sizes == q.sizes && out.is_contiguous());
  LOOM_ASSERT(lse.dtype == DType::F32 && lse.is_contiguous() && lse.numel() == out.numel() / q.sizes[3]);
  LOOM_ON_CUDA(cuda::flash_attention_forward(out, lse, q, k, v, mask, bias, p));
}

inline void flash_attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v,
                                     TensorRef grad_out, TensorRef q, TensorRef k, TensorRef v,
                                     TensorRef out, TensorRef lse, TensorRef mask, TensorRef bias,
                                     const AttentionParams& p) {
  profile::Scope scope(profile::Kind::Attention);
  check_attention_operands(q, k, v);
  check_attention_operands(grad_out, k, v);
  LOOM_ASSERT(use_flash_attention(q, p) && grad_out.sizes == q.sizes && out.is_contiguous());
  LOOM_ASSERT(!grad_q.data || (grad_q.sizes == q.sizes && grad_q.is_contiguous()));
  LOOM_ASSERT(!grad_k.data || (grad_k.sizes == k.sizes && grad_k.is_contiguous()));
  LOOM_ASSERT(!grad_v.data || (grad_v.sizes == v.sizes && grad_v.is_contiguous()));
  LOOM_ON_CUDA(cuda::flash_attention_backward(grad_q, grad_k, grad_v, grad_out, q, k, v, out, lse,
                                              mask, bias, p));
}

}  // namespace loom::kernels
