// Per-op CPU kernel speed against this machine's peaks, both measured in the same run.
//
// Peaks. Memory: a stream-like copy b[i] = a[i] and triad a[i] = b[i] + s * c[i] over
// arrays of 64 Mi floats (256 MiB each, far beyond any cache), in OpenMP parallel loops;
// bytes are the ones the loop names (copy 8 per element, triad 12), not the extra read a
// cache line's write-allocate costs, and the ops below are counted the same way. Compute:
// 2048^3 sgemm through OpenBLAS's cblas_sgemm and through loom's kernels::gemm (oneDNN's
// dnnl_sgemm when loom is built with it); the faster of the two is the GF/s peak.
//
// Ops, at the "small" translation config's shapes (d_model 256, 4 heads of 64, ffn 1024,
// vocab 8000, ~4000 tokens per batch: M = 4096 rows; attention B=128 sentences of T=S=32),
// called directly on preallocated operands (no autograd, no allocation in the timed part).
// GEMMs and attention are rated in GF/s against the sgemm peak; the rest in GB/s against
// the copy peak, with these bytes (float32, 4 bytes; reads + writes, each tensor once):
//   GEMM        2 M N K flops. Linear layouts, as nn::Linear runs them: y = x Wᵀ,
//               dX = G W, dW = Gᵀ x (W is (N, K), transposes are views, never copies).
//   attention   forward 4 B H T S D flops (q kᵀ and P v), backward 8 B H T S D (dV, dP,
//               dQ, dK); softmax and dropout work not counted. Dense counts also for
//               causal: at T = 32 one causal chunk of 32 rows (kernels/cpu/attention.cpp)
//               computes all keys.
//   layer norm  forward: read x, w, b, write y, mean, rstd; backward: read grad_out, x,
//               mean, rstd, w, write grad_x, grad_w, grad_b.
//   cross-entr. forward: read logits once (+ int64 targets), write loss, lse [M];
//               backward: read logits, lse, targets, write grad_logits.
//   AdamW       read p, g, m, v and write p, m, v: 28 bytes per element.
//   dropout     forward: read x, write y and 1 keep bit per element; backward: read
//               grad_y and the bits, write grad_x.
// Working sets under the L3 size (layer norm's 4 MiB, dropout's 16 MiB tensors) can run
// from cache across repetitions, so they may exceed 100% of the DRAM copy rate.
//
// Each measurement: 2 warm-ups, then the median of as many timed calls as fit in ~0.25 s,
// 7 to 25. Threads: whatever OMP_NUM_THREADS says (printed first); the last line, process
// CPU time / wall time, shows whether other jobs took cores during the run.
//
// Usage: bench_ops
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "common.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/gemm.h"
#include "kernels/layer_norm.h"

