// Self-attention variants against sequence length (issue 10): full softmax attention (the
// fused kernel), a causal sliding window of `window` keys (banded kernel), causal
// block-sparse attention (blocks of window / 2, so at most `window` keys before a query,
// plus 4 global keys), causal linear attention (nn/linear_attention, elu + 1 features,
// chunks of 64) and Infini-attention (segments of `window`, delta rule), float32, forward + backward of one
// attention over q, k, v (B, H, T, D) that require grad. Per variant and length: median
// milliseconds and the allocator's peak bytes above the inputs during the step (what the
// variant keeps for its backward plus its transient buffers). The variants alternate within
// a length after a warm-up; one thread count per run (set OMP_NUM_THREADS).
//
// Usage: bench_attention_variants [reps] [window]   (defaults 5, 128)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "common.h"
#include "kernels/storage.h"
#include "nn/block_sparse_attention.h"
#include "nn/infini_attention.h"
#include "nn/linear_attention.h"

namespace {

using namespace loom;
using ag::Tensor;

struct Variant {
  const char* name;
  Tensor (*run)(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window);
};

Tensor full(const Tensor& q, const Tensor& k, const Tensor& v, int64_t) {
  return ag::scaled_dot_product_attention(q, k, v, {.causal = true});
}

Tensor sliding(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window) {
  ag::AttentionOptions o{.causal = true};
  o.window_left = window;
  return ag::scaled_dot_product_attention(q, k, v, o);
}

Tensor linear(const Tensor& q, const Tensor& k, const Tensor& v, int64_t) {
  return nn::linear_attention(nn::elu_feature_map(q), nn::elu_feature_map(k), v,
                              {.causal = true, .chunk = 64});
}

Tensor block_sparse(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window) {
  return nn::block_sparse_attention(q, k, v, {.block = window / 2, .global = 4, .causal = true});
}

Tensor infini(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window) {
  static const Tensor gate = ag::zeros({q.size(1)}).set_requires_grad();
  return nn::infini_attention(q, k, q, k, v, gate, {.segment = window, .causal = true});
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t window = argc > 2 ? std::atoll(argv[2]) : 128;
  bench::print_settings("bench_attention_variants");
  const int64_t B = 1, H = 4, D = 32;
  const Variant variants[] = {{"full", full},
                              {"sliding_window", sliding},
                              {"block_sparse", block_sparse},
                              {"linear", linear},
                              {"infini", infini}};
  std::printf(
      "B %lld, H %lld, D %lld, causal, float32; sliding window %lld keys before each "
      "query, blocks of %lld + 4 global, Infini segments of %lld; median of %d forward + "
      "backward\n\n",
      (long long)B, (long long)H, (long long)D, (long long)window, (long long)(window / 2),
      (long long)window, reps);
  std::printf("| T | variant | ms | MB above inputs (peak) | ms / full | MB / full |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const int64_t T : {128, 256, 512, 1024, 2048, 4096}) {
    kernels::Generator init(1);
    const Tensor q = ag::randn({B, H, T, D}, init).set_requires_grad();
    const Tensor k = ag::randn({B, H, T, D}, init).set_requires_grad();
    const Tensor v = ag::randn({B, H, T, D}, init).set_requires_grad();
    const Tensor grad_out = ag::randn({B, H, T, D}, init);
    std::vector<std::vector<double>> ms(std::size(variants));
    std::vector<double> peak_mb(std::size(variants), 0);
    for (int rep = -1; rep < reps; ++rep)  // rep -1: warm-up
      for (size_t i = 0; i < std::size(variants); ++i) {
        kernels::cpu_empty_cache();
        const size_t base = kernels::cpu_allocator_stats().allocated_bytes;
        kernels::cpu_reset_peak();
        const double t0 = bench::now_ns();
        const Tensor y = variants[i].run(q, k, v, window);
        ag::sum(y * grad_out).backward();
        const double t1 = bench::now_ns();
        const size_t peak = kernels::cpu_allocator_stats().peak_allocated_bytes;
        for (Tensor x : {q, k, v}) x.zero_grad();
        if (rep < 0) continue;
        ms[i].push_back((t1 - t0) * 1e-6);
        peak_mb[i] = double(peak - base) / 1e6;
      }
    const double full_ms = bench::median(ms[0]);
    for (size_t i = 0; i < std::size(variants); ++i) {
      const double m = bench::median(ms[i]);
      std::printf("| %lld | %s | %.2f | %.1f | %.2f | %.2f |\n", (long long)T, variants[i].name, m,
                  peak_mb[i], m / full_ms, peak_mb[i] / peak_mb[0]);
    }
  }
  return 0;
}
