// CUDA attention (see kernels/attention.h), first version: the (T, S) score blocks are
// materialised. Per call: one batched cuBLAS GEMM for all (b, h) score blocks, a row kernel
// for bias, masks, softmax and dropout (the CPU's rules, Philox stream and sign marking),
// one batched GEMM for the output. The backward runs, for each query head g of a kv group
// in turn, batched GEMMs over (b, kv head), so each kv gradient sums its query heads in
// head order as on the CPU. A flash-style fused kernel that never stores the scores is
// the next step (issue 9).
#include <cmath>

#include "kernels/attention.h"
#include "kernels/cuda/blas.h"
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"
#include "kernels/pointwise.h"

namespace loom::kernels::cuda {
namespace {

struct Shape {
  int64_t B, H, KV, T, S, D;
  int64_t group() const { return H / KV; }
};

// A (B, H, T, S) operand stretched by broadcasting (mask or bias), or absent.
struct Stretched {
  const void* p = nullptr;
  int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
};
Stretched stretched(const TensorRef& t) {
  if (!t.data) return {};
  return {t.data, t.strides[0], t.strides[1], t.strides[2], t.strides[3]};
}

// One query row (bh, i): scores z (scale applied) -> P, in place, and the weights applied
// to v in w (w == P when there is no dropout). Hidden keys (causal, mask) get 0.
template <class T>
__global__ void softmax_rows(T* P, T* W, Stretched mask, Stretched bias, Shape s, bool causal,
                             double dropout_p, uint64_t seed, uint64_t offset, bool mark) {
  __shared__ double dshared[32];
  __shared__ T tshared[32];
  const int64_t row = blockIdx.x;  // (b * H + h) * T + i
  const int64_t i = row % s.T, bh = row / s.T, b = bh / s.H, h = bh % s.H;
  const int64_t visible = causal ? min(max(s.S - s.T + i + 1, int64_t(0)), s.S) : s.S;
  T* z = P + row * s.S;
  const bool* mrow =
      mask.p ? static_cast<const bool*>(mask.p) + b * mask.s0 + h * mask.s1 + i * mask.s2 : nullptr;
  const T* brow =
      bias.p ? static_cast<const T*>(bias.p) + b * bias.s0 + h * bias.s1 + i * bias.s2 : nullptr;
  T m = -INFINITY;
  for (int64_t j = threadIdx.x; j < s.S; j += blockDim.x) {
    if (j >= visible) continue;
    T v = z[j];
    if (brow) v += brow[j * bias.s3];
    if (mrow && !mrow[j * mask.s3]) v = -INFINITY;
    z[j] = v;
    m = v > m ? v : m;
  }
  m = block_max(m, tshared);
  double sum = 0;
  for (int64_t j = threadIdx.x; j < s.S; j += blockDim.x) {
    T e = T(0);
    if (j < visible && m != T(-INFINITY)) e = exp(z[j] - m);
    z[j] = e;
    sum += double(e);
  }
  sum = block_sum(sum, dshared);
  const T inv = m == T(-INFINITY) ? T(0) : T(1.0 / sum);
  const double keep = 1.0 - dropout_p;
  const T keep_scale = T(1.0 / keep);
  for (int64_t j = threadIdx.x; j < s.S; j += blockDim.x) {
    const T pj = z[j] * inv;
    if (dropout_p > 0) {
      const bool kept = philox_uniform01(offset + uint64_t(row * s.S + j), seed) < keep;
      W[row * s.S + j] = kept ? pj * keep_scale : T(0);
      z[j] = (mark && !kept && pj != T(0)) ? -pj : pj;
    } else {
      z[j] = pj;
    }
  }
}

// The forward's weights from sign-marked probs: P / (1 - p) where kept, else 0.
template <class T>
__global__ void weights_from_marked(T* w, const T* P, int64_t n, T keep_scale) {
  LOOM_GRID_STRIDE_LOOP(k, n) w[k] = signbit(P[k]) ? T(0) : P[k] * keep_scale;
}

// dZ rows in place over dW = grad_out vᵀ (see kernels/cpu/attention.cpp, grad_scores_row).
template <class T>
__global__ void grad_scores_rows(T* z, const T* P, int64_t S, bool drop, T keep_scale) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x;
  T* zr = z + row * S;
  const T* pr = P + row * S;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) {
    if (drop) zr[j] = signbit(pr[j]) ? T(0) : zr[j] * keep_scale;
    acc += double(zr[j]) * double(abs(pr[j]));
  }
  const T d = T(block_sum(acc, shared));
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) zr[j] = abs(pr[j]) * (zr[j] - d);
}

