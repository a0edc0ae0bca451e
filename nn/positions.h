// Position encodings, exactly as ../shared/specs/positions.md: the sinusoidal table
// (Vaswani et al. 2017), RoPE (Su et al. 2021, arXiv 2104.09864) in the rotate-half
// layout of GPT-NeoX / HF Llama with the context-extension methods linear (Chen et al.
// 2023), NTK-aware, Dynamic NTK (HF transformers) and YaRN (Peng et al. 2023, arXiv
// 2309.00071), and ALiBi (Press et al. 2022). Tables are computed in double and converted
// to the requested dtype at the end. RoPE and ALiBi act in self-attention only.
//
// Note [Dynamic NTK with a KV cache]
// Dynamic NTK recomputes the base from the current sequence length n. loom keeps the keys
// UNROTATED in the KV cache and, at every decoding step, rotates all cached keys (positions
// 0..n-1) and the new query with the frequencies of rope_frequencies(cfg, D, n), so that
// incremental decoding equals a full recomputation at every length (the YaRN paper's
// recommendation; HF transformers caches rotated keys instead, whose results differ once
// n > original_max_len). The attention module does this; the functions below only compute
// frequencies and tables for a given n and rotate what they are given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace loom::nn {

// PE[m, 2i] = sin(m / 10000^(2i/d)), PE[m, 2i+1] = cos(m / 10000^(2i/d)) for m < max_len.
// Returns (max_len, d) in dtype; d must be even.
ag::Tensor sinusoidal_table(int64_t max_len, int64_t d, kernels::DType dtype = kernels::DType::F32);

// DESIGN.md [model.rope].
struct RopeConfig {
  double base = 10000.0;
  std::string scaling = "none";              // none | linear | ntk | dynamic | yarn
  double factor = 1.0;                       // s
  int64_t original_max_len = 256;            // L, the context the model was trained on
  double beta_fast = 32.0, beta_slow = 1.0;  // YaRN's correction rotations
  std::optional<double> mscale;              // overrides YaRN's attention factor 0.1 ln(s) + 1
};

// Throws loom::Error naming the offending key for: an unknown scaling name, base <= 1,
// factor < 1 with a scaling other than none, original_max_len < 1, beta_fast <= beta_slow
// or beta_slow <= 0 (yarn), mscale <= 0 or set without yarn, an odd (or < 2) head_dim, and
// head_dim 2 with ntk/dynamic (the exponent d/(d-2) is undefined).
void check_rope_config(const RopeConfig& cfg, int64_t head_dim);

struct RopeFrequencies {
  std::vector<double> inv_freq;   // θ'_i, i = 0 .. D/2-1
  double attention_factor = 1.0;  // a (YaRN; 1 otherwise)
};

// θ'_i and a for the config; seq_len is the current sequence length n (only `dynamic`
// uses it: plain RoPE for n <= L, the NTK base for n above). Checks the config first.
RopeFrequencies rope_frequencies(const RopeConfig& cfg, int64_t head_dim, int64_t seq_len);

// YaRN's ramp bounds (low, high) over the dimension index i, from beta_fast / beta_slow,
// the original base and L; high already includes the +0.001 of the low == high case.
std::pair<double, double> yarn_ramp_bounds(const RopeConfig& cfg, int64_t head_dim);

// cos and sin tables for positions [start, start + n): each (n, D) in the rotate-half layout
// [cos φ_0 .. cos φ_{D/2-1}, cos φ_0 .. cos φ_{D/2-1}], φ_i = m θ'_i, both already multiplied
// by the attention factor a.
std::pair<ag::Tensor, ag::Tensor> rope_tables(const RopeFrequencies& f, int64_t start, int64_t n,
                                              kernels::DType dtype);

// rope(x) = x * cos + rotate_half(x) * sin over the last dim, rotate_half(x) =
// [-x[D/2..D-1], x[0..D/2-1]]. x: (..., T, D), any strides (e.g. the (B, T, H, D) ->
// (B, H, T, D) transposed view attention makes); cos, sin: (T, D), broadcast over the
// leading dims. Differentiable in all three (a composite of slice, mul, add/sub, concat).
ag::Tensor apply_rope(const ag::Tensor& x, const ag::Tensor& cos, const ag::Tensor& sin);

// ALiBi slopes for `heads` heads: 2^(-8k/h), k = 1..h, for a power of two h; otherwise the
// p slopes of p = largest power of two <= h, then the first h - p slopes of 2p heads taken
// at odd k = 1, 3, 5, ...
std::vector<double> alibi_slopes(int64_t heads);

// Additive attention bias (1, H, T, S), H = slopes.size(). Query i sits at absolute
// position q = S - T + i (so a KV-cache step with T = 1 gets the last row); key j at j.
// causal: -slope_h * (q - j) for j <= q and 0 for j > q (the causal mask removes those);
// bidirectional: -slope_h * |q - j|. Requires T <= S.
ag::Tensor alibi_bias(const std::vector<double>& slopes, int64_t T, int64_t S, bool causal,
                      kernels::DType dtype = kernels::DType::F32);

}  // namespace loom::nn
