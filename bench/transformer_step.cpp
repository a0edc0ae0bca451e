// One training step of the encoder-decoder (forward, backward, AdamW) for DESIGN.md's
// "small" shape: d_model 256, 4 heads, ffn 1024, 3+3 layers, vocab 8000, a batch of
// ~2500 target tokens (100 sentences x 25 tokens, sources 25 tokens), dropout 0.1, label
// smoothing 0.1 — on 1 and 2 threads, with the time per op kind (LOOM_PROFILE's table).
//
//   build/bench/bench_transformer_step [steps]
#include <omp.h>

#include <cstdio>
#include <cstdlib>

#include "autograd/ops.h"
#include "common.h"
#include "kernels/profile.h"
#include "nn/loss.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/param_groups.h"

using namespace loom;

namespace {

struct Result {
  double ms_per_step, profiled_ms_per_step;
  std::string breakdown;
};

Result run(int threads, int steps) {
  omp_set_num_threads(threads);
  nn::ModelConfig cfg;
  cfg.vocab = 8000, cfg.d_model = 256, cfg.heads = 4, cfg.kv_heads = 4, cfg.ffn = 1024;
  cfg.encoder_layers = 3, cfg.decoder_layers = 3;
  nn::Transformer model(cfg, 1, 2);
  optim::AdamWOptions opt;
  opt.lr = 1e-4, opt.beta2 = 0.98, opt.eps = 1e-9;
  optim::AdamW adam(optim::decay_groups(model.named_parameters(), 0.01, false), opt);

  const int64_t B = 100, S = 25, T = 25;
  kernels::Generator gen(3);
  auto ids = [&](int64_t rows, int64_t cols) {  // ids in [4, vocab)
    return (ag::rand({rows, cols}, gen, kernels::DType::F64) * double(cfg.vocab - 4) + 4.0)
        .to(kernels::DType::I64);
  };
  const ag::Tensor src = ids(B, S), tgt_in = ids(B, T), tgt_out = ids(B, T);
  auto step = [&] {
    nn::SequenceLoss l = nn::sequence_loss(model.forward(src, tgt_in), tgt_out, 0.1, nn::kPad,
                                           /*with_nll=*/false);
    l.loss.backward();
    adam.step();
    adam.zero_grad();
  };
  step();  // warm-up: allocator cache, OpenBLAS buffers
  step();
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    const double t0 = bench::now_ns();
    step();
    times.push_back((bench::now_ns() - t0) / 1e6);
  }
  Result r;
  r.ms_per_step = bench::median(times);
  kernels::profile::reset();
  kernels::profile::set_enabled(true);
  const double t0 = bench::now_ns();
  for (int i = 0; i < steps; ++i) step();
  r.profiled_ms_per_step = (bench::now_ns() - t0) / 1e6 / steps;
  kernels::profile::set_enabled(false);
  r.breakdown = kernels::profile::report(steps);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 10;
  bench::print_settings("bench_transformer_step");
  std::printf("encoder-decoder d256 h4 ffn1024 3+3, V 8000, batch 100 x (25 src, 25 tgt) "
              "= 2500 target tokens; median of %d steps after 2 warm-ups\n\n", steps);
  std::printf("| threads | ms/step | target tokens/s |\n|---|---|---|\n");
  std::vector<std::pair<int, Result>> results;
  for (int threads : {1, 2}) {
    Result r = run(threads, steps);
    std::printf("| %d | %.1f | %.0f |\n", threads, r.ms_per_step, 2500.0 / r.ms_per_step * 1e3);
    std::fflush(stdout);
    results.emplace_back(threads, std::move(r));
  }
  for (const auto& [threads, r] : results)
    std::printf("\nby op kind, %d thread%s (LOOM_PROFILE; %.1f ms/step with timers on):\n\n%s",
                threads, threads == 1 ? "" : "s", r.profiled_ms_per_step, r.breakdown.c_str());
  return 0;
}
