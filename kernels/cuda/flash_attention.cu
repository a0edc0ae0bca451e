// Flash-style attention on CUDA (see kernels/attention.h): the (T, S) scores are never
// stored. One warp per query row (forward, grad_q) or per key row (grad_k, grad_v); lane l
// holds elements l, l + 32, ... of the head dim (D <= 128), dot products are warp sums.
//
//   forward: for each visible key j in order, z = scale q·k_j + bias (mask: hidden), an
//     online softmax (running max m and sum l, the output rescaled when m grows) whose
//     output adds exp(z - m) v_j only for keys dropout keeps; out = o / (l (1 - p)),
//     lse = m + log l. Same P, same mask draws (Philox counter of (b, h, i, j)) as the
//     materialised kernels.
//   backward: Δ_i = grad_out_i · out_i (= Σ_j P_ij dP_ij, also with dropout); with
//     P_ij = exp(z_ij - lse_i), dP_ij = kept ? grad_out_i·v_j / (1 - p) : 0 and
//     dZ_ij = P_ij (dP_ij - Δ_i): grad_q_i = scale Σ_j dZ_ij k_j (a warp per query row),
//     grad_v_j = Σ_h Σ_i W_ij grad_out_i and grad_k_j = scale Σ_h Σ_i dZ_ij q_i (a warp per
//     key row, the group's query heads in head order, then queries in order): no atomics,
//     so results are deterministic.
#include <cmath>

#include "kernels/attention.h"
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"
#include "kernels/pointwise.h"

namespace loom::kernels::cuda {
namespace {

constexpr int kRowsPerBlock = 4;  // warps per block: each takes one row

// Rows of a (B, heads, rows, D) operand with a contiguous head dim.
struct Rows {
  const float* p;
  int64_t s0, s1, s2;
  __device__ const float* row(int64_t b, int64_t h, int64_t i) const {
    return p + b * s0 + h * s1 + i * s2;
  }
};
Rows rows_of(const TensorRef& t) {
  return {t.ptr<const float>(), t.strides[0], t.strides[1], t.strides[2]};
}

// A (B, H, T, S) mask or bias stretched by broadcasting, or absent (p == nullptr).
struct Scores {
  const void* p = nullptr;
  int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  __device__ int64_t at(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return b * s0 + h * s1 + i * s2 + j * s3;
  }
};
Scores scores_of(const TensorRef& t) {
  if (!t.data) return {};
  return {t.data, t.strides[0], t.strides[1], t.strides[2], t.strides[3]};
}

struct Problem {
  int64_t B, H, KV, T, S, D;
  float scale;
  bool causal;
  float keep;  // 1 - dropout_p
  bool drop;
  uint64_t seed, offset;
  Scores mask, bias;
  __host__ __device__ int64_t group() const { return H / KV; }
  // The number of keys query i sees under the causal rule (end-aligned), else S.
  __device__ int64_t visible(int64_t i) const {
    return causal ? min(max(S - T + i + 1, int64_t(0)), S) : S;
  }
  // scale q·k + bias for query i of head h and key j, or -inf where the mask hides j.
  __device__ float score(float dot, int64_t b, int64_t h, int64_t i, int64_t j) const {
    if (mask.p && !static_cast<const bool*>(mask.p)[mask.at(b, h, i, j)]) return -INFINITY;
    float z = dot * scale;
    if (bias.p) z += static_cast<const float*>(bias.p)[bias.at(b, h, i, j)];
    return z;
  }
  __device__ bool kept(int64_t b, int64_t h, int64_t i, int64_t j) const {
    if (!drop) return true;
    return philox_uniform01(offset + uint64_t(((b * H + h) * T + i) * S + j), seed) < double(keep);
  }
};

__device__ inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// x's row into registers: element lane + 32 r, 0 past D.
template <int R>
__device__ inline void load_row(float (&dst)[R], const float* x, int64_t D) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t d = lane + 32 * r;
    dst[r] = d < D ? x[d] : 0.f;
  }
}

template <int R>
__device__ inline float dot_row(const float (&a)[R], const float* x, int64_t D) {
  const int lane = threadIdx.x % 32;
  float acc = 0.f;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t d = lane + 32 * r;
    if (d < D) acc += a[r] * x[d];
  }
  return warp_sum(acc);
}

template <int R>
__device__ inline void store_row(float* x, const float (&src)[R], float factor, int64_t D) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t d = lane + 32 * r;
    if (d < D) x[d] = src[r] * factor;
  }
}

