#include "nn/linear_attention.h"

#include <vector>

#include "autograd/ops.h"
#include "kernels/error.h"

namespace loom::nn {
namespace {

// (C, C) lower-triangular (diagonal included) 0/1 matrix in dtype.
Tensor lower_triangle(int64_t C, kernels::DType dtype, kernels::Device device) {
  std::vector<double> bits(size_t(C * C), 0.0);
  for (int64_t i = 0; i < C; ++i)
    for (int64_t j = 0; j <= i; ++j) bits[size_t(i * C + j)] = 1.0;
  return ag::from_vector(bits, {C, C}).to(dtype).to(device);
}

}  // namespace

Tensor repeat_kv_heads(const Tensor& x, int64_t G) {
  if (G == 1) return x;
  const int64_t B = x.size(0), KV = x.size(1), S = x.size(2), X = x.size(3);
  return x.unsqueeze(2).expand({B, KV, G, S, X}).reshape({B, KV * G, S, X});
}

Tensor elu_feature_map(const Tensor& x) {
  return ag::relu(x) + ag::exp(ag::minimum(x, ag::zeros({}, x.dtype(), x.device())));
}

Tensor linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                        const LinearAttentionOptions& o) {
  LOOM_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q.size(0) == k.size(0) &&
                 k.size(0) == v.size(0) && q.size(3) == k.size(3) && k.size(1) == v.size(1) &&
                 k.size(2) == v.size(2) && k.size(1) > 0 && q.size(1) % k.size(1) == 0,
             "linear_attention: q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(),
             ": expected q (B, H, T, D), k (B, KV, S, D), v (B, KV, S, Dv) with H % KV == 0");
  LOOM_CHECK(!o.causal || q.size(2) == k.size(2), "linear_attention: causal with q ", q.sizes(),
             " and k ", k.sizes(),
             ": queries and keys must be the same tokens (T == S); earlier "
             "keys enter through options.state");
  LOOM_CHECK(o.causal || o.state == nullptr,
             "linear_attention: a decoding state is for the causal form only");
  LOOM_CHECK(o.chunk >= 1, "linear_attention: chunk = ", o.chunk, ": must be >= 1");
  const int64_t G = q.size(1) / k.size(1), T = q.size(2);
  Tensor kf = repeat_kv_heads(k, G), vf = repeat_kv_heads(v, G);  // (B, H, S, D), (B, H, S, Dv)
  if (o.key_mask.defined()) {
    LOOM_CHECK(o.key_mask.dim() == 4 && o.key_mask.size(1) == 1 && o.key_mask.size(2) == 1 &&
                   o.key_mask.size(3) == k.size(2),
               "linear_attention: key_mask ", o.key_mask.sizes(),
               ": expected (B, 1, 1, S) with S = ", k.size(2));
    kf = kf * o.key_mask.transpose(2, 3).to(k.dtype());  // masked keys: φ(k) = 0
  }
  if (!o.causal) {
    const Tensor kv = ag::matmul(kf.transpose(2, 3), vf);                 // (B, H, D, Dv)
    const Tensor z = ag::sum(kf, {2}, /*keepdim=*/true).transpose(2, 3);  // (B, H, D, 1)
    return ag::matmul(q, kv) / (ag::matmul(q, z) + o.eps);
  }
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Dv = v.size(3);
  if (T == 0) return ag::zeros({B, H, 0, Dv}, q.dtype(), q.device());
  Tensor kv, z;  // (B, H, D, Dv), (B, H, D, 1)
  if (o.state != nullptr && !o.state->empty()) {
    kv = o.state->kv;
    z = o.state->z.unsqueeze(3);
  } else {
    kv = ag::zeros({B, H, D, Dv}, q.dtype(), q.device());
    z = ag::zeros({B, H, D, 1}, q.dtype(), q.device());
  }
  std::vector<Tensor> outs;
  // One mask for every chunk; a shorter last chunk uses its top-left corner.
  const Tensor tril = lower_triangle(std::min(o.chunk, T), q.dtype(), q.device());
  for (int64_t t0 = 0; t0 < T; t0 += o.chunk) {
    const int64_t t1 = std::min(T, t0 + o.chunk), C = t1 - t0;
    const Tensor qc = q.slice(2, t0, t1), kc = kf.slice(2, t0, t1), vc = vf.slice(2, t0, t1);
    const Tensor a = ag::matmul(qc, kc.transpose(2, 3)) * tril.slice(0, 0, C).slice(1, 0, C);
    const Tensor num = ag::matmul(a, vc) + ag::matmul(qc, kv);                 // (B, H, C, Dv)
    const Tensor den = ag::sum(a, {3}, /*keepdim=*/true) + ag::matmul(qc, z);  // (B, H, C, 1)
    outs.push_back(num / (den + o.eps));
    kv = kv + ag::matmul(kc.transpose(2, 3), vc);
    z = z + ag::sum(kc, {2}, /*keepdim=*/true).transpose(2, 3);
  }
  if (o.state != nullptr) {
    o.state->kv = kv;
    o.state->z = z.squeeze(3);
  }
  return outs.size() == 1 ? outs[0] : ag::concat(outs, 2);
}

}  // namespace loom::nn