namespace {

using namespace loom;
using ag::Tensor;
using kernels::TensorRef;

// Median ms of f after two warm-ups (thread pool up, pages touched, oneDNN's JIT kernels
// generated). Short calls get more repetitions: their medians are noisier on a shared VM.
template <class F>
double median_ms(F&& f) {
  f();
  f();
  std::vector<double> t;
  int reps = 7;
  for (int i = 0; i < reps; ++i) {
    const double t0 = bench::now_ns();
    f();
    t.push_back((bench::now_ns() - t0) * 1e-6);
    if (i == 0) reps = std::clamp(int(250.0 / std::max(t[0], 1e-3)), 7, 25);
  }
  return bench::median(t);
}

struct Peaks {
  double copy_gbs = 0, triad_gbs = 0, sgemm_gfs = 0;
};

double gflops(double flop, double ms) { return flop * 1e-9 / (ms * 1e-3); }
double gbytes(double bytes, double ms) { return bytes * 1e-9 / (ms * 1e-3); }

Peaks measure_peaks() {
  Peaks pk;
  std::printf("## Machine peaks\n\n| peak | shape | ms | achieved |\n|---|---|---|---|\n");
  {
    const int64_t n = int64_t(64) << 20;  // 64 Mi floats, 256 MiB per array
    std::unique_ptr<float[]> ua(new float[n]), ub(new float[n]), uc(new float[n]);
    float *a = ua.get(), *b = ub.get(), *c = uc.get();
    // First touch in the same static schedule as the timed loops.
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      a[i] = 1.0f;
      b[i] = 2.0f;
      c[i] = 3.0f;
    }
    const double copy_ms = median_ms([&] {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) b[i] = a[i];
    });
    const double triad_ms = median_ms([&] {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) a[i] = b[i] + 0.5f * c[i];
    });
    pk.copy_gbs = gbytes(8.0 * n, copy_ms);
    pk.triad_gbs = gbytes(12.0 * n, triad_ms);
    std::printf("| copy b = a (8 B/elem) | 2 x 64 Mi float32 | %.2f | %.1f GB/s |\n", copy_ms,
                pk.copy_gbs);
    std::printf("| triad a = b + s c (12 B/elem) | 3 x 64 Mi float32 | %.2f | %.1f GB/s |\n",
                triad_ms, pk.triad_gbs);
  }
  {
    const int n = 2048;
    kernels::Generator gen(11);
    const Tensor a = ag::randn({n, n}, gen), b = ag::randn({n, n}, gen), c = ag::empty({n, n});
    const float *pa = a.data<float>(), *pb = b.data<float>();
    float* pc = c.data<float>();
    const double flop = 2.0 * n * n * n;
    const double blas_ms = median_ms([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, pa, n, pb, n, 0.0f, pc,
                  n);
    });
    const double loom_ms = median_ms([&] { kernels::gemm(c.ref(), a.ref(), b.ref(), 1.0, 0.0); });
    pk.sgemm_gfs = std::max(gflops(flop, blas_ms), gflops(flop, loom_ms));
    std::printf("| sgemm, OpenBLAS cblas_sgemm | 2048x2048x2048 | %.2f | %.1f GF/s |\n", blas_ms,
                gflops(flop, blas_ms));
    std::printf("| sgemm, loom kernels::gemm | 2048x2048x2048 | %.2f | %.1f GF/s |\n", loom_ms,
                gflops(flop, loom_ms));
  }
  std::printf("\npeaks used below: %.1f GF/s (the faster sgemm), %.1f GB/s (copy)\n\n",
              pk.sgemm_gfs, pk.copy_gbs);
  return pk;
}

// One row of the op table: `amount` is flops (flop == true, rated against the sgemm peak)
// or bytes (against the copy peak).
struct Table {
  Peaks pk;
  void header() const {
    std::printf("## Per-op kernels\n\n| op | shape | ms | achieved | %% of peak |\n");
    std::printf("|---|---|---|---|---|\n");
  }
  void row(const std::string& op, const std::string& shape, double ms, double amount,
           bool flop) const {
    const double rate = flop ? gflops(amount, ms) : gbytes(amount, ms);
    const double peak = flop ? pk.sgemm_gfs : pk.copy_gbs;
    std::printf("| %s | %s | %.3f | %.1f %s | %.0f%% |\n", op.c_str(), shape.c_str(), ms, rate,
                flop ? "GF/s" : "GB/s", 100.0 * rate / peak);
  }
};

std::string dims(std::initializer_list<int64_t> d) {
  std::string s;
  for (const int64_t x : d) {
    if (!s.empty()) s += 'x';
    s += std::to_string(x);
  }
  return s;
}

// y (M, N) = x (M, K) Wᵀ, dX = G W, dW = Gᵀ x, with W (N, K): nn::Linear's three GEMMs.
void bench_gemm(const Table& tab, int64_t M, int64_t K, int64_t N) {
  kernels::Generator gen(1);
  const Tensor x = ag::randn({M, K}, gen), w = ag::randn({N, K}, gen), g = ag::randn({M, N}, gen);
  const Tensor y = ag::empty({M, N}), dx = ag::empty({M, K}), dw = ag::empty({N, K});
  const TensorRef wt = w.transpose(0, 1).ref(), gt = g.transpose(0, 1).ref();
  const double flop = 2.0 * M * N * K;
  const std::string shape = dims({M, K, N});
  tab.row("gemm forward y = x Wᵀ", shape,
          median_ms([&] { kernels::gemm(y.ref(), x.ref(), wt, 1.0, 0.0); }), flop, true);
  tab.row("gemm backward dX = G W", shape,
          median_ms([&] { kernels::gemm(dx.ref(), g.ref(), w.ref(), 1.0, 0.0); }), flop, true);
  tab.row("gemm backward dW = Gᵀ x", shape,
          median_ms([&] { kernels::gemm(dw.ref(), gt, x.ref(), 1.0, 0.0); }), flop, true);
}