// grid (rows / kRowsPerBlock, B * H): out (B, H, T, D) and lse (B, H, T), contiguous.
template <int R>
__global__ void flash_forward(float* out, float* lse, Rows q, Rows k, Rows v, Problem s) {
  const int64_t bh = blockIdx.y, b = bh / s.H, h = bh % s.H, kvh = h / s.group();
  const int64_t i = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (i >= s.T) return;
  const int lane = threadIdx.x % 32;
  float qi[R], o[R];
  load_row(qi, q.row(b, h, i), s.D);
#pragma unroll
  for (int r = 0; r < R; ++r) o[r] = 0.f;
  float m = -INFINITY, l = 0.f;
  for (int64_t j = 0, n = s.visible(i); j < n; ++j) {
    const float* kj = k.row(b, kvh, j);
    const float z = s.score(dot_row(qi, kj, s.D), b, h, i, j);
    if (z == -INFINITY) continue;  // hidden, or a -inf bias: weight 0
    if (z > m) {
      const float alpha = m == -INFINITY ? 0.f : expf(m - z);
      l *= alpha;
#pragma unroll
      for (int r = 0; r < R; ++r) o[r] *= alpha;
      m = z;
    }
    const float e = expf(z - m);
    l += e;
    if (s.kept(b, h, i, j)) {
      const float* vj = v.row(b, kvh, j);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t d = lane + 32 * r;
        if (d < s.D) o[r] += e * vj[d];
      }
    }
  }
  float* orow = out + (bh * s.T + i) * s.D;
  if (m == -INFINITY) {  // no visible key: P = 0, out = 0
    store_row(orow, o, 0.f, s.D);
    if (lane == 0) lse[bh * s.T + i] = -INFINITY;
    return;
  }
  store_row(orow, o, 1.f / (l * s.keep), s.D);
  if (lane == 0) lse[bh * s.T + i] = m + logf(l);
}

// Δ (B, H, T) = rowsum(grad_out * out): a warp per row.
template <int R>
__global__ void flash_delta(float* delta, Rows grad_out, const float* out, Problem s) {
  const int64_t bh = blockIdx.y, b = bh / s.H, h = bh % s.H;
  const int64_t i = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (i >= s.T) return;
  float gi[R];
  load_row(gi, grad_out.row(b, h, i), s.D);
  const float d = dot_row(gi, out + (bh * s.T + i) * s.D, s.D);
  if (threadIdx.x % 32 == 0) delta[bh * s.T + i] = d;
}

// grad_q (B, H, T, D), contiguous: a warp per query row.
template <int R>
__global__ void flash_grad_q(float* grad_q, Rows q, Rows k, Rows v, Rows grad_out,
                             const float* lse, const float* delta, Problem s) {
  const int64_t bh = blockIdx.y, b = bh / s.H, h = bh % s.H, kvh = h / s.group();
  const int64_t i = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (i >= s.T) return;
  const int lane = threadIdx.x % 32;
  float qi[R], gi[R], dq[R];
  load_row(qi, q.row(b, h, i), s.D);
  load_row(gi, grad_out.row(b, h, i), s.D);
#pragma unroll
  for (int r = 0; r < R; ++r) dq[r] = 0.f;
  const float L = lse[bh * s.T + i], di = delta[bh * s.T + i];
  if (L != -INFINITY) {
    for (int64_t j = 0, n = s.visible(i); j < n; ++j) {
      const float* kj = k.row(b, kvh, j);
      const float z = s.score(dot_row(qi, kj, s.D), b, h, i, j);
      if (z == -INFINITY) continue;
      const float p = expf(z - L);
      const float dw = dot_row(gi, v.row(b, kvh, j), s.D);
      const float dp = s.kept(b, h, i, j) ? dw / s.keep : 0.f;
      const float dz = p * (dp - di);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t d = lane + 32 * r;
        if (d < s.D) dq[r] += dz * kj[d];
      }
    }
  }
  store_row(grad_q + (bh * s.T + i) * s.D, dq, s.scale, s.D);
}

// grad_k, grad_v (B, KV, S, D), contiguous (either may be absent): a warp per key row.
template <int R>
__global__ void flash_grad_kv(float* grad_k, float* grad_v, Rows q, Rows k, Rows v,
                              Rows grad_out, const float* lse, const float* delta, Problem s) {
  const int64_t bkv = blockIdx.y, b = bkv / s.KV, kvh = bkv % s.KV;
  const int64_t j = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (j >= s.S) return;
  const int lane = threadIdx.x % 32;
  float kj[R], vj[R], dk[R], dv[R];
  load_row(kj, k.row(b, kvh, j), s.D);
  load_row(vj, v.row(b, kvh, j), s.D);
#pragma unroll
  for (int r = 0; r < R; ++r) dk[r] = dv[r] = 0.f;
  // Causal: query i sees key j iff j <= S - T + i.
  const int64_t first = s.causal ? max(j - (s.S - s.T), int64_t(0)) : 0;
  for (int64_t g = 0; g < s.group(); ++g) {
    const int64_t h = kvh * s.group() + g, bh = b * s.H + h;
    for (int64_t i = first; i < s.T; ++i) {
      const float* qi = q.row(b, h, i);
      const float z = s.score(dot_row(kj, qi, s.D), b, h, i, j);
      if (z == -INFINITY) continue;
      const float* gi = grad_out.row(b, h, i);
      const float p = expf(z - lse[bh * s.T + i]);
      const float dw = dot_row(vj, gi, s.D);
      const bool kept = s.kept(b, h, i, j);
      const float w = kept ? p / s.keep : 0.f;
      const float dz = p * ((kept ? dw / s.keep : 0.f) - delta[bh * s.T + i]);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t d = lane + 32 * r;
        if (d < s.D) {
          dv[r] += w * gi[d];
          dk[r] += dz * qi[d];
        }
      }
    }
  }
  const int64_t at = (bkv * s.S + j) * s.D;
  if (grad_k) store_row(grad_k + at, dk, s.scale, s.D);
  if (grad_v) store_row(grad_v + at, dv, 1.f, s.D);
}

