// Forward + backward of attention, float32: the fused ag::scaled_dot_product_attention
// against the unfused composite of tested ops (matmul, scale, where(-inf), softmax,
// dropout, matmul; k and v repeated along heads for GQA), at 1 and 2 threads.
//
// Per repetition each side runs the forward on leaves q, k, v that require grad, backward
// with a fixed random grad_out, and drops the grads. The two alternate within a thread
// setting, after warm-up; medians are reported. Threads are set with omp_set_num_threads,
// which governs loom's kernels and OpenBLAS alike (loom links OpenBLAS's OpenMP build).
//
// Usage: bench_attention [reps]   (default 10)
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "common.h"

namespace {

using namespace loom;
using ag::Tensor;

struct Config {
  int64_t B, H, KV, T, S, D;
  bool causal;
  double dropout_p;
};

// (B, KV, S, D) -> (B, KV * G, S, D).
Tensor repeat_heads(const Tensor& x, int64_t G) {
  if (G == 1) return x;
  const int64_t B = x.size(0), KV = x.size(1), S = x.size(2), D = x.size(3);
  return x.unsqueeze(2).expand({B, KV, G, S, D}).reshape({B, KV * G, S, D});
}

Tensor composite(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& causal_mask,
                 double dropout_p, kernels::Generator& gen) {
  const int64_t G = q.size(1) / k.size(1);
  Tensor z =
      ag::matmul(q, repeat_heads(k, G).transpose(-1, -2)) * (1.0 / std::sqrt(double(q.size(3))));
  if (causal_mask.defined()) z = ag::where(causal_mask, z, ag::full({}, -INFINITY));
  Tensor p = ag::softmax(z, -1);
  if (dropout_p > 0) p = ag::dropout(p, dropout_p, true, gen);
  return ag::matmul(p, repeat_heads(v, G));
}

struct Problem {
  Config c;
  Tensor q, k, v, grad_out, causal_mask;
  kernels::Generator gen{7};

  explicit Problem(Config c) : c(c) {
    kernels::Generator init(1);
    q = ag::randn({c.B, c.H, c.T, c.D}, init).set_requires_grad();
    k = ag::randn({c.B, c.KV, c.S, c.D}, init).set_requires_grad();
    v = ag::randn({c.B, c.KV, c.S, c.D}, init).set_requires_grad();
    grad_out = ag::randn({c.B, c.H, c.T, c.D}, init);
    if (c.causal) {  // (T, S), T == S here
      const Tensor i = ag::arange(c.T).view({c.T, 1}), j = ag::arange(c.S).view({1, c.S});
      causal_mask = ag::le(j, i);
    }
  }
  void run(bool fused) {
    ag::AttentionOptions opt;
    opt.causal = c.causal;
    opt.dropout_p = c.dropout_p;
    opt.generator = &gen;
    const Tensor y = fused ? ag::scaled_dot_product_attention(q, k, v, opt)
                           : composite(q, k, v, causal_mask, c.dropout_p, gen);
    y.backward(grad_out);
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
  }
};

template <class F>
double time_ms(F&& f) {
  const double t0 = bench::now_ns();
  f();
  return (bench::now_ns() - t0) * 1e-6;
}

void row(const Config& c, int threads, int reps) {
  omp_set_num_threads(threads);
  Problem p(c);
  for (int i = 0; i < 2; ++i) {
    p.run(false);
    p.run(true);
  }
  std::vector<double> t_comp, t_fused;
  for (int i = 0; i < reps; ++i) {
    t_comp.push_back(time_ms([&] { p.run(false); }));
    t_fused.push_back(time_ms([&] { p.run(true); }));
  }
  const double tc = bench::median(t_comp), tf = bench::median(t_fused);
  char shape[96];
  std::snprintf(shape, sizeof shape, "B=%lld H=%lld KV=%lld T=S=%lld D=%lld", (long long)c.B,
                (long long)c.H, (long long)c.KV, (long long)c.T, (long long)c.D);
  std::string variant = c.causal ? "causal" : "-";
  if (c.dropout_p > 0) variant += ", dropout " + std::to_string(c.dropout_p).substr(0, 3);
  std::printf("| %-32s | %-19s | %7d | %12.2f | %8.2f | %7.2fx |\n", shape, variant.c_str(),
              threads, tc, tf, tc / tf);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
  bench::print_settings("bench_attention");
  std::printf("forward + backward, float32, median of %d reps after 2 warm-ups\n\n", reps);
  std::printf(
      "| shape                            | variant             | threads | composite ms | fused "
      "ms | speedup |\n");
  std::printf(
      "|----------------------------------|---------------------|---------|--------------|---------"
      "-|---------|\n");
  const Config configs[] = {
      {32, 4, 4, 64, 64, 32, false, 0.0}, {8, 8, 8, 256, 256, 64, false, 0.0},
      {32, 4, 4, 64, 64, 32, true, 0.1},  {8, 8, 8, 256, 256, 64, true, 0.1},
      {8, 8, 2, 256, 256, 64, true, 0.0},
  };
  for (const Config& c : configs)
    for (int threads : {1, 2}) row(c, threads, reps);
  return 0;
}
