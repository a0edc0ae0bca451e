// loom's side of the loom-vs-PyTorch training benchmark (issue 8; driven by
// bench/compare_torch/run.sh, whose PyTorch twin is bench/compare_torch/train_torch.py).
//
//   bench_compare_step make-batches --recipe R.toml --batches N --out-batches B.h5
//                                   --out-weights W.h5 [--max-tokens M]
//     Cuts the first N batches of the recipe's training corpus with data::Batcher (the
//     recipe's max_tokens and seed, as `loom train` would) and writes them, with the
//     resolved model config and optimizer settings, to B.h5; writes the model's initial
//     weights (init seed = train.seed, as the trainer) as a weights-only checkpoint W.h5.
//     Both sides read these two files, so they train on the same ids from the same weights.
//
//   bench_compare_step train --batches B.h5 --weights W.h5 --threads T --steps S [--warmup K]
//                            [--device cpu|cuda] [--precision f32|tf32|bf16]
//     1. agreement: with dropout off, the label-smoothed loss of batch 0 and the global
//        gradient norm of that loss;
//     2. K warm-up steps, then S timed training steps, each exactly the trainer's
//        (recipes/trainer.cpp): forward, sequence_loss(with_nll = false), loss.item(),
//        backward, clip_grad_norm, AdamW (decay_groups) step, zero_grad. Step i uses batch
//        i mod N. The learning rate is the recipe's peak lr, constant (the schedule's
//        per-step set_lr costs nothing and is left out on both sides).
//     On cuda the model and the batches are moved to cuda:0 first and each step ends with a
//     device synchronisation (its work is done when its time is taken). --precision (cuda
//     only) is the trainer's train.precision: tf32 GEMMs, or bf16 (forward and loss under
//     ag::Autocast(BF16), agreement values included).
//     Prints one line `RESULT {json}`: median ms/step, target tokens/s (median over the
//     timed steps of that step's non-pad target tokens / its time), peak RSS (getrusage
//     ru_maxrss) before training and at the end, CPU time / wall time of the timed steps,
//     on cuda the peak of device memory in live tensors (the caching allocator's), and
//     the CPU allocator's peak of live tensor bytes and its cached (free, held) bytes.
//     With LOOM_PROFILE=1 the time per op kind of the timed steps goes to stderr.
//
// Batch file layout (HDF5): root attrs format = "loom-compare-batches", recipe, model (the
// [model] TOML with the tokenizer's vocab), lr, beta1, beta2, eps, weight_decay,
// decay_embeddings (0/1), clip_norm, max_tokens, seed, batches; datasets
// /batches/<i>/{src, tgt_in, tgt_out}: int64 (B, S) / (B, T), pad 0.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "common.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "kernels/cuda/runtime.h"
#include "kernels/profile.h"
#include "kernels/threads.h"
#include "nn/loss.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/param_groups.h"
#include "recipes/checkpoint.h"
#include "recipes/h5.h"
#include "recipes/model_config.h"
#include "recipes/recipe.h"

using namespace loom;

namespace {

constexpr const char* kUsage =
    "usage: bench_compare_step make-batches --recipe R.toml --batches N --out-batches B.h5 "
    "--out-weights W.h5 [--max-tokens M]\n"
    "       bench_compare_step train --batches B.h5 --weights W.h5 --threads T --steps S "
    "[--warmup K] [--device cpu|cuda] [--precision f32|tf32|bf16]\n";

// "--key value" pairs after the mode; every key must be one of `known`.
std::map<std::string, std::string> parse_flags(int argc, char** argv,
                                               const std::vector<std::string>& known) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; i += 2) {
    const std::string key = argv[i];
    LOOM_CHECK(key.rfind("--", 0) == 0 && i + 1 < argc, "bench_compare_step: argument ", key,
               ": expected --key value pairs\n", kUsage);
    LOOM_CHECK(std::find(known.begin(), known.end(), key.substr(2)) != known.end(),
               "bench_compare_step: unknown option ", key, "\n", kUsage);
    flags[key.substr(2)] = argv[i + 1];
  }
  return flags;
}