void bench_attention(const Table& tab, bool causal, double dropout_p) {
  const int64_t B = 128, H = 4, T = 32, S = 32, D = 64;
  kernels::Generator gen(2);
  const Tensor q = ag::randn({B, H, T, D}, gen), k = ag::randn({B, H, S, D}, gen),
               v = ag::randn({B, H, S, D}, gen), grad_out = ag::randn({B, H, T, D}, gen);
  const Tensor out = ag::empty({B, H, T, D}), probs = ag::empty({B, H, T, S});
  const Tensor gq = ag::empty({B, H, T, D}), gk = ag::empty({B, H, S, D}),
               gv = ag::empty({B, H, S, D});
  kernels::AttentionParams p;
  p.scale = 1.0 / std::sqrt(double(D));
  p.causal = causal;
  p.dropout_p = dropout_p;
  p.seed = 5;            // one fixed dropout stream: every call draws the same mask
  const TensorRef none;  // no mask, no bias
  const double flop = 2.0 * B * H * T * S * D;  // one of the T x S x D products
  std::string variant = causal ? ", causal" : "";
  if (dropout_p > 0) variant += ", dropout 0.1";
  const std::string shape = "B=128 H=4 T=S=32 D=64";
  // The forward also writes probs (P with dropped weights negated), which the backward reads.
  tab.row("attention forward" + variant, shape, median_ms([&] {
            kernels::attention_forward(out.ref(), probs.ref(), q.ref(), k.ref(), v.ref(), none,
                                       none, p);
          }),
          2 * flop, true);
  tab.row("attention backward" + variant, shape, median_ms([&] {
            kernels::attention_backward(gq.ref(), gk.ref(), gv.ref(), grad_out.ref(), q.ref(),
                                        k.ref(), v.ref(), probs.ref(), p);
          }),
          4 * flop, true);
}

void bench_layer_norm(const Table& tab) {
  const int64_t M = 4096, N = 256;
  kernels::Generator gen(3);
  const Tensor x = ag::randn({M, N}, gen), w = ag::randn({N}, gen), b = ag::randn({N}, gen),
               grad_out = ag::randn({M, N}, gen);
  const Tensor y = ag::empty({M, N}), mean = ag::empty({M}), rstd = ag::empty({M});
  const Tensor gx = ag::empty({M, N}), gw = ag::empty({N}), gb = ag::empty({N});
  const std::string shape = dims({M, N});
  tab.row("layer norm forward", shape, median_ms([&] {
            kernels::layer_norm_forward(y.ref(), mean.ref(), rstd.ref(), x.ref(), w.ref(), b.ref(),
                                        1e-5);
          }),
          4.0 * (2 * M * N + 2 * N + 2 * M), false);
  tab.row("layer norm backward", shape, median_ms([&] {
            kernels::layer_norm_backward(gx.ref(), gw.ref(), gb.ref(), grad_out.ref(), x.ref(),
                                         mean.ref(), rstd.ref(), w.ref());
          }),
          4.0 * (3 * M * N + 2 * M + 3 * N), false);
}

// Label smoothing 0.1, ignore_index 0 (the pad id); every target is a real token here.
void bench_cross_entropy(const Table& tab) {
  const int64_t M = 4096, V = 8000;
  kernels::Generator gen(4);
  const Tensor logits = ag::randn({M, V}, gen), grad = ag::empty({M, V});
  std::vector<int64_t> t(M);
  for (int64_t r = 0; r < M; ++r) t[r] = 1 + (r * 7919) % (V - 1);
  const Tensor target = ag::from_vector<int64_t>(t, {M});
  const Tensor loss = ag::empty({M}), lse = ag::empty({M}), one = ag::ones({1});
  TensorRef grad_loss = one.ref();  // the mean's scalar gradient, broadcast over rows
  grad_loss.sizes = {M};
  grad_loss.strides = {0};
  const std::string shape = dims({M, V});
  tab.row("cross-entropy forward, smoothing 0.1", shape, median_ms([&] {
            kernels::cross_entropy_forward(loss.ref(), lse.ref(), logits.ref(), target.ref(), 0,
                                           0.1);
          }),
          4.0 * M * V + 8.0 * M + 8.0 * M, false);
  tab.row("cross-entropy backward, smoothing 0.1", shape, median_ms([&] {
            kernels::cross_entropy_backward(grad.ref(), grad_loss, 1.0 / double(M), logits.ref(),
                                            lse.ref(), target.ref(), 0, 0.1);
          }),
          8.0 * M * V + 12.0 * M, false);
}