// Device pointers to head blocks: x (B, heads, rows, D) at (b, h); blocks (B*heads, T, S).
template <class T>
const void* head(const TensorRef& x, int64_t b, int64_t h) {
  return x.ptr<const T>() + b * x.strides[0] + h * x.strides[1];
}
int64_t ld_of(const TensorRef& x) { return x.sizes[2] <= 1 ? x.sizes[3] : x.strides[2]; }

template <class T>
void forward(const TensorRef& out, const TensorRef& probs, const TensorRef& q, const TensorRef& k,
             const TensorRef& v, const TensorRef& mask, const TensorRef& bias,
             const AttentionParams& p) {
  const Shape s{q.sizes[0], q.sizes[1], k.sizes[1], q.sizes[2], k.sizes[2], q.sizes[3]};
  const int64_t TS = s.T * s.S, BH = s.B * s.H;
  if (BH * s.T == 0) return;
  const int device = q.device.index;
  const bool drop = p.dropout_p > 0, save = probs.data != nullptr;
  Scratch p_scratch(save ? 1 : size_t(BH * TS) * sizeof(T), device);
  Scratch w_scratch(drop ? size_t(BH * TS) * sizeof(T) : 1, device);
  T* P = save ? probs.ptr<T>() : p_scratch.as<T>();
  T* W = drop ? w_scratch.as<T>() : P;
  std::vector<const void*> qa, kb, wa, vb;
  std::vector<void*> zc, oc;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t bh = b * s.H + h, kvh = h / s.group();
      qa.push_back(head<T>(q, b, h));
      kb.push_back(head<T>(k, b, kvh));
      zc.push_back(P + bh * TS);
      wa.push_back(W + bh * TS);
      vb.push_back(head<T>(v, b, kvh));
      oc.push_back(static_cast<void*>(out.ptr<T>() + b * out.strides[0] + h * out.strides[1]));
    }
  const DType dt = q.dtype;
  if (s.S > 0 && s.D > 0)
    gemm_rows(dt, device, false, true, s.T, s.S, s.D, p.scale, qa, ld_of(q), kb, ld_of(k), 0.0, zc,
              s.S);
  else if (s.S > 0)
    cuda::fill(TensorRef{P, dt, q.device, {BH * TS}, {1}}, 0.0);
  if (s.S > 0) {
    softmax_rows<<<unsigned(BH * s.T), kThreads, 0, stream()>>>(
        P, W, stretched(mask), stretched(bias), s, p.causal, p.dropout_p, p.seed, p.offset, save);
    LOOM_CUDA_LAUNCHED();
  }
  if (s.S == 0) {
    cuda::fill(out, 0.0);
    return;
  }
  gemm_rows(dt, device, false, false, s.T, s.D, s.S, 1.0, wa, s.S, vb, ld_of(v), 0.0, oc,
            ld_of(out));
}

