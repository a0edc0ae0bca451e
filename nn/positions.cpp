// Position encodings as ../shared/specs/positions.md (formulas repeated at each function).
// Tables are built on the host in double from the closed forms, then converted to the
// requested dtype, so every dtype rounds the same exact values once.
#include "nn/positions.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "autograd/ops.h"
#include "kernels/error.h"

namespace loom::nn {
namespace {

using ag::Tensor;
using kernels::Dims;
using kernels::DType;

constexpr std::array<const char*, 5> kScalings = {"none", "linear", "ntk", "dynamic", "yarn"};

// Levenshtein distance, for the "did you mean" hint on a misspelt scaling name.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diag = up;
    }
  }
  return row[b.size()];
}

// base^(-2i/d) for i = 0 .. d/2-1.
std::vector<double> plain_inv_freq(double base, int64_t d) {
  std::vector<double> inv_freq(size_t(d / 2));
  for (int64_t i = 0; i < d / 2; ++i)
    inv_freq[size_t(i)] = std::pow(base, -2.0 * double(i) / double(d));
  return inv_freq;
}

// YaRN: θ'_i = (θ_i / s)(1 - e_i) + θ_i e_i, e_i = 1 - clamp((i - low) / (high - low), 0, 1).
std::vector<double> yarn_inv_freq(const RopeConfig& cfg, int64_t d) {
  const auto [low, high] = yarn_ramp_bounds(cfg, d);
  std::vector<double> inv_freq = plain_inv_freq(cfg.base, d);
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolate = 1.0 - ramp;
    inv_freq[i] = inv_freq[i] / cfg.factor * (1.0 - extrapolate) + inv_freq[i] * extrapolate;
  }
  return inv_freq;
}

}  // namespace

Tensor sinusoidal_table(int64_t max_len, int64_t d, DType dtype) {
  LOOM_CHECK(d > 0 && d % 2 == 0, "sinusoidal_table: d_model ", d,
             ": must be even and positive (sin and cos fill pairs of dimensions)");
  LOOM_CHECK(max_len >= 0, "sinusoidal_table: max_len ", max_len, ": must be >= 0");
  std::vector<double> pe(size_t(max_len * d));  // (max_len, d)
  for (int64_t m = 0; m < max_len; ++m) {
    for (int64_t i = 0; i < d / 2; ++i) {
      const double angle = double(m) / std::pow(10000.0, double(2 * i) / double(d));
      pe[size_t(m * d + 2 * i)] = std::sin(angle);
      pe[size_t(m * d + 2 * i + 1)] = std::cos(angle);
    }
  }
  return ag::from_vector(pe, {max_len, d}).to(dtype);
}

void check_rope_config(const RopeConfig& cfg, int64_t head_dim) {
  const auto known = std::find(kScalings.begin(), kScalings.end(), cfg.scaling);
  if (known == kScalings.end()) {
    const char* nearest =
        *std::min_element(kScalings.begin(), kScalings.end(), [&](const char* a, const char* b) {
          return edit_distance(cfg.scaling, a) < edit_distance(cfg.scaling, b);
        });
    throw Error(detail::cat("rope.scaling: \"", cfg.scaling,
                            "\" is not one of none, linear, ntk, dynamic, yarn; did you mean \"",
                            nearest, "\"?"));
  }
  const std::string& s = cfg.scaling;
  LOOM_CHECK(head_dim >= 2 && head_dim % 2 == 0, "rope: head_dim ", head_dim,
             " (d_model / heads): must be even and positive; RoPE rotates pairs of dimensions");
  LOOM_CHECK(cfg.base > 1.0 && std::isfinite(cfg.base), "rope.base: ", cfg.base,
             ": must be a finite number greater than 1");
  LOOM_CHECK(s == "none" || (cfg.factor >= 1.0 && std::isfinite(cfg.factor)),
             "rope.factor: ", cfg.factor, ": must be >= 1 with rope.scaling = \"", s,
             "\" (it is the context extension ratio)");
  LOOM_CHECK(cfg.original_max_len >= 1, "rope.original_max_len: ", cfg.original_max_len,
             ": must be >= 1");
  LOOM_CHECK(!(s == "ntk" || s == "dynamic") || head_dim > 2, "rope.scaling: \"", s,
             "\" needs head_dim > 2 (the base is scaled by a power d/(d-2)); head_dim is ",
             head_dim);
  if (s == "yarn") {
    LOOM_CHECK(cfg.beta_slow > 0.0, "rope.beta_slow: ", cfg.beta_slow, ": must be > 0");
    LOOM_CHECK(cfg.beta_fast > cfg.beta_slow, "rope.beta_fast: ", cfg.beta_fast,
               ": must be greater than rope.beta_slow (", cfg.beta_slow, ")");
  }
  if (cfg.mscale) {
    LOOM_CHECK(s == "yarn", "rope.mscale: only used with rope.scaling = \"yarn\" (it is \"", s,
               "\"); remove the key");
    LOOM_CHECK(*cfg.mscale > 0.0 && std::isfinite(*cfg.mscale), "rope.mscale: ", *cfg.mscale,
               ": must be a finite number > 0");
  }
}

