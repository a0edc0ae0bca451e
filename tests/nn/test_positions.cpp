// Position encodings against ../shared/specs/positions_golden.json (f64 values from an
// independent reference; every case of every method, 1e-6 relative), plus gradchecks of
// apply_rope (including the transposed (B, T, H, D) -> (B, H, T, D) view attention uses),
// Dynamic NTK's switch at original_max_len, table consistency across start offsets, RoPE's
// relative-position property, and the exact error messages of bad configs.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/op_spec.h"
#include "common/specs.h"
#include "nn/positions.h"

namespace loom::test {
namespace {

using namespace loom::ag;
using nlohmann::json;

// The golden file, read once; spec_path fails the test when it is missing (never skips).
const json& golden() {
  static const json data = [] {
    const std::string path = spec_path("positions_golden.json");
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open the golden file ", path);
    return json::parse(in);
  }();
  return data;
}

// Every element of `got` within 1e-6 relative of `want` (plus 1e-12 absolute for zeros).
void check_close(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  const std::vector<double> g = got.to(DType::F64).to_vector<double>();
  REQUIRE_MESSAGE(g.size() == want.size(), what, ": ", g.size(), " values, expected ", want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO(what, " [", i, "]: got ", g[i], ", want ", want[i]);
    CHECK(std::abs(g[i] - want[i]) <= 1e-6 * std::abs(want[i]) + 1e-12);
  }
}

void check_close(const std::vector<double>& got, const std::vector<double>& want,
                 const std::string& what) {
  check_close(from_vector(got, {int64_t(got.size())}), want, what);
}

nn::RopeConfig config_of(const json& c, const std::string& scaling) {
  nn::RopeConfig cfg;
  cfg.base = c["base"].get<double>();
  cfg.scaling = scaling;
  cfg.factor = c["factor"].get<double>();
  cfg.original_max_len = c["original_max_len"].get<int64_t>();
  return cfg;
}

// The spec's formula term by term: x * cos + [-x2, x1] * sin.
Tensor rope_reference(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  const int64_t D = x.size(-1);
  const Tensor rotated = concat({-x.slice(-1, D / 2, D), x.slice(-1, 0, D / 2)}, -1);
  return x * cos + rotated * sin;
}

TEST_CASE("positions: RoPE frequencies, tables and rotations match the golden values") {
  int cases = 0, bounds = 0;
  for (const json& c : golden()["rope"]) {
    const std::string method = c["method"].get<std::string>();
    const int64_t d = c["d"].get<int64_t>();
    if (method == "yarn-ramp-bounds") {
      const auto [low, high] = nn::yarn_ramp_bounds(config_of(c, "yarn"), d);
      INFO("yarn ramp bounds d=", d, " L=", c["original_max_len"].get<int64_t>());
      CHECK(low == c["low"].get<double>());
      CHECK(high == c["high"].get<double>());
      ++bounds;
      continue;
    }
    const int64_t pos = c["position"].get<int64_t>(), n = c["seq_len"].get<int64_t>();
    const std::string name = method + " d=" + std::to_string(d) +
                             " base=" + std::to_string(c["base"].get<double>()) +
                             " m=" + std::to_string(pos) + " n=" + std::to_string(n);
    const nn::RopeFrequencies f = nn::rope_frequencies(config_of(c, method), d, n);
    check_close(f.inv_freq, c["inv_freq"].get<std::vector<double>>(), name + " inv_freq");
    const double a = c["attention_factor"].get<double>();
    CHECK(std::abs(f.attention_factor - a) <= 1e-6 * a);
    // The golden cos/sin include the attention factor, as rope_tables does.
    const auto [cos, sin] = nn::rope_tables(f, pos, 1, DType::F64);  // (1, d)
    check_close(cos, c["cos"].get<std::vector<double>>(), name + " cos");
    check_close(sin, c["sin"].get<std::vector<double>>(), name + " sin");
    const Tensor x = from_vector(c["x"].get<std::vector<double>>(), {1, d});
    const Tensor y = nn::apply_rope(x, cos, sin);
    CHECK(y.dtype() == DType::F64);
    check_close(y, c["rotated"].get<std::vector<double>>(), name + " rotated");
    ++cases;
  }
  CHECK(cases == 75);
  CHECK(bounds == 3);
}

TEST_CASE("positions: sinusoidal rows match the golden values") {
  int cases = 0;
  for (const json& c : golden()["sinusoidal"]) {
    const int64_t d = c["d"].get<int64_t>(), m = c["position"].get<int64_t>();
    const Tensor pe = nn::sinusoidal_table(m + 1, d, DType::F64);  // (m + 1, d)
    CHECK(pe.sizes() == Dims({m + 1, d}));
    check_close(pe.slice(0, m, m + 1), c["pe"].get<std::vector<double>>(),
                "sinusoidal d=" + std::to_string(d) + " m=" + std::to_string(m));
    ++cases;
  }
  CHECK(cases == 10);
  CHECK(nn::sinusoidal_table(4, 6).dtype() == DType::F32);
}

TEST_CASE("positions: ALiBi slopes and bias rows match the golden values") {
  int cases = 0;
  for (const json& c : golden()["alibi"]) {
    const int64_t H = c["heads"].get<int64_t>();
    const std::string name = "alibi heads=" + std::to_string(H);
    const std::vector<double> slopes = nn::alibi_slopes(H);
    check_close(slopes, c["slopes"].get<std::vector<double>>(), name + " slopes");
    std::vector<double> causal5, bidir2;
    for (const json& row : c["causal_query5"])
      for (double v : row) causal5.push_back(v);
    for (const json& row : c["bidirectional_query2_len6"])
      for (double v : row) bidir2.push_back(v);

    const Tensor causal = nn::alibi_bias(slopes, 6, 6, true, DType::F64);  // (1, H, 6, 6)
    CHECK(causal.sizes() == Dims({1, H, 6, 6}));
    check_close(causal.slice(2, 5, 6), causal5, name + " causal query 5");
    // A KV-cache step (T = 1 query over S = 6 keys) gets the last row.
    check_close(nn::alibi_bias(slopes, 1, 6, true, DType::F64), causal5, name + " T=1, S=6");
    // Entries above the diagonal are 0 (the causal mask removes them).
    const std::vector<double> full = causal.to_vector<double>();
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < 6; ++i)
        for (int64_t j = i + 1; j < 6; ++j) CHECK(full[size_t((h * 6 + i) * 6 + j)] == 0.0);

    const Tensor bidir = nn::alibi_bias(slopes, 6, 6, false, DType::F64);
    check_close(bidir.slice(2, 2, 3), bidir2, name + " bidirectional query 2");
    ++cases;
  }
  CHECK(cases == 6);
}

TEST_CASE("positions: apply_rope gradients, including a transposed (B, T, H, D) view") {
  const nn::RopeConfig yarn{.scaling = "yarn", .factor = 4.0, .original_max_len = 16};
  const nn::RopeFrequencies f = nn::rope_frequencies(yarn, 8, 8);
  const std::vector<OpSpec> specs = {
      {.name = "apply_rope x from a (B, T, H, D) -> (B, H, T, D) view",
       .op = [](const Tensors& in) { return nn::apply_rope(in[0], in[1], in[2]); },
       .reference = [](const Tensors& in) { return rope_reference(in[0], in[1], in[2]); },
       .differentiable = {true, false, false},
       .make_inputs =
           [f](DType dtype) {
             kernels::Generator gen(3);
             const Tensor x = randn({2, 5, 3, 8}, gen, dtype).transpose(1, 2);  // (B, H, T, D)
             const auto [cos, sin] = nn::rope_tables(f, 3, 5, dtype);           // (T, D)
             return Tensors{x, cos, sin};
           }},
      {.name = "apply_rope (T, D), a KV-cache step at position 11",
       .op = [](const Tensors& in) { return nn::apply_rope(in[0], in[1], in[2]); },
       .reference = [](const Tensors& in) { return rope_reference(in[0], in[1], in[2]); },
       .differentiable = {true, false, false},
       .make_inputs =
           [f](DType dtype) {
             kernels::Generator gen(4);
             const auto [cos, sin] = nn::rope_tables(f, 11, 1, dtype);  // (1, D)
             return Tensors{randn({2, 1, 8}, gen, dtype), cos, sin};
           }},
      // Any cos/sin (not only rope_tables'), all three inputs differentiable.
      {.name = "apply_rope differentiable in x, cos and sin",
       .shapes = {{2, 5, 6}, {5, 6}, {5, 6}},
       .op = [](const Tensors& in) { return nn::apply_rope(in[0], in[1], in[2]); },
       .reference = [](const Tensors& in) { return rope_reference(in[0], in[1], in[2]); }},
  };
  for (const OpSpec& spec : specs) check_op(spec);
}

TEST_CASE("positions: RoPE scores depend only on the relative position") {
  kernels::Generator gen(9);
  const Tensor q = randn({1, 16}, gen, DType::F64), k = randn({1, 16}, gen, DType::F64);
  const nn::RopeFrequencies f = nn::rope_frequencies({}, 16, 1);
  auto score = [&](int64_t m, int64_t n) {
    const auto [cq, sq] = nn::rope_tables(f, m, 1, DType::F64);
    const auto [ck, sk] = nn::rope_tables(f, n, 1, DType::F64);
    return sum(nn::apply_rope(q, cq, sq) * nn::apply_rope(k, ck, sk)).item<double>();
  };
  CHECK(score(3, 1) == doctest::Approx(score(40, 38)).epsilon(1e-12));
  CHECK(score(0, 5) == doctest::Approx(score(100, 105)).epsilon(1e-12));
  CHECK(std::abs(score(3, 1) - score(3, 2)) > 1e-3);
}

TEST_CASE("positions: rope_tables rows for start..start+n equal the full table's rows") {
  const nn::RopeFrequencies f = nn::rope_frequencies({.scaling = "ntk", .factor = 2.0}, 8, 1);
  const auto [cos_all, sin_all] = nn::rope_tables(f, 0, 12, DType::F64);  // (12, 8)
  const auto [cos, sin] = nn::rope_tables(f, 7, 5, DType::F64);           // (5, 8)
  CHECK(max_abs_diff(cos, cos_all.slice(0, 7, 12)) == 0.0);
  CHECK(max_abs_diff(sin, sin_all.slice(0, 7, 12)) == 0.0);
  // Rotate-half layout: both halves of a row hold the same angles.
  CHECK(max_abs_diff(cos.slice(1, 0, 4), cos.slice(1, 4, 8)) == 0.0);
  CHECK(nn::rope_tables(f, 0, 3, DType::F32).first.dtype() == DType::F32);
}

TEST_CASE("positions: Dynamic NTK is plain RoPE up to original_max_len, NTK-scaled above") {
  const int64_t d = 16, L = 32;
  const double s = 4.0;
  const nn::RopeConfig dynamic{.scaling = "dynamic", .factor = s, .original_max_len = L};
  const nn::RopeConfig none{.factor = s, .original_max_len = L};
  const std::vector<double> plain = nn::rope_frequencies(none, d, 1).inv_freq;
  for (int64_t n : {1, 17, 31, 32}) CHECK(nn::rope_frequencies(dynamic, d, n).inv_freq == plain);
  double previous = plain[1];
  for (int64_t n : {33, 64, 1000}) {
    INFO("n = ", n);
    const double base = 10000.0 * std::pow(s * double(n) / double(L) - (s - 1.0), 16.0 / 14.0);
    const nn::RopeConfig expected{.base = base, .original_max_len = L};
    check_close(nn::rope_frequencies(dynamic, d, n).inv_freq,
                nn::rope_frequencies(expected, d, 1).inv_freq, "dynamic n=" + std::to_string(n));
    const double theta1 = nn::rope_frequencies(dynamic, d, n).inv_freq[1];
    CHECK(theta1 < previous);  // the base grows with n
    previous = theta1;
  }
}

TEST_CASE("positions: YaRN's ramp bounds clamp to d/2 - 1 and widen an empty ramp") {
  // d = 8, base 1e4: corr_dim(r) = 8 ln(L / (2π r)) / (2 ln 1e4).
  // L = 1e5: corr_dim(32) = 2.70 -> low 2; corr_dim(1) = 4.20 -> ceil 5, clamped to 3.
  CHECK(nn::yarn_ramp_bounds({.scaling = "yarn", .factor = 2.0, .original_max_len = 100000}, 8) ==
        std::pair<double, double>(2.0, 3.0));
  // L = 1e6: corr_dim(32) = 3.70 -> low 3; high clamped to 3 == low, so high = 3.001.
  CHECK(nn::yarn_ramp_bounds({.scaling = "yarn", .factor = 2.0, .original_max_len = 1000000}, 8) ==
        std::pair<double, double>(3.0, 3.001));
}

TEST_CASE("positions: YaRN's mscale overrides the attention factor only") {
  nn::RopeConfig cfg{.scaling = "yarn", .factor = 8.0, .original_max_len = 64};
  const nn::RopeFrequencies plain = nn::rope_frequencies(cfg, 32, 1);
  CHECK(plain.attention_factor == doctest::Approx(0.1 * std::log(8.0) + 1.0).epsilon(1e-15));
  cfg.mscale = 1.25;
  const nn::RopeFrequencies scaled = nn::rope_frequencies(cfg, 32, 1);
  CHECK(scaled.attention_factor == 1.25);
  CHECK(scaled.inv_freq == plain.inv_freq);
  const auto [cos, sin] = nn::rope_tables(scaled, 0, 1, DType::F64);
  check_close(cos, std::vector<double>(32, 1.25), "cos at m = 0 is a");
  check_close(sin, std::vector<double>(32, 0.0), "sin at m = 0");
}

TEST_CASE("positions: YaRN's attention factor reaches the scores once, as a squared") {
  // q and k are both rotated with tables that carry a, so q·k scales by a², not a or a⁴.
  const nn::RopeConfig cfg{.scaling = "yarn", .factor = 4.0, .original_max_len = 16};
  const nn::RopeFrequencies f = nn::rope_frequencies(cfg, 8, 64);
  nn::RopeFrequencies unit = f;
  unit.attention_factor = 1.0;
  Generator gen(47);
  const Tensor q = randn({1, 2, 40, 8}, gen, DType::F64), k = randn({1, 2, 40, 8}, gen, DType::F64);
  auto scores = [&](const nn::RopeFrequencies& freq) {
    const auto [cos, sin] = nn::rope_tables(freq, 0, 40, DType::F64);
    return matmul(nn::apply_rope(q, cos, sin), nn::apply_rope(k, cos, sin).transpose(2, 3));
  };
  const double a = f.attention_factor;
  CHECK(a == doctest::Approx(0.1 * std::log(4.0) + 1.0).epsilon(1e-15));
  CHECK(max_abs_diff(scores(f), scores(unit) * (a * a)) < 1e-12);
}

TEST_CASE("positions: bad configs and inputs give errors naming the key") {
  auto check_cfg = [](nn::RopeConfig cfg, int64_t head_dim, const std::string& text) {
    check_error([&] { nn::check_rope_config(cfg, head_dim); }, text);
    check_error([&] { nn::rope_frequencies(cfg, head_dim, 1); }, text);
  };
  check_cfg({.scaling = "yam"}, 8,
            "rope.scaling: \"yam\" is not one of none, linear, ntk, dynamic, yarn; "
            "did you mean \"yarn\"?");
  check_cfg({.scaling = "linaer"}, 8, "did you mean \"linear\"?");
  check_cfg({.scaling = "linear", .factor = 0.5}, 8,
            "rope.factor: 0.5: must be >= 1 with rope.scaling = \"linear\" "
            "(it is the context extension ratio)");
  check_cfg({}, 7,
            "rope: head_dim 7 (d_model / heads): must be even and positive; "
            "RoPE rotates pairs of dimensions");
  check_cfg({.base = 1.0}, 8, "rope.base: 1: must be a finite number greater than 1");
  check_cfg({.scaling = "yarn", .factor = 2.0, .original_max_len = 0}, 8,
            "rope.original_max_len: 0: must be >= 1");
  check_cfg({.scaling = "ntk", .factor = 2.0}, 2,
            "rope.scaling: \"ntk\" needs head_dim > 2 (the base is scaled by a power d/(d-2)); "
            "head_dim is 2");
  check_cfg({.scaling = "yarn", .factor = 2.0, .beta_fast = 1.0, .beta_slow = 32.0}, 8,
            "rope.beta_fast: 1: must be greater than rope.beta_slow (32)");
  check_cfg({.scaling = "yarn", .factor = 2.0, .beta_slow = 0.0}, 8,
            "rope.beta_slow: 0: must be > 0");
  check_cfg(
      {.scaling = "linear", .factor = 2.0, .mscale = 1.0}, 8,
      "rope.mscale: only used with rope.scaling = \"yarn\" (it is \"linear\"); remove the key");
  check_cfg({.scaling = "yarn", .factor = 2.0, .mscale = -1.0}, 8,
            "rope.mscale: -1: must be a finite number > 0");
  // factor < 1 is harmless without scaling (the golden cases use factor 4 with none).
  nn::check_rope_config({.factor = 0.5}, 8);
  check_error([] { nn::rope_frequencies({}, 8, -1); },
              "rope_frequencies: seq_len -1: must be >= 0");

  const nn::RopeFrequencies f = nn::rope_frequencies({}, 8, 1);
  const auto [cos, sin] = nn::rope_tables(f, 0, 4, DType::F32);  // (4, 8)
  check_error(
      [&] {
        nn::apply_rope(zeros({2, 4, 7}), cos, sin);
      },
      "apply_rope: x [2,4,7]: expected (..., T, D) with D even");
  check_error(
      [&] {
        nn::apply_rope(zeros({2, 3, 8}), cos, sin);
      },
      "apply_rope: x [2,3,8], cos [4,8], sin [4,8]: cos and sin must be (T, D) = [3,8]");
  check_error(
      [&] {
        nn::apply_rope(zeros({2, 4, 8}, DType::F64), cos, sin);
      },
      "apply_rope: x float64, cos float32, sin float32: dtypes differ; build the tables "
      "with rope_tables(..., x.dtype())");
  check_error([] { nn::sinusoidal_table(4, 7); },
              "sinusoidal_table: d_model 7: must be even and positive");
  check_error([] { nn::alibi_slopes(0); }, "alibi_slopes: heads 0: must be >= 1");
  check_error([] { nn::alibi_bias({0.5}, 4, 3, true); },
              "alibi_bias: T 4, S 3: expected 0 <= T <= S (queries are the last T of S positions)");
}

}  // namespace
}  // namespace loom::test
