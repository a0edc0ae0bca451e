// References for the fused attention op's tests: the unfused composite (matmul, scale,
// bias, where(-inf), softmax, dropout, matmul, k and v repeated along heads), masks and
// ALiBi biases built from tested ops, and gradients through fresh leaves.
#pragma once

#include <cmath>
#include <functional>

#include "autograd/ops.h"
#include "common/op_spec.h"
#include "kernels/random.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace loom::test {
namespace attention_reference {
using namespace loom::ag;

// A bool tensor from 0/1 values.
inline Tensor bool_mask(const std::vector<int64_t>& bits, const Dims& shape) {
  return ne(from_vector(bits, shape), zeros({}, DType::I64));
}

// (T, S) bool: visible(i, j) for query i and key j.
inline Tensor mask_of(int64_t T, int64_t S, const std::function<bool(int64_t, int64_t)>& visible) {
  std::vector<int64_t> bits;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) bits.push_back(visible(i, j));
  return bool_mask(bits, {T, S});
}

// (T, S): key j is visible to query i iff j <= S - T + i.
inline Tensor causal_mask(int64_t T, int64_t S) {
  return mask_of(T, S, [&](int64_t i, int64_t j) { return j <= S - T + i; });
}

// (B, KV, S, D) -> (B, KV * G, S, D), each kv head repeated G times in a row.
inline Tensor repeat_heads(const Tensor& x, int64_t G) {
  const int64_t B = x.size(0), KV = x.size(1), S = x.size(2), D = x.size(3);
  return x.unsqueeze(2).expand({B, KV, G, S, D}).reshape({B, KV * G, S, D});
}

// The unfused reference, from tested ops.
inline Tensor composite(const Tensor& q, const Tensor& k, const Tensor& v,
                        const ag::AttentionOptions& opt) {
  const int64_t G = q.size(1) / k.size(1), T = q.size(2), S = k.size(2);
  const double scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(q.size(3)));
  Tensor z = matmul(q, repeat_heads(k, G).transpose(-1, -2)) * scale;  // z: (B, H, T, S)
  if (opt.bias.defined()) z = z + opt.bias;
  const Tensor neg_inf = full({}, -INFINITY, z.dtype());
  if (opt.mask.defined()) z = where(opt.mask, z, neg_inf);
  if (opt.causal) z = where(causal_mask(T, S), z, neg_inf);
  Tensor p = softmax(z, -1);
  if (opt.dropout_p > 0) {  // p * fill_bernoulli's mask: the stream the fused kernel draws
    Tensor mask = empty(p.sizes(), p.dtype());
    kernels::fill_bernoulli(mask.ref(), *opt.generator, 1.0 - opt.dropout_p,
                            1.0 / (1.0 - opt.dropout_p));
    p = p * mask;
  }
  return matmul(p, repeat_heads(v, G));
}

// ALiBi-style bias (1, H, T, S): -slope_h * |(S - T + i) - j|, slope_h = 2^(-8 (h+1) / H).
inline Tensor alibi_bias(int64_t H, int64_t T, int64_t S) {
  std::vector<double> b;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j)
        b.push_back(-std::pow(2.0, -8.0 * double(h + 1) / double(H)) *
                    std::abs(double(S - T + i - j)));
  return from_vector(b, {1, H, T, S});
}

// Gradients of sum(f(q, k, v) * r) for fresh leaves holding q, k, v's values.
inline Tensors grads_of(const std::function<Tensor(const Tensors&)>& f, const Tensors& in,
                        const Tensor& r) {
  Tensors leaves;
  for (const Tensor& x : in) leaves.push_back(x.detach().set_requires_grad());
  sum(f(leaves) * r).backward();
  Tensors g;
  for (const Tensor& x : leaves) g.push_back(x.grad());
  return g;
}

// Runs `run` on 2 threads, then on 1, and checks the results are bitwise equal.
inline void check_thread_count_independent(const std::function<Tensors()>& run) {
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const Tensors two = run();
  omp_set_num_threads(1);
  const Tensors one = run();
  omp_set_num_threads(threads);
  REQUIRE(one.size() == two.size());
  for (size_t i = 0; i < one.size(); ++i) CHECK(max_abs_diff(one[i], two[i]) == 0);
#else
  (void)run;
#endif
}

}  // namespace attention_reference
using namespace attention_reference;
}  // namespace loom::test
