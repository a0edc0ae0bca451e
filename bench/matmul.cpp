// Forward + backward of one product through the autograd versus the same three raw
// cblas_sgemm calls, at Transformer shapes (C = 256, FFN = 1024, 4096 tokens).
//
//   matmul: C = A B,    dA = G B^T,  dB = A^T G      A (M, K), B (K, N)
//   linear: Y = X W^T,  dX = G W,    dW = G^T X      X (M, K), W (N, K)
//
// The autograd side creates leaves requiring grad once, then per repetition runs the
// forward, backward with a ones gradient (made once) and drops the grads; that is 3 GEMMs
// plus the allocations (from the caching allocator), tape nodes and views. The raw side
// calls cblas_sgemm three times on preallocated buffers. The two are timed alternately,
// after warm-up, and the medians are reported. "linear+bias" adds a bias (broadcast copy
// before the GEMM, row sum in backward) against the same raw GEMMs, to show its cost.
//
// Usage: bench_matmul [reps]   (default 15)
#include <cblas.h>

#include <cstdio>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "common.h"

namespace {

using namespace loom;
using ag::Tensor;

struct Shape {
  int M, K, N;
};

// The three raw GEMMs of one forward + backward; `linear` picks linear's operand layouts.
struct Raw {
  std::vector<float> a, b, c, g, ga, gb;
  Shape s;
  bool linear;
  Raw(Shape s, bool linear)
      : a(size_t(s.M) * s.K, 0.5f),
        b(size_t(s.K) * s.N, 0.25f),
        c(size_t(s.M) * s.N),
        g(size_t(s.M) * s.N, 1.0f),
        ga(size_t(s.M) * s.K),
        gb(size_t(s.K) * s.N),
        s(s),
        linear(linear) {}
  void run() {
    const int M = s.M, K = s.K, N = s.N;
    if (!linear) {  // b: (K, N)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, a.data(), K, b.data(), N,
                  0, c.data(), N);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1, g.data(), N, b.data(), N, 0,
                  ga.data(), K);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, M, 1, a.data(), K, g.data(), N, 0,
                  gb.data(), N);
    } else {  // b is the weight W: (N, K)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a.data(), K, b.data(), K, 0,
                  c.data(), N);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1, g.data(), N, b.data(), K,
                  0, ga.data(), K);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1, g.data(), N, a.data(), K, 0,
                  gb.data(), K);
    }
  }
};

enum class Op { Matmul, Linear, LinearBias };

struct Autograd {
  Tensor a, b, bias, ones;
  Op op;
  Autograd(Shape s, Op op) : op(op) {
    kernels::Generator gen(1);
    a = ag::randn({s.M, s.K}, gen).set_requires_grad();
    b = (op == Op::Matmul ? ag::randn({s.K, s.N}, gen) : ag::randn({s.N, s.K}, gen))
            .set_requires_grad();
    if (op == Op::LinearBias) bias = ag::randn({s.N}, gen).set_requires_grad();
    ones = ag::ones({s.M, s.N});
  }
  void run() {
    const Tensor y = op == Op::Matmul ? ag::matmul(a, b) : ag::linear(a, b, bias);
    y.backward(ones);
    a.zero_grad();
    b.zero_grad();
    if (bias.defined()) bias.zero_grad();
  }
};

template <class F>
double time_ms(F&& f) {
  const double t0 = bench::now_ns();
  f();
  return (bench::now_ns() - t0) * 1e-6;
}

void row(const char* name, Shape s, Op op, int reps) {
  Raw raw(s, op != Op::Matmul);
  Autograd ag_run(s, op);
  for (int i = 0; i < 3; ++i) {  // warm-up: threads, caches, the allocator's free lists
    raw.run();
    ag_run.run();
  }
  std::vector<double> t_raw, t_ag;
  for (int i = 0; i < reps; ++i) {
    t_raw.push_back(time_ms([&] { raw.run(); }));
    t_ag.push_back(time_ms([&] { ag_run.run(); }));
  }
  const double r = bench::median(t_raw), g = bench::median(t_ag);
  const double gflop = 3 * 2.0 * s.M * s.K * s.N * 1e-9;
  const std::string shape =
      std::to_string(s.M) + "x" + std::to_string(s.K) + " @ " +
      (op == Op::Matmul ? std::to_string(s.K) + "x" + std::to_string(s.N)
                        : "W " + std::to_string(s.N) + "x" + std::to_string(s.K));
  std::printf("| %-11s | %-22s | %6.2f | %7.2f | %5.3f | %8.1f | %9.1f |\n", name, shape.c_str(), r,
              g, g / r, gflop / (r * 1e-3), gflop / (g * 1e-3));
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 15;
  bench::print_settings("bench_matmul");
  std::printf("forward + backward (3 GEMMs), float32, median of %d reps after 3 warm-ups\n\n",
              reps);
  std::printf(
      "| op          | shape                  | raw ms | loom ms | ratio | raw GF/s | loom GF/s "
      "|\n");
  std::printf(
      "|-------------|------------------------|--------|---------|-------|----------|-----------|"
      "\n");
  const Shape shapes[] = {{4096, 256, 1024}, {4096, 1024, 256}, {4096, 256, 256}};
  for (const Shape& s : shapes) row("matmul", s, Op::Matmul, reps);
  for (const Shape& s : shapes) row("linear", s, Op::Linear, reps);
  for (const Shape& s : shapes) row("linear+bias", s, Op::LinearBias, reps);
  return 0;
}
