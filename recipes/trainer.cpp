#include "recipes/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/ops.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "kernels/threads.h"
#include "nn/loss.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/param_groups.h"
#include "optim/schedule.h"
#include "recipes/checkpoint.h"
#include "recipes/evaluate.h"
#include "recipes/toml_reader.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Writes every line to the console and to train.log.
struct Log {
  std::ostream& console;
  std::ofstream file;
  template <class... A> void line(const A&... a) {
    std::ostringstream os;
    (os << ... << a);
    console << os.str() << "\n" << std::flush;
    file << os.str() << "\n" << std::flush;
  }
};

optim::LrSchedule make_schedule(const OptimConfig& o, int64_t max_steps) {
  if (o.schedule == "constant") return optim::LrSchedule::constant(o.lr);
  if (o.schedule == "cosine") return optim::LrSchedule::cosine(o.lr, o.warmup, max_steps, o.min_lr);
  return optim::LrSchedule::inverse_sqrt(o.lr, o.warmup);
}

// The recipe's resolved TOML with model.vocab set to the tokenizer's (what checkpoints keep).
std::string resolved_config(const Recipe& r, int64_t vocab) {
  toml::table root = parse_toml(r.resolved_toml, r.source);
  if (!root.contains("model")) root.insert("model", toml::table{});
  root["model"].as_table()->insert_or_assign("vocab", vocab);
  std::ostringstream os;
  os << root;
  return os.str();
}

// OUT/curves.png: training loss and dev BLEU against the update step, drawn by gnuplot
// when it is installed (package gnuplot-nox); silently skipped otherwise.
void plot_curves(const std::string& out_dir, const std::vector<std::pair<int64_t, double>>& loss,
                 const std::vector<std::pair<int64_t, double>>& bleu) {
  if (loss.empty() || std::system("command -v gnuplot >/dev/null 2>&1") != 0) return;
  const fs::path dir(out_dir);
  std::ofstream l(dir / "loss.dat"), b(dir / "bleu.dat");
  for (const auto& [step, v] : loss) l << step << " " << v << "\n";
  for (const auto& [step, v] : bleu) b << step << " " << v << "\n";
  l.close(), b.close();
  std::ofstream script(dir / "curves.gp");
  script << "set terminal pngcairo size 900,500 noenhanced\nset output '" << (dir / "curves.png").string()
         << "'\nset xlabel 'update'\nset ylabel 'training loss'\nset y2label 'dev BLEU'\n"
         << "set ytics nomirror\nset y2tics\nset grid\n"
         << "plot '" << (dir / "loss.dat").string() << "' with lines title 'loss', '"
         << (dir / "bleu.dat").string() << "' axes x1y2 with linespoints title 'dev BLEU'\n";
  script.close();
  // Debian's gnuplot-nox has the pngcairo terminal; a failing gnuplot only costs the plot.
  const std::string cmd = "gnuplot '" + (dir / "curves.gp").string() + "' >/dev/null 2>&1";
  (void)std::system(cmd.c_str());
}

std::string fmt_duration(double seconds) {
  const int64_t s = int64_t(seconds);
  std::ostringstream os;
  os << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s / 60) % 60 << "m"
     << std::setw(2) << s % 60 << "s";
  return os.str();
}

}  // namespace