std::pair<double, double> yarn_ramp_bounds(const RopeConfig& cfg, int64_t head_dim) {
  check_rope_config(cfg, head_dim);
  const double d = double(head_dim), L = double(cfg.original_max_len);
  // The dimension index whose wavelength makes r rotations over L.
  auto corr_dim = [&](double r) {
    return d * std::log(L / (r * 2.0 * std::numbers::pi)) / (2.0 * std::log(cfg.base));
  };
  const double low = std::max(std::floor(corr_dim(cfg.beta_fast)), 0.0);
  double high = std::min(std::ceil(corr_dim(cfg.beta_slow)), d / 2.0 - 1.0);
  if (low == high) high += 0.001;  // avoids 0 / 0 in the ramp
  return {low, high};
}

RopeFrequencies rope_frequencies(const RopeConfig& cfg, int64_t head_dim, int64_t seq_len) {
  check_rope_config(cfg, head_dim);
  LOOM_CHECK(seq_len >= 0, "rope_frequencies: seq_len ", seq_len, ": must be >= 0");
  const double d = double(head_dim), s = cfg.factor, L = double(cfg.original_max_len);
  const std::string& method = cfg.scaling;
  RopeFrequencies f;
  if (method == "none") {
    f.inv_freq = plain_inv_freq(cfg.base, head_dim);
  } else if (method == "linear") {  // θ_i / s
    f.inv_freq = plain_inv_freq(cfg.base, head_dim);
    for (double& t : f.inv_freq) t /= s;
  } else if (method == "ntk") {  // base · s^(d/(d-2))
    f.inv_freq = plain_inv_freq(cfg.base * std::pow(s, d / (d - 2.0)), head_dim);
  } else if (method == "dynamic") {  // base · ((s n / L) - (s - 1))^(d/(d-2)) when n > L
    const double n = double(seq_len);
    const double base =
        n > L ? cfg.base * std::pow(s * n / L - (s - 1.0), d / (d - 2.0)) : cfg.base;
    f.inv_freq = plain_inv_freq(base, head_dim);
  } else {  // yarn
    f.inv_freq = yarn_inv_freq(cfg, head_dim);
    f.attention_factor = cfg.mscale.value_or(0.1 * std::log(s) + 1.0);
  }
  return f;
}