const std::string& need(const std::map<std::string, std::string>& flags, const std::string& key) {
  const auto it = flags.find(key);
  LOOM_CHECK(it != flags.end(), "bench_compare_step: missing --", key, "\n", kUsage);
  return it->second;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int make_batches(const std::map<std::string, std::string>& flags) {
  const recipes::Recipe recipe = recipes::load_recipe(need(flags, "recipe"));
  const int64_t n = std::stoll(need(flags, "batches"));
  LOOM_CHECK(n >= 1, "make-batches: --batches ", n, ": must be >= 1");
  const data::Tokenizer tokenizer = data::Tokenizer::load(recipe.data.tokenizer);
  nn::ModelConfig cfg = recipe.model;
  cfg.vocab = tokenizer.vocab_size();
  const data::Encoder encode = [&](std::string_view s) { return tokenizer.encode(s); };
  const data::Corpus corpus = data::load_corpus(recipe.data.train[0], recipe.data.train[1], encode,
                                                cfg.max_len, data::LengthPolicy::Skip);
  data::BatcherOptions bo;
  bo.max_tokens = flags.count("max-tokens") ? std::stoll(flags.at("max-tokens")) : recipe.data.max_tokens;
  bo.seed = recipe.train.seed;
  data::Batcher batcher(corpus.examples, bo);

  recipes::h5::File f = recipes::h5::File::create(need(flags, "out-batches"));
  f.set_string_attr("format", "loom-compare-batches");
  f.set_string_attr("recipe", recipe.source);
  f.set_string_attr("model", recipes::model_config_to_toml(cfg));
  const recipes::OptimConfig& o = recipe.optim;
  f.set_double_attr("lr", o.lr);
  f.set_double_attr("beta1", o.beta1);
  f.set_double_attr("beta2", o.beta2);
  f.set_double_attr("eps", o.eps);
  f.set_double_attr("weight_decay", o.weight_decay);
  f.set_int_attr("decay_embeddings", o.decay_embeddings ? 1 : 0);
  f.set_double_attr("clip_norm", o.clip_norm);
  f.set_int_attr("max_tokens", bo.max_tokens);
  f.set_int_attr("seed", int64_t(recipe.train.seed));
  f.set_int_attr("batches", n);
  int64_t tokens = 0;
  for (int64_t i = 0; i < n; ++i) {
    const data::Batch b = batcher.next();
    const std::string g = "batches/" + std::to_string(i) + "/";
    f.write_tensor(g + "src", b.src);
    f.write_tensor(g + "tgt_in", b.tgt_in);
    f.write_tensor(g + "tgt_out", b.tgt_out);
    tokens += b.tgt_tokens;
  }
  f.close();

  nn::Transformer model(cfg, recipe.train.seed, recipe.train.seed + 1);
  recipes::CheckpointMeta meta;
  meta.config_toml = recipes::model_config_to_toml(cfg);
  recipes::save_checkpoint(need(flags, "out-weights"), model.state_dict(), tokenizer.serialized(),
                           meta);
  std::printf("make-batches: %s: %lld batches, %lld target tokens (%.0f per batch), vocab %lld\n",
              recipe.source.c_str(), (long long)n, (long long)tokens, double(tokens) / double(n),
              (long long)cfg.vocab);
  return 0;
}

struct StoredBatch {
  ag::Tensor src, tgt_in, tgt_out;  // (B, S), (B, T), (B, T) int64
  int64_t tgt_tokens = 0;           // non-pad ids in tgt_out
};

std::vector<StoredBatch> read_batches(const recipes::h5::File& f) {
  std::vector<StoredBatch> out;
  const int64_t n = f.int_attr("batches");
  for (int64_t i = 0; i < n; ++i) {
    const std::string g = "batches/" + std::to_string(i) + "/";
    StoredBatch b{f.read_tensor(g + "src"), f.read_tensor(g + "tgt_in"),
                  f.read_tensor(g + "tgt_out"), 0};
    for (int64_t id : b.tgt_out.to_vector<int64_t>()) b.tgt_tokens += id != nn::kPad;
    out.push_back(std::move(b));
  }
  return out;
}

int train(const std::map<std::string, std::string>& flags) {
  const std::string batch_path = need(flags, "batches");
  const int threads = std::stoi(need(flags, "threads"));
  const int steps = std::stoi(need(flags, "steps"));
  const int warmup = flags.count("warmup") ? std::stoi(flags.at("warmup")) : 3;
  LOOM_CHECK(threads >= 1 && steps >= 1 && warmup >= 0, "train: --threads ", threads,
             ", --steps ", steps, ", --warmup ", warmup, ": expected >= 1, >= 1, >= 0");
  kernels::set_num_threads(threads);
  const std::string device_name = flags.count("device") ? flags.at("device") : "cpu";
  LOOM_CHECK(device_name == "cpu" || device_name == "cuda", "train: --device ", device_name,
             ": expected cpu or cuda");
  const kernels::Device device = device_name == "cuda" ? kernels::Device::cuda(0) : kernels::Device::cpu();
  const std::string precision = flags.count("precision") ? flags.at("precision") : "f32";
  LOOM_CHECK(precision == "f32" || ((precision == "tf32" || precision == "bf16") && device.is_cuda()),
             "train: --precision ", precision, ": expected f32, or tf32 / bf16 with --device cuda");
  if (device.is_cuda()) kernels::cuda::set_allow_tf32(precision == "tf32");
  const ag::Autocast autocast(precision == "bf16" ? kernels::DType::BF16 : kernels::DType::F32);

  const recipes::h5::File f = recipes::h5::File::open(batch_path);
  LOOM_CHECK(f.string_attr("format") == "loom-compare-batches", batch_path,
             ": not a batch file of `bench_compare_step make-batches`");
  const nn::ModelConfig cfg = recipes::parse_model_config(f.string_attr("model"), batch_path);
  std::vector<StoredBatch> batches = read_batches(f);
  nn::Transformer model(cfg, 1, 2);  // weights replaced below; dropout stream seeded 2
  model.load_state_dict(recipes::load_checkpoint(need(flags, "weights")).model_state);
  model.to(device);
  for (StoredBatch& b : batches)
    for (ag::Tensor* t : {&b.src, &b.tgt_in, &b.tgt_out}) *t = t->to(device);
  const ag::NamedTensors params = model.named_parameters();
  optim::AdamWOptions ao;
  ao.lr = f.double_attr("lr"), ao.beta1 = f.double_attr("beta1");
  ao.beta2 = f.double_attr("beta2"), ao.eps = f.double_attr("eps");
  ao.weight_decay = f.double_attr("weight_decay");
  optim::AdamW adam(optim::decay_groups(params, ao.weight_decay,
                                        f.int_attr("decay_embeddings") != 0), ao);
  const double clip_norm = f.double_attr("clip_norm");
  const double base_rss = peak_rss_mb();

  // Agreement values: dropout off, batch 0, the initial weights.
  const StoredBatch& b0 = batches[0];
  model.eval();
  nn::SequenceLoss l0 = nn::sequence_loss(model.forward(b0.src, b0.tgt_in), b0.tgt_out,
                                          cfg.label_smoothing, nn::kPad, /*with_nll=*/false);
  const double init_loss = l0.loss.item<double>();
  l0.loss.backward();
  const double init_grad_norm = optim::grad_norm(params);
  adam.zero_grad();
  model.train();

  auto step = [&](const StoredBatch& b) {
    nn::SequenceLoss l = nn::sequence_loss(model.forward(b.src, b.tgt_in), b.tgt_out,
                                           cfg.label_smoothing, nn::kPad, /*with_nll=*/false);
    const double value = l.loss.item<double>();
    LOOM_CHECK(std::isfinite(value), "bench_compare_step: non-finite training loss");
    l.loss.backward();
    if (clip_norm > 0) optim::clip_grad_norm(params, clip_norm);
    adam.step();
    adam.zero_grad();
    if (device.is_cuda()) kernels::cuda::synchronize(device.index);
    return value;
  };
  const size_t n = batches.size();
  for (int i = 0; i < warmup; ++i) step(batches[size_t(i) % n]);
  const bool profiling = kernels::profile::enabled();
  kernels::profile::reset();
  std::vector<double> ms, tok_s;
  double total_s = 0, last_loss = 0;
  int64_t total_tokens = 0;
  const double cpu0 = cpu_seconds();
  for (int i = 0; i < steps; ++i) {
    const StoredBatch& b = batches[size_t(warmup + i) % n];
    const double t0 = bench::now_ns();
    last_loss = step(b);
    const double dt = (bench::now_ns() - t0) / 1e9;
    ms.push_back(dt * 1e3);
    tok_s.push_back(double(b.tgt_tokens) / dt);
    total_s += dt;
    total_tokens += b.tgt_tokens;
  }
  const double cpu_util = (cpu_seconds() - cpu0) / total_s;
  if (profiling) std::fprintf(stderr, "%s", kernels::profile::report(steps).c_str());

  std::printf("RESULT {\"side\": \"loom\", \"threads\": %d, \"steps\": %d, \"warmup\": %d, "
              "\"median_ms\": %.3f, \"tok_s\": %.1f, \"mean_tok_s\": %.1f, "
              "\"peak_rss_mb\": %.1f, \"base_rss_mb\": %.1f, \"cpu_util\": %.3f, "
              "\"init_loss\": %.9g, \"init_grad_norm\": %.9g, \"last_loss\": %.6g, "
              "\"device\": \"%s\", \"precision\": \"%s\", \"peak_gpu_mb\": %.1f, \"cpu_peak_tensor_mb\": %.1f, "
              "\"cpu_cached_mb\": %.1f}\n",
              threads, steps, warmup, bench::median(ms), bench::median(tok_s),
              double(total_tokens) / total_s, peak_rss_mb(), base_rss, cpu_util, init_loss,
              init_grad_norm, last_loss, device_name.c_str(), precision.c_str(),
              device.is_cuda()
                  ? double(kernels::cuda::allocator_stats(0).peak_allocated_bytes) / (1 << 20)
                  : 0.0,
              double(kernels::cpu_allocator_stats().peak_allocated_bytes) / (1 << 20),
              double(kernels::cpu_allocator_stats().cached_bytes) / (1 << 20));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "make-batches")
      return make_batches(parse_flags(argc, argv, {"recipe", "batches", "out-batches", "out-weights", "max-tokens"}));
    if (mode == "train")
      return train(parse_flags(argc, argv, {"batches", "weights", "threads", "steps", "warmup", "device",
                                            "precision"}));
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_compare_step: %s\n", e.what());
    return 1;
  }
}
