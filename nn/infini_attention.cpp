#include "nn/infini_attention.h"

#include <vector>

#include "autograd/ops.h"
#include "kernels/error.h"
#include "nn/linear_attention.h"

namespace loom::nn {

Tensor infini_attention(const Tensor& q_local, const Tensor& k_local, const Tensor& q_mem,
                        const Tensor& k_mem, const Tensor& v, const Tensor& gate,
                        const InfiniOptions& o) {
  const Tensor &q = q_local, &k = k_local;
  LOOM_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q.size(0) == k.size(0) &&
                 k.size(0) == v.size(0) && q.size(3) == k.size(3) && k.size(1) == v.size(1) &&
                 k.size(2) == v.size(2) && k.size(1) > 0 && q.size(1) % k.size(1) == 0 &&
                 q_mem.sizes() == q.sizes() && k_mem.sizes() == k.sizes(),
             "infini_attention: q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(),
             ": expected q (B, H, T, D), k (B, KV, S, D), v (B, KV, S, Dv) with H % KV == 0, "
             "and the memory's q and k of the same shapes");
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t KV = k.size(1), S = k.size(2), Dv = v.size(3), N = o.segment;
  LOOM_CHECK(gate.dim() == 1 && gate.size(0) == H, "infini_attention: gate ", gate.sizes(),
             ": expected one β per query head (", H, ")");
  LOOM_CHECK(N >= 1, "infini_attention: segment = ", N, ": must be >= 1");
  LOOM_CHECK(o.k_start + S == o.q_start + T && o.k_start <= o.q_start / N * N,
             "infini_attention: queries at ", o.q_start, "..", o.q_start + T, ", keys at ",
             o.k_start, "..", o.k_start + S,
             ": keys must end with the queries and reach back to the start of the first "
             "query's segment (",
             o.q_start / N * N, ")");
  LOOM_CHECK(o.causal || o.memory == nullptr || o.memory->empty() || o.q_start > 0,
             "infini_attention: a memory carried into a non-causal call");
  Tensor kf = elu_feature_map(k_mem);  // (B, KV, S, D)
  if (o.key_mask.defined()) {
    LOOM_CHECK(o.key_mask.dim() == 4 && o.key_mask.size(1) == 1 && o.key_mask.size(2) == 1 &&
                   o.key_mask.size(3) == S,
               "infini_attention: key_mask ", o.key_mask.sizes(), ": expected (B, 1, 1, ", S, ")");
    kf = kf * o.key_mask.transpose(2, 3).to(k.dtype());  // padding never enters the memory
  }
  const Tensor qf = elu_feature_map(q_mem);
  Tensor M, z;
  if (o.memory != nullptr && !o.memory->empty()) {
    M = o.memory->M, z = o.memory->z;
  } else {
    M = ag::zeros({B, KV, D, Dv}, q.dtype(), q.device());
    z = ag::zeros({B, KV, D, 1}, q.dtype(), q.device());
  }
  const Tensor g = ag::sigmoid(gate).view({1, H, 1, 1});
  const int64_t G = H / KV, end = o.q_start + T;
  std::vector<Tensor> outs;
  for (int64_t p = o.q_start; p < end;) {
    const int64_t seg_lo = p / N * N, seg_hi = std::min(seg_lo + N, end);
    const int64_t q0 = p - o.q_start, q1 = seg_hi - o.q_start;
    const int64_t k0 = std::max(seg_lo, o.k_start) - o.k_start, k1 = seg_hi - o.k_start;
    ag::AttentionOptions local;
    local.causal = o.causal;
    if (o.key_mask.defined()) local.mask = o.key_mask.slice(3, k0, k1);
    if (o.bias.defined()) local.bias = o.bias.slice(2, q0, q1).slice(3, k0, k1);
    local.dropout_p = o.dropout_p;
    local.generator = o.generator;
    const Tensor a_local = ag::scaled_dot_product_attention(q.slice(2, q0, q1), k.slice(2, k0, k1),
                                                            v.slice(2, k0, k1), local);
    const Tensor qs = qf.slice(2, q0, q1);
    const Tensor a_mem =
        ag::matmul(qs, repeat_kv_heads(M, G)) / (ag::matmul(qs, repeat_kv_heads(z, G)) + o.eps);
    outs.push_back(a_local + g * (a_mem - a_local));
    // A completed segment goes into the memory (unless nothing will read it).
    if (seg_hi == seg_lo + N && (seg_hi < end || o.memory != nullptr)) {
      const Tensor ks = kf.slice(2, k0, k1), vs = v.slice(2, k0, k1);
      const Tensor update =
          o.delta_rule ? vs - ag::matmul(ks, M) / (ag::matmul(ks, z) + o.eps) : vs;
      M = M + ag::matmul(ks.transpose(2, 3), update);
      z = z + ag::sum(ks, {2}, /*keepdim=*/true).transpose(2, 3);
    }
    p = seg_hi;
  }
  if (o.memory != nullptr) o.memory->M = M, o.memory->z = z;
  if (outs.empty()) return ag::zeros({B, H, 0, Dv}, q.dtype(), q.device());
  return outs.size() == 1 ? outs[0] : ag::concat(outs, 2);
}

}  // namespace loom::nn