std::pair<Tensor, Tensor> rope_tables(const RopeFrequencies& f, int64_t start, int64_t n,
                                      DType dtype) {
  LOOM_CHECK(!f.inv_freq.empty(),
             "rope_tables: no frequencies; build them with rope_frequencies()");
  LOOM_CHECK(start >= 0 && n >= 0, "rope_tables: start ", start, ", n ", n, ": must be >= 0");
  const int64_t half = int64_t(f.inv_freq.size()), D = 2 * half;
  std::vector<double> cos(size_t(n * D)), sin(size_t(n * D));  // (n, D)
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double phi = double(start + t) * f.inv_freq[size_t(i)];
      const double c = std::cos(phi) * f.attention_factor, s = std::sin(phi) * f.attention_factor;
      cos[size_t(t * D + i)] = cos[size_t(t * D + half + i)] = c;
      sin[size_t(t * D + i)] = sin[size_t(t * D + half + i)] = s;
    }
  }
  return {ag::from_vector(cos, {n, D}).to(dtype), ag::from_vector(sin, {n, D}).to(dtype)};
}

Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  LOOM_CHECK(x.dim() >= 2 && x.size(-1) % 2 == 0, "apply_rope: x ", x.sizes(),
             ": expected (..., T, D) with D even");
  const int64_t T = x.size(-2), D = x.size(-1), h = D / 2;
  LOOM_CHECK(cos.sizes() == Dims({T, D}) && sin.sizes() == Dims({T, D}), "apply_rope: x ",
             x.sizes(), ", cos ", cos.sizes(), ", sin ", sin.sizes(),
             ": cos and sin must be (T, D) = ", Dims({T, D}));
  LOOM_CHECK(cos.dtype() == x.dtype() && sin.dtype() == x.dtype(), "apply_rope: x ", x.dtype(),
             ", cos ", cos.dtype(), ", sin ", sin.dtype(),
             ": dtypes differ; build the tables with rope_tables(..., x.dtype())");
  // x * cos + rotate_half(x) * sin, halves written out: with x = [x1, x2], cos = [c1, c2],
  // sin = [s1, s2] it is [x1 c1 - x2 s1, x2 c2 + x1 s2] (no negated copy of x2 needed).
  const Tensor x1 = x.slice(-1, 0, h), x2 = x.slice(-1, h, D);      // (..., T, D/2)
  const Tensor c1 = cos.slice(-1, 0, h), c2 = cos.slice(-1, h, D);  // (T, D/2)
  const Tensor s1 = sin.slice(-1, 0, h), s2 = sin.slice(-1, h, D);  // (T, D/2)
  return ag::concat({x1 * c1 - x2 * s1, x2 * c2 + x1 * s2}, -1);
}

std::vector<double> alibi_slopes(int64_t heads) {
  LOOM_CHECK(heads >= 1, "alibi_slopes: heads ", heads, ": must be >= 1");
  int64_t p = 1;
  while (p * 2 <= heads) p *= 2;  // the largest power of two <= heads
  std::vector<double> slopes;
  for (int64_t k = 1; k <= p; ++k) slopes.push_back(std::exp2(-8.0 * double(k) / double(p)));
  // Not a power of two: the slopes of 2p heads at odd k fill the remaining heads.
  for (int64_t k = 1; int64_t(slopes.size()) < heads; k += 2)
    slopes.push_back(std::exp2(-8.0 * double(k) / double(2 * p)));
  return slopes;
}

Tensor alibi_bias(const std::vector<double>& slopes, int64_t T, int64_t S, bool causal,
                  DType dtype) {
  LOOM_CHECK(!slopes.empty(), "alibi_bias: no slopes; build them with alibi_slopes(heads)");
  LOOM_CHECK(T >= 0 && S >= T, "alibi_bias: T ", T, ", S ", S,
             ": expected 0 <= T <= S (queries are the last T of S positions)");
  const int64_t H = int64_t(slopes.size());
  std::vector<double> bias(size_t(H * T * S));  // (1, H, T, S)
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < T; ++i) {
      const int64_t q = S - T + i;
      for (int64_t j = 0; j < S; ++j) {
        const double dist = causal ? (j <= q ? double(q - j) : 0.0) : double(std::abs(q - j));
        bias[size_t((h * T + i) * S + j)] = -slopes[size_t(h)] * dist;
      }
    }
  }
  return ag::from_vector(bias, {1, H, T, S}).to(dtype);
}

}  // namespace loom::nn