TrainResult train(const Recipe& recipe, const std::string& out_dir, std::ostream& console) {
  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  fs::create_directories(fs::path(out_dir) / "checkpoints");
  Log log{console, std::ofstream(fs::path(out_dir) / "train.log", std::ios::app)};
  std::ofstream metrics(fs::path(out_dir) / "metrics.jsonl", std::ios::app);
  LOOM_CHECK(metrics.good(), out_dir, "/metrics.jsonl: cannot open for writing");
  const TrainConfig& tc = recipe.train;
  if (tc.threads > 0) kernels::set_num_threads(int(tc.threads));

  // Data: tokenizer, corpora (training pairs over max_len are skipped, dev ones truncated).
  const data::Tokenizer tokenizer = data::Tokenizer::load(recipe.data.tokenizer);
  nn::ModelConfig cfg = recipe.model;
  if (cfg.vocab != tokenizer.vocab_size())
    log.line("model.vocab = ", cfg.vocab, " -> ", tokenizer.vocab_size(), " (the tokenizer's)");
  cfg.vocab = tokenizer.vocab_size();
  const data::Encoder encode = [&](std::string_view s) { return tokenizer.encode(s); };
  const data::Corpus train_set = data::load_corpus(recipe.data.train[0], recipe.data.train[1], encode,
                                                   cfg.max_len, data::LengthPolicy::Skip);
  const data::Corpus dev_set = data::load_corpus(recipe.data.dev[0], recipe.data.dev[1], encode,
                                                 cfg.max_len, data::LengthPolicy::Truncate);
  const std::vector<std::string> dev_refs = data::read_lines(recipe.data.dev[1]);
  const std::vector<std::string> dev_srcs = data::read_lines(recipe.data.dev[0]);
  log.line(train_set.summary("train", cfg.max_len));
  log.line(dev_set.summary("dev", cfg.max_len));
  LOOM_CHECK(!train_set.examples.empty(), recipe.source, ": the training corpus is empty");

  // Model and optimizer.
  nn::Transformer model(cfg, tc.seed, tc.seed + 1);
  const optim::LrSchedule schedule = make_schedule(recipe.optim, tc.max_steps);
  optim::AdamWOptions ao;
  ao.lr = recipe.optim.lr, ao.beta1 = recipe.optim.beta1, ao.beta2 = recipe.optim.beta2;
  ao.eps = recipe.optim.eps, ao.weight_decay = recipe.optim.weight_decay;
  optim::AdamW adam(optim::decay_groups(model.named_parameters(), recipe.optim.weight_decay,
                                        recipe.optim.decay_embeddings), ao);
  int64_t n_params = 0;
  for (const auto& p : model.named_parameters()) n_params += p.tensor.numel();
  log.line("model: ", cfg.arch, " d_model ", cfg.d_model, ", ", cfg.heads, " heads (", cfg.kv_heads,
           " kv), ffn ", cfg.ffn, ", ", cfg.encoder_layers, "+", cfg.decoder_layers, " layers, vocab ",
           cfg.vocab, ", position ", cfg.position, ": ", n_params, " parameters; ",
           kernels::num_threads(), " threads");

  data::BatcherOptions bo;
  bo.max_tokens = recipe.data.max_tokens;
  bo.seed = tc.seed;
  data::Batcher batcher(train_set.examples, bo);
  CheckpointMeta meta;
  meta.config_toml = resolved_config(recipe, cfg.vocab);
  DecodeOptions decode;
  decode.beam = int(tc.beam);

  TrainResult result;
  result.stop_reason = "max_steps";
  std::vector<std::pair<int64_t, double>> loss_curve, bleu_curve;
  double window_loss = 0, window_tokens = 0, tokens_seen = 0, best_bleu = -1;
  int64_t window_steps = 0, bad_in_a_row = 0, skipped = 0, evals_without_gain = 0;
  auto window_start = Clock::now();

  auto run_eval = [&](int64_t step) {
    model.eval();
    const EvalResult e = evaluate(model, dev_set.examples, tokenizer, dev_refs,
                                  recipe.data.max_tokens, tc.eval_sentences, decode);
    model.train();
    result.dev_nll = e.nll, result.dev_bleu = e.bleu, result.dev_chrf = e.chrf;
    bleu_curve.emplace_back(step, e.bleu);
    log.line("eval step ", step, ": dev loss ", std::setprecision(4), e.loss, ", nll ", e.nll,
             ", ppl ", e.ppl, ", BLEU ", std::setprecision(2), std::fixed, e.bleu, ", chrF ", e.chrf,
             std::defaultfloat);
    for (int64_t i = 0; i < std::min<int64_t>(tc.samples, int64_t(e.hypotheses.size())); ++i) {
      const int64_t line = dev_set.examples[size_t(i)].line;
      log.line("  src: ", dev_srcs[size_t(line)]);
      log.line("  ref: ", dev_refs[size_t(line)]);
      log.line("  hyp: ", e.hypotheses[size_t(i)]);
    }
    metrics << nlohmann::json{{"type", "eval"}, {"step", step}, {"epoch", batcher.epoch()},
                              {"dev_loss", e.loss}, {"dev_nll", e.nll}, {"dev_ppl", e.ppl},
                              {"dev_bleu", e.bleu}, {"dev_chrf", e.chrf},
                              {"elapsed_s", elapsed()}}.dump() << "\n" << std::flush;
    meta.step = step, meta.epoch = batcher.epoch(), meta.tokens_seen = int64_t(tokens_seen);
    const std::string ckpt = (fs::path(out_dir) / "checkpoints").string();
    save_checkpoint(ckpt + "/last.h5", model.state_dict(), tokenizer.serialized(), meta);
    if (e.bleu > best_bleu) {
      best_bleu = e.bleu;
      evals_without_gain = 0;
      save_checkpoint(ckpt + "/best.h5", model.state_dict(), tokenizer.serialized(), meta);
    } else {
      ++evals_without_gain;
    }
  };

  int64_t step = 0;
  while (step < tc.max_steps) {
    const double lr = schedule.lr(step + 1);
    adam.set_lr(lr);
    double step_loss = 0, step_tokens = 0;
    for (int64_t micro = 0; micro < recipe.optim.accumulate; ++micro) {
      const data::Batch b = batcher.next();
      nn::SequenceLoss l = nn::sequence_loss(model.forward(b.src, b.tgt_in), b.tgt_out,
                                             cfg.label_smoothing, nn::kPad, /*with_nll=*/false);
      const double value = l.loss.item<double>();
      step_loss += value * double(l.tokens);
      step_tokens += double(l.tokens);
      if (!std::isfinite(value)) {
        ag::clear_tape();
        continue;
      }
      (l.loss * (1.0 / double(recipe.optim.accumulate))).backward();
    }
    const double loss = step_loss / std::max(step_tokens, 1.0);
    if (!std::isfinite(loss)) {
      adam.zero_grad();
      ++skipped;
      LOOM_CHECK(++bad_in_a_row < tc.max_bad_steps, "train: ", bad_in_a_row,
                 " non-finite losses in a row at step ", step + 1,
                 "; lower optim.lr, raise optim.warmup or check the data");
      log.line("step ", step + 1, ": non-finite loss, update skipped (", skipped, " so far)");
      continue;
    }
    bad_in_a_row = 0;
    const double norm = recipe.optim.clip_norm > 0
                            ? optim::clip_grad_norm(model.named_parameters(), recipe.optim.clip_norm)
                            : optim::grad_norm(model.named_parameters());
    adam.step();
    adam.zero_grad();
    ++step;
    tokens_seen += step_tokens;
    window_loss += loss, window_tokens += step_tokens, ++window_steps;

    if (step % tc.log_every == 0 || step == tc.max_steps) {
      const double secs = std::chrono::duration<double>(Clock::now() - window_start).count();
      const double tps = window_tokens / std::max(secs, 1e-9);
      const double per_step = secs / double(window_steps);
      double eta = double(tc.max_steps - step) * per_step;
      if (tc.max_minutes > 0) eta = std::min(eta, tc.max_minutes * 60 - elapsed());
      result.last_loss = window_loss / double(window_steps);
      loss_curve.emplace_back(step, result.last_loss);
      log.line("step ", step, "/", tc.max_steps, "  epoch ", batcher.epoch() + 1, "  loss ",
               std::fixed, std::setprecision(4), result.last_loss, "  lr ", std::scientific,
               std::setprecision(2), lr, std::fixed, "  tok/s ", std::setprecision(0), tps,
               "  |g| ", std::setprecision(2), norm, "  ETA ", fmt_duration(std::max(eta, 0.0)),
               std::defaultfloat);
      metrics << nlohmann::json{{"type", "train"}, {"step", step}, {"epoch", batcher.epoch()},
                                {"loss", result.last_loss}, {"lr", lr}, {"grad_norm", norm},
                                {"tokens_per_s", tps}, {"tokens_seen", tokens_seen},
                                {"elapsed_s", elapsed()}}.dump() << "\n" << std::flush;
      window_loss = window_tokens = 0, window_steps = 0;
      window_start = Clock::now();
    }
    if (step % tc.eval_every == 0 || step == tc.max_steps) {
      run_eval(step);
      if (tc.patience > 0 && evals_without_gain >= tc.patience) {
        result.stop_reason = "patience";
        break;
      }
    }
    if (tc.max_minutes > 0 && elapsed() > tc.max_minutes * 60) {
      result.stop_reason = "max_minutes";
      if (step % tc.eval_every != 0) run_eval(step);
      break;
    }
  }
  result.steps = step;
  plot_curves(out_dir, loss_curve, bleu_curve);

  // Final test-set score of the best checkpoint's weights.
  const std::string best = (fs::path(out_dir) / "checkpoints" / "best.h5").string();
  if (fs::exists(best)) model.load_state_dict(load_checkpoint(best).model_state);
  model.eval();
  const data::Corpus test_set = data::load_corpus(recipe.data.test[0], recipe.data.test[1], encode,
                                                  cfg.max_len, data::LengthPolicy::Truncate);
  const EvalResult t = evaluate(model, test_set.examples, tokenizer,
                                data::read_lines(recipe.data.test[1]), recipe.data.max_tokens,
                                int64_t(test_set.examples.size()), decode);
  result.test_bleu = t.bleu, result.test_chrf = t.chrf;
  metrics << nlohmann::json{{"type", "test"}, {"step", step}, {"test_loss", t.loss},
                            {"test_nll", t.nll}, {"test_bleu", t.bleu}, {"test_chrf", t.chrf},
                            {"elapsed_s", elapsed()}}.dump() << "\n" << std::flush;
  log.line("done: ", step, " steps (", result.stop_reason, ") in ", fmt_duration(elapsed()),
           "; test BLEU ", std::fixed, std::setprecision(2), t.bleu, ", chrF ", t.chrf,
           std::defaultfloat, " (", test_set.examples.size(), " sentences, best checkpoint)");
  return result;
}

}  // namespace loom::recipes