// The small config's parameter tensors, as the model has them (131, 7.58 M elements): tied 8000x256
// embedding, 3 encoder layers (self-attention q/k/v/o 256x256 + bias, ffn 1024x256 and
// 256x1024 + biases, 2 layer norms), 3 decoder layers (also cross-attention and a third
// layer norm), and the encoder's and decoder's final layer norms.
void bench_adamw(const Table& tab) {
  struct Param {
    kernels::Dims shape;
    bool decay;  // weight decay on matrices only, as the trainer does
  };
  std::vector<Param> params{{{8000, 256}, false}};
  auto linear = [&](int64_t out, int64_t in) {
    params.push_back({{out, in}, true});
    params.push_back({{out}, false});
  };
  auto layer_norm = [&] {
    params.push_back({{256}, false});
    params.push_back({{256}, false});
  };
  auto attention = [&] {
    for (int i = 0; i < 4; ++i) linear(256, 256);
    layer_norm();
  };
  auto ffn = [&] {
    linear(1024, 256);
    linear(256, 1024);
    layer_norm();
  };
  for (int l = 0; l < 3; ++l) {  // encoder layer: self-attention, ffn
    attention();
    ffn();
  }
  for (int l = 0; l < 3; ++l) {  // decoder layer: self-attention, cross-attention, ffn
    attention();
    attention();
    ffn();
  }
  layer_norm();  // the encoder's final norm
  layer_norm();  // the decoder's
  kernels::Generator gen(6);
  std::vector<Tensor> keep;  // owns the storage the refs point at
  std::vector<kernels::AdamWTensor> list;
  int64_t elements = 0;
  for (const Param& prm : params) {
    const Tensor p = ag::randn(prm.shape, gen), g = ag::randn(prm.shape, gen);
    const Tensor m = ag::zeros(prm.shape), v = ag::zeros(prm.shape);
    keep.insert(keep.end(), {p, g, m, v});
    kernels::AdamWTensor a;
    a.param = p.ref();
    a.exp_avg = m.ref();
    a.exp_avg_sq = v.ref();
    a.grad = g.ref();
    a.lr = 7e-4;
    a.weight_decay = prm.decay ? 0.01 : 0.0;
    a.step = 1;
    list.push_back(a);
    elements += p.numel();
  }
  char shape[64];
  std::snprintf(shape, sizeof shape, "%.2f M params in %zu tensors", elements * 1e-6, list.size());
  tab.row("AdamW step", shape, median_ms([&] { kernels::adamw_step(list, 0.9, 0.98, 1e-9); }),
          28.0 * elements, false);
}

void bench_dropout(const Table& tab) {
  const int64_t M = 4096, N = 1024, n = M * N;
  kernels::Generator gen(8), draws(9);
  const Tensor x = ag::randn({M, N}, gen), grad_y = ag::randn({M, N}, gen);
  const Tensor y = ag::empty({M, N}), gx = ag::empty({M, N});
  const Tensor keep = ag::empty({kernels::dropout_mask_words(n)}, kernels::DType::I32);
  const double keep_prob = 0.9, scale = 1.0 / keep_prob;
  const std::string shape = dims({M, N}) + ", p 0.1";
  tab.row("dropout forward (y + keep bits)", shape, median_ms([&] {
            kernels::dropout_forward(y.ref(), keep.ref(), x.ref(), draws, keep_prob, scale);
          }),
          8.0 * n + n / 8.0, false);
  tab.row("dropout backward", shape,
          median_ms([&] { kernels::dropout_backward(gx.ref(), grad_y.ref(), keep.ref(), scale); }),
          8.0 * n + n / 8.0, false);
}

}  // namespace

int main() {
  bench::print_settings("bench_ops");
  const double wall0 = bench::now_ns();
  const std::clock_t cpu0 = std::clock();
  const Table tab{measure_peaks()};
  tab.header();
  bench_gemm(tab, 4096, 256, 1024);  // ffn fc1
  bench_gemm(tab, 4096, 1024, 256);  // ffn fc2
  bench_gemm(tab, 4096, 256, 256);   // attention projections
  bench_gemm(tab, 4096, 256, 8000);  // output projection (logits)
  for (const bool causal : {false, true})
    for (const double p : {0.0, 0.1}) bench_attention(tab, causal, p);
  bench_layer_norm(tab);
  bench_cross_entropy(tab);
  bench_adamw(tab);
  bench_dropout(tab);
  // Busy CPUs over the run: below the thread count, other jobs took cores from this one
  // (threads then wait at barriers for a descheduled peer and times jump).
  const double cpu_s = double(std::clock() - cpu0) / CLOCKS_PER_SEC;
  std::printf("\nCPUs busy (process CPU time / wall time): %.2f with %d threads\n",
              cpu_s / ((bench::now_ns() - wall0) * 1e-9), omp_get_max_threads());
  return 0;
}