template <class T>
void backward(const TensorRef& grad_q, const TensorRef& grad_k, const TensorRef& grad_v,
              const TensorRef& grad_out, const TensorRef& q, const TensorRef& k, const TensorRef& v,
              const TensorRef& probs, const AttentionParams& p) {
  const Shape s{q.sizes[0], q.sizes[1], k.sizes[1], q.sizes[2], k.sizes[2], q.sizes[3]};
  const int64_t TS = s.T * s.S, BH = s.B * s.H, G = s.group();
  const int device = q.device.index;
  const DType dt = q.dtype;
  for (const TensorRef* g : {&grad_k, &grad_v})
    if (g->data) cuda::fill(*g, 0.0);
  if (grad_q.data && (s.S == 0 || s.T == 0)) cuda::fill(grad_q, 0.0);
  if (BH * TS == 0 || s.D == 0) return;
  const bool drop = p.dropout_p > 0;
  const T keep_scale = T(1.0 / (1.0 - p.dropout_p));
  const T* P = probs.ptr<const T>();
  Scratch w_scratch(drop ? size_t(BH * TS) * sizeof(T) : 1, device);
  Scratch dz_scratch(size_t(BH * TS) * sizeof(T), device);
  const T* W = P;
  if (drop) {
    weights_from_marked<<<grid_for(BH * TS), kThreads, 0, stream()>>>(w_scratch.as<T>(), P, BH * TS,
                                                                      keep_scale);
    LOOM_CUDA_LAUNCHED();
    W = w_scratch.as<T>();
  }
  T* dZ = dz_scratch.as<T>();
  // dW = grad_out vᵀ for every (b, h), then dZ in place.
  {
    std::vector<const void*> go, vv;
    std::vector<void*> zz;
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h) {
        go.push_back(head<T>(grad_out, b, h));
        vv.push_back(head<T>(v, b, h / G));
        zz.push_back(dZ + (b * s.H + h) * TS);
      }
    if (grad_q.data || grad_k.data) {
      gemm_rows(dt, device, false, true, s.T, s.S, s.D, 1.0, go, ld_of(grad_out), vv, ld_of(v), 0.0,
                zz, s.S);
      grad_scores_rows<<<unsigned(BH * s.T), kThreads, 0, stream()>>>(dZ, P, s.S, drop, keep_scale);
      LOOM_CUDA_LAUNCHED();
    }
    if (grad_q.data) {  // grad_q = scale * dZ k
      std::vector<const void*> za, kb;
      std::vector<void*> qc;
      for (int64_t b = 0; b < s.B; ++b)
        for (int64_t h = 0; h < s.H; ++h) {
          za.push_back(dZ + (b * s.H + h) * TS);
          kb.push_back(head<T>(k, b, h / G));
          qc.push_back(static_cast<void*>(grad_q.ptr<T>() + (b * s.H + h) * s.T * s.D));
        }
      gemm_rows(dt, device, false, false, s.T, s.D, s.S, p.scale, za, s.S, kb, ld_of(k), 0.0, qc,
                s.D);
    }
  }
  // grad_v += Wᵀ grad_out and grad_k += scale * dZᵀ q, one query head of each group at a time.
  for (int64_t g = 0; g < G; ++g) {
    std::vector<const void*> wa, za, go, qa;
    std::vector<void*> vc, kc;
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t kvh = 0; kvh < s.KV; ++kvh) {
        const int64_t h = kvh * G + g, bh = b * s.H + h;
        wa.push_back(W + bh * TS);
        za.push_back(dZ + bh * TS);
        go.push_back(head<T>(grad_out, b, h));
        qa.push_back(head<T>(q, b, h));
        vc.push_back(grad_v.data
                         ? static_cast<void*>(grad_v.ptr<T>() + (b * s.KV + kvh) * s.S * s.D)
                         : nullptr);
        kc.push_back(grad_k.data
                         ? static_cast<void*>(grad_k.ptr<T>() + (b * s.KV + kvh) * s.S * s.D)
                         : nullptr);
      }
    if (grad_v.data)
      gemm_rows(dt, device, true, false, s.S, s.D, s.T, 1.0, wa, s.S, go, ld_of(grad_out), 1.0, vc,
                s.D);
    if (grad_k.data)
      gemm_rows(dt, device, true, false, s.S, s.D, s.T, p.scale, za, s.S, qa, ld_of(q), 1.0, kc,
                s.D);
  }
}

}  // namespace

void attention_forward(TensorRef out, TensorRef probs, TensorRef q, TensorRef k, TensorRef v,
                       TensorRef mask, TensorRef bias, const AttentionParams& p) {
  dispatch_gpu_f32_f64(q.dtype, "scaled_dot_product_attention",
                       [&]<class T>() { forward<T>(out, probs, q, k, v, mask, bias, p); });
}

void attention_backward(TensorRef grad_q, TensorRef grad_k, TensorRef grad_v, TensorRef grad_out,
                        TensorRef q, TensorRef k, TensorRef v, TensorRef probs,
                        const AttentionParams& p) {
  dispatch_gpu_f32_f64(q.dtype, "scaled_dot_product_attention backward", [&]<class T>() {
    backward<T>(grad_q, grad_k, grad_v, grad_out, q, k, v, probs, p);
  });
}

}  // namespace loom::kernels::cuda