Problem problem_of(const TensorRef& q, const TensorRef& k, const TensorRef& mask,
                   const TensorRef& bias, const AttentionParams& p) {
  Problem s;
  s.B = q.sizes[0], s.H = q.sizes[1], s.KV = k.sizes[1], s.T = q.sizes[2], s.S = k.sizes[2];
  s.D = q.sizes[3];
  s.scale = float(p.scale);
  s.causal = p.causal;
  s.drop = p.dropout_p > 0;
  s.keep = float(1.0 - p.dropout_p);
  s.seed = p.seed, s.offset = p.offset;
  s.mask = scores_of(mask), s.bias = scores_of(bias);
  return s;
}

dim3 grid_of(int64_t rows, int64_t heads) {
  LOOM_CHECK(heads <= 65535, "flash attention: ", heads,
             " (batch x heads) blocks exceed the grid's 65535; use smaller batches");
  return dim3(unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), unsigned(heads));
}

// Calls f.template operator()<R>() with R = ceil(D / 32), 1..4.
template <class F>
void dispatch_rows(int64_t D, F&& f) {
  switch ((D + 31) / 32) {
    case 0:
    case 1: return f.template operator()<1>();
    case 2: return f.template operator()<2>();
    case 3: return f.template operator()<3>();
    default: return f.template operator()<4>();
  }
}

}  // namespace

void flash_attention_forward(TensorRef out, TensorRef lse, TensorRef q, TensorRef k, TensorRef v,
                             TensorRef mask, TensorRef bias, const AttentionParams& p) {
  const Problem s = problem_of(q, k, mask, bias, p);
  if (s.B * s.H * s.T == 0) return;
  dispatch_rows(s.D, [&]<int R>() {
    flash_forward<R><<<grid_of(s.T, s.B * s.H), 32 * kRowsPerBlock, 0, stream()>>>(
        out.ptr<float>(), lse.ptr<float>(), rows_of(q), rows_of(k), rows_of(v), s);
    LOOM_CUDA_LAUNCHED();
  });
}

void flash_attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v,
                              TensorRef grad_out, TensorRef q, TensorRef k, TensorRef v,
                              TensorRef out, TensorRef lse, TensorRef mask, TensorRef bias,
                              const AttentionParams& p) {
  const Problem s = problem_of(q, k, mask, bias, p);
  if (s.T == 0 || s.S == 0) {  // nothing attends: every gradient is 0
    for (const TensorRef* g : {&grad_q, &grad_k, &grad_v})
      if (g->data) cuda::fill(*g, 0.0);
    return;
  }
  if (s.B * s.H == 0) return;
  Scratch delta(size_t(s.B * s.H * s.T) * sizeof(float), q.device.index);
  dispatch_rows(s.D, [&]<int R>() {
    flash_delta<R><<<grid_of(s.T, s.B * s.H), 32 * kRowsPerBlock, 0, stream()>>>(
        delta.as<float>(), rows_of(grad_out), out.ptr<const float>(), s);
    LOOM_CUDA_LAUNCHED();
    if (grad_q.data) {
      flash_grad_q<R><<<grid_of(s.T, s.B * s.H), 32 * kRowsPerBlock, 0, stream()>>>(
          grad_q.ptr<float>(), rows_of(q), rows_of(k), rows_of(v), rows_of(grad_out),
          lse.ptr<const float>(), delta.as<const float>(), s);
      LOOM_CUDA_LAUNCHED();
    }
    if (grad_k.data || grad_v.data) {
      flash_grad_kv<R><<<grid_of(s.S, s.B * s.KV), 32 * kRowsPerBlock, 0, stream()>>>(
          grad_k.data ? grad_k.ptr<float>() : nullptr, grad_v.data ? grad_v.ptr<float>() : nullptr,
          rows_of(q), rows_of(k), rows_of(v), rows_of(grad_out), lse.ptr<const float>(),
          delta.as<const float>(), s);
      LOOM_CUDA_LAUNCHED();
    }
  });
}

}  // namespace loom::kernels::cuda
