#include "recipes/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/ops.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "kernels/cuda/runtime.h"
#include "kernels/threads.h"
#include "nn/loss.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/data_parallel.h"
#include "optim/param_groups.h"
#include "optim/schedule.h"
#include "recipes/checkpoint.h"
#include "recipes/distributed.h"
#include "recipes/resume.h"
#include "recipes/run_checkpoints.h"
#include "recipes/stop_signal.h"
#include "recipes/evaluate.h"
#include "recipes/toml_reader.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Writes every line to the console and to train.log.
// On a terminal, a live status line is redrawn in place after every update between the
// logged lines (which clear it first); it never reaches train.log.
struct Log {
  std::ostream& console;
  std::ofstream file;
  bool terminal = false;  // console is stdout and stdout a terminal
  bool live_shown = false;

  template <class... A> void line(const A&... a) {
    std::ostringstream os;
    (os << ... << a);
    if (live_shown) console << "\r\033[K";
    live_shown = false;
    console << os.str() << "\n" << std::flush;
    file << os.str() << "\n" << std::flush;
  }
  void live(const std::string& text) {
    if (!terminal) return;
    console << "\r\033[K" << text << std::flush;
    live_shown = true;
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

// OUT/curves.png: training loss and the dev score (BLEU, or NLL for a language model)
// against the update step, drawn by gnuplot when it is installed (package gnuplot-nox);
// silently skipped otherwise.
void plot_curves(const std::string& out_dir, const std::vector<std::pair<int64_t, double>>& loss,
                 const std::vector<std::pair<int64_t, double>>& dev, const std::string& dev_label) {
  if (loss.empty() || std::system("command -v gnuplot >/dev/null 2>&1") != 0) return;
  const fs::path dir(out_dir);
  std::ofstream l(dir / "loss.dat"), d(dir / "dev.dat");
  for (const auto& [step, v] : loss) l << step << " " << v << "\n";
  for (const auto& [step, v] : dev) d << step << " " << v << "\n";
  l.close(), d.close();
  std::ofstream script(dir / "curves.gp");
  script << "set terminal pngcairo size 900,500 noenhanced\nset output '" << (dir / "curves.png").string()
         << "'\nset xlabel 'update'\nset ylabel 'training loss'\nset y2label '" << dev_label << "'\n"
         << "set ytics nomirror\nset y2tics\nset grid\n"
         << "plot '" << (dir / "loss.dat").string() << "' with lines title 'loss', '"
         << (dir / "dev.dat").string() << "' axes x1y2 with linespoints title '" << dev_label << "'\n";
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

// What the loop counts beyond the step; saved under /metrics so a resumed run continues
// its early-stopping and logging exactly (the log window included).
struct Counters {
  double tokens_seen = 0;
  double best_score = -std::numeric_limits<double>::infinity();  // dev BLEU, or -NLL for an LM
  int64_t evals_without_gain = 0, skipped = 0, bad_in_a_row = 0;
  double window_loss = 0, window_tokens = 0;
  int64_t window_steps = 0;

  std::vector<std::pair<std::string, double>> to_metrics(int64_t train_examples) const {
    return {{"tokens_seen", tokens_seen},       {"best_dev_score", best_score},
            {"evals_without_gain", double(evals_without_gain)},
            {"skipped_steps", double(skipped)}, {"bad_in_a_row", double(bad_in_a_row)},
            {"window_loss", window_loss},       {"window_tokens", window_tokens},
            {"window_steps", double(window_steps)},
            {"train_examples", double(train_examples)}};
  }
  void from(const TrainingState& s) {
    tokens_seen = s.metric("tokens_seen"), best_score = s.metric("best_dev_score");
    evals_without_gain = int64_t(s.metric("evals_without_gain"));
    skipped = int64_t(s.metric("skipped_steps")), bad_in_a_row = int64_t(s.metric("bad_in_a_row"));
    window_loss = s.metric("window_loss"), window_tokens = s.metric("window_tokens");
    window_steps = int64_t(s.metric("window_steps"));
  }
};

// The checkpoint to resume from, or "" for a new run (see TrainOptions::resume).
std::string resume_path(const std::string& resume, const RunCheckpoints& ckpts, Log& log) {
  if (resume.empty()) {
    const auto files = ckpts.step_files();
    const bool has_last = fs::exists(ckpts.last_path());
    LOOM_CHECK(files.empty() && !has_last, ckpts.dir(), " already holds checkpoints (newest ",
               files.empty() ? ckpts.last_path() : files.front().second,
               "); continue that run with --resume auto, or train into another --out folder");
    return "";
  }
  if (resume != "auto") return resume;
  const auto found = ckpts.newest_resumable([&](const std::string& why) { log.line("resume: ", why); });
  if (!found) log.line("resume: no checkpoint in ", ckpts.dir(), "; starting a new run");
  return found.value_or("");
}

// One rank's training (the whole of it in a single process); see distributed.h for what
// changes with several ranks.
TrainResult train_rank(const Recipe& recipe, const std::string& out_dir, std::ostream& console,
                       const TrainOptions& options, const Distributed& dist) {
  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  const fs::path out(out_dir);
  RunCheckpoints ckpts((out / "checkpoints").string(), recipe.train.keep_last);
  if (dist.root()) ckpts.remove_stale_temporaries();
  // No live line under mpirun: the ranks' stdout is mpirun's pseudo-terminal, which it
  // stops reading while it stops a job, and a full one would block rank 0 mid-save.
  Log log{dist.root() ? console : null_stream(),
          dist.root() ? std::ofstream(out / "train.log", std::ios::app) : std::ofstream(),
          dist.comm->backend() == "single" && &console == &std::cout &&
              ::isatty(STDOUT_FILENO) == 1};
  const TrainConfig& tc = recipe.train;
  if (tc.threads > 0) kernels::set_num_threads(int(tc.threads));
  const std::string resume_from = resume_path(options.resume, ckpts, log);

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
  const int64_t train_examples = int64_t(train_set.examples.size());

  // Model and optimizer; the model on the recipe's device (batches are made on the host
  // and moved by the model; checkpoints copy back to the host).
  nn::Transformer model(cfg, tc.seed, tc.seed + 1);
  model.to(dist.device);
  const kernels::DType autocast = tc.precision == "bf16" ? kernels::DType::BF16 : kernels::DType::F32;
  if (dist.device.is_cuda()) kernels::cuda::set_allow_tf32(tc.precision == "tf32");
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
           cfg.vocab, ", position ", cfg.position,
           cfg.attention.kind == "full" ? "" : ", self-attention " + cfg.attention.describe(), ": ",
           n_params, " parameters; ", kernels::num_threads(), " threads");
  if (dist.device.is_cuda())
    log.line("device: ", dist.device, " (", kernels::cuda::device_name(dist.device.index),
             "), precision ", tc.precision,
             tc.precision == "bf16" ? " (bfloat16 GEMM operands in linear layers; float32 weights, "
                                      "optimizer, norms, attention and loss)"
                                    : "");

  data::BatcherOptions bo;
  bo.max_tokens = recipe.data.max_tokens;
  bo.seed = tc.seed;
  bo.world_size = dist.world, bo.rank = dist.rank;
  data::Batcher batcher(train_set.examples, bo);
  CheckpointMeta meta;
  meta.config_toml = resolved_config(recipe, cfg.vocab);
  DecodeOptions decode;
  decode.beam = int(tc.beam);

  TrainResult result;
  result.stop_reason = "max_steps";
  std::vector<std::pair<int64_t, double>> loss_curve, dev_curve;  // dev: BLEU, or NLL for an LM
  Counters n;
  int64_t step = 0;
  const std::string metrics_path = (out / "metrics.jsonl").string();
  auto same_tokenizer = [&](const Checkpoint& c, const std::string& path) {
    LOOM_CHECK(c.tokenizer_bytes == tokenizer.serialized(), path, ": its tokenizer differs from ",
               recipe.data.tokenizer, " (data.tokenizer): token ids would not mean the same pieces; "
               "point data.tokenizer at the run's tokenizer");
  };
  if (!resume_from.empty()) {
    Checkpoint c = load_checkpoint(resume_from, LoadParts::Everything);
    check_resume_world_size(c.meta.world_size, dist.world, resume_from);
    same_tokenizer(c, resume_from);
    for (const ConfigChange& ch : check_resume_config(c.meta.config_toml, meta.config_toml, resume_from))
      log.line("resume: ", ch.key, " ", ch.before, " -> ", ch.now);
    const int64_t saved_examples = int64_t(c.training->metric("train_examples"));
    LOOM_CHECK(saved_examples == train_examples, resume_from, ": the training corpus changed (",
               saved_examples, " examples then, ", train_examples, " now): the saved loader "
               "position indexes the old corpus; start a new run with --init-from ", resume_from);
    try {
      model.load_state_dict(c.model_state);
    } catch (const Error& e) {
      throw Error(detail::cat(resume_from, ": ", e.what()));
    }
    restore_training_state(*c.training, resume_from, adam, model.dropout_generator(), batcher);
    n.from(*c.training);
    step = c.meta.step;
    for (const nlohmann::json& j : dist.root() ? rewind_metrics(metrics_path, step)
                                               : std::vector<nlohmann::json>{}) {
      if (j["type"] == "train") loss_curve.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
      if (j["type"] == "eval")
        dev_curve.emplace_back(j["step"].get<int64_t>(),
                               j[cfg.is_seq2seq() ? "dev_bleu" : "dev_nll"].get<double>());
    }
    log.line("resumed from ", resume_from, ": step ", step, ", epoch ", batcher.epoch() + 1,
             ", best dev score ", std::isinf(n.best_score) ? std::string("none yet") : std::to_string(n.best_score));
  } else if (!tc.init_from.empty()) {
    const Checkpoint c = load_checkpoint(tc.init_from);
    same_tokenizer(c, tc.init_from);
    // Parameters the new model adds (e.g. Infini-attention's gates) keep their initial
    // values and are named; unexpected or reshaped ones are refused.
    const nn::LoadReport r = model.load_state_dict(c.model_state, /*strict=*/false);
    LOOM_CHECK(r.unexpected.empty() && r.wrong_shape.empty(), "train.init_from ", tc.init_from,
               ": load_state_dict: ", r.summary());
    if (r.missing.empty()) {
      log.line("init from ", tc.init_from, " (step ", c.meta.step, "): loaded all ",
               c.model_state.size(), " parameters; optimizer, schedule and data start fresh");
    } else {
      log.line("init from ", tc.init_from, " (step ", c.meta.step, "): loaded ", r.loaded.size(),
               " parameters; ", r.missing.size(), " new to this model keep their initial values (",
               nn::join_names(r.missing), "); optimizer, schedule and data start fresh");
    }
    for (const ConfigChange& ch : config_changes(c.meta.config_toml, meta.config_toml))
      if (ch.key.rfind("model.", 0) == 0) log.line("init from: ", ch.key, " ", ch.before, " -> ", ch.now);
  }
  // Every rank starts from rank 0's weights and draws its own dropout masks.
  optim::DataParallel dp(model.named_parameters(), dist.comm);
  dp.broadcast_parameters();
  use_rank_dropout_stream(model.dropout_generator(), dist.rank);
  if (dp.averages()) log.line(distributed_summary(dist, dp.bucket_names().size()));
  std::ofstream metrics;  // rank 0's
  if (dist.root()) metrics.open(metrics_path, std::ios::app);
  LOOM_CHECK(!dist.root() || metrics.good(), metrics_path, ": cannot open for writing");
  if (!resume_from.empty())
    metrics << nlohmann::json{{"type", "resume"}, {"step", step}, {"from", resume_from}}.dump() << "\n";

  auto save = [&](bool best) {
    meta.step = step, meta.epoch = batcher.epoch(), meta.tokens_seen = int64_t(n.tokens_seen);
    meta.world_size = dist.world;
    Checkpoint c;
    c.meta = meta;
    c.model_state = model.state_dict();
    c.tokenizer_bytes = tokenizer.serialized();
    c.training = capture_training_state(adam, model.dropout_generator(), batcher,
                                        n.to_metrics(train_examples));
    return ckpts.save(c, best);
  };
  // Evaluates on dev; returns whether dev BLEU improved on the best so far.
  auto run_eval = [&]() {
    log.live(detail::cat("step ", step, ": evaluating on dev (loss, and BLEU of ",
                         std::min<int64_t>(tc.eval_sentences, int64_t(dev_set.examples.size())),
                         " decoded sentences) ..."));
    model.eval();
    const EvalResult e = evaluate(model, dev_set.examples, tokenizer, dev_refs,
                                  recipe.data.max_tokens, tc.eval_sentences, decode);
    model.train();
    result.dev_nll = e.nll, result.dev_bleu = e.bleu, result.dev_chrf = e.chrf;
    const bool translation = cfg.is_seq2seq();
    // Rank 0's score decides for all (every rank evaluates the same weights).
    const double score = rank0_value(dist, translation ? e.bleu : -e.nll);
    dev_curve.emplace_back(step, translation ? e.bleu : e.nll);
    if (translation)
      log.line("eval step ", step, ": dev loss ", std::setprecision(4), e.loss, ", nll ", e.nll,
               ", ppl ", e.ppl, ", BLEU ", std::setprecision(2), std::fixed, e.bleu, ", chrF ",
               e.chrf, std::defaultfloat);
    else
      log.line("eval step ", step, ": dev loss ", std::setprecision(4), e.loss, ", nll ", e.nll,
               ", ppl ", e.ppl, std::defaultfloat);
    for (int64_t i = 0; i < std::min<int64_t>(tc.samples, int64_t(e.hypotheses.size())); ++i) {
      const int64_t line = dev_set.examples[size_t(i)].line;
      log.line("  src: ", dev_srcs[size_t(line)]);
      log.line("  ref: ", dev_refs[size_t(line)]);
      log.line("  hyp: ", e.hypotheses[size_t(i)]);
    }
    nlohmann::json record{{"type", "eval"}, {"step", step}, {"epoch", batcher.epoch()},
                          {"dev_loss", e.loss}, {"dev_nll", e.nll}, {"dev_ppl", e.ppl},
                          {"elapsed_s", elapsed()}};
    if (translation) record["dev_bleu"] = e.bleu, record["dev_chrf"] = e.chrf;
    metrics << record.dump() << "\n" << std::flush;
    if (score > n.best_score) {
      n.best_score = score;
      n.evals_without_gain = 0;
      return true;
    }
    ++n.evals_without_gain;
    return false;
  };

  const int64_t save_every = tc.save_every > 0 ? tc.save_every : tc.eval_every;
  auto window_start = Clock::now();
  double window_wait = 0;  // dp.wait_seconds() at window_start
  {
    const StopSignal stop;
    while (step < tc.max_steps) {
      const double lr = schedule.lr(step + 1);
      adam.set_lr(lr);
      double step_loss = 0, step_tokens = 0;
      const uint64_t dropout_before = model.dropout_generator().offset;
      for (int64_t micro = 0; micro < recipe.optim.accumulate; ++micro) {
        const data::Batch b = batcher.next();
        nn::SequenceLoss l = [&] {
          const ag::Autocast scope(autocast);  // backward needs no scope: its nodes know
          return nn::sequence_loss(batch_logits(model, b), b.tgt_out, cfg.label_smoothing,
                                   nn::kPad, /*with_nll=*/false);
        }();
        const double value = l.loss.item<double>();
        step_loss += value * double(l.tokens);
        step_tokens += double(l.tokens);
        // With several ranks every rank joins the gradient averaging; a non-finite loss
        // anywhere makes the global loss below non-finite and every rank skips the update.
        if (!std::isfinite(value) && dist.world == 1) {
          ag::clear_tape();
          continue;
        }
        // The last micro-batch's backward also averages the gradients across ranks.
        dp.backward(l.loss * (1.0 / double(recipe.optim.accumulate)),
                    micro + 1 == recipe.optim.accumulate);
      }
      const StepTotals all = agree_on_step(dist, step_loss, step_tokens, stop.received() != 0,
                                           tc.max_minutes > 0 && elapsed() > tc.max_minutes * 60,
                                           model.dropout_generator(), dropout_before);
      step_tokens = all.tokens;
      const double loss = all.loss_sum / std::max(step_tokens, 1.0);
      if (!std::isfinite(loss)) {
        adam.zero_grad();
        ++n.skipped;
        LOOM_CHECK(++n.bad_in_a_row < tc.max_bad_steps, "train: ", n.bad_in_a_row,
                   " non-finite losses in a row at step ", step + 1,
                   "; lower optim.lr, raise optim.warmup or check the data");
        log.line("step ", step + 1, ": non-finite loss, update skipped (", n.skipped, " so far)");
        continue;
      }
      n.bad_in_a_row = 0;
      const double norm = recipe.optim.clip_norm > 0
                              ? optim::clip_grad_norm(model.named_parameters(), recipe.optim.clip_norm)
                              : optim::grad_norm(model.named_parameters());
      adam.step();
      adam.zero_grad();
      ++step;
      n.tokens_seen += step_tokens;
      n.window_loss += loss, n.window_tokens += step_tokens, ++n.window_steps;

      // The progress figures of the current log window (loss, tokens/s, ETA).
      const double secs = std::chrono::duration<double>(Clock::now() - window_start).count();
      const double tps = n.window_tokens / std::max(secs, 1e-9);
      double eta = double(tc.max_steps - step) * secs / double(n.window_steps);
      if (tc.max_minutes > 0) eta = std::min(eta, tc.max_minutes * 60 - elapsed());
      std::ostringstream progress;
      progress << "step " << step << "/" << tc.max_steps << "  epoch " << batcher.epoch() + 1
               << "  loss " << std::fixed << std::setprecision(4)
               << n.window_loss / double(n.window_steps) << "  lr " << std::scientific
               << std::setprecision(2) << lr << std::fixed << "  tok/s " << std::setprecision(0)
               << tps << "  |g| " << std::setprecision(2) << norm << "  ETA "
               << fmt_duration(std::max(eta, 0.0));
      if (step % tc.log_every == 0 || step == tc.max_steps) {
        result.last_loss = n.window_loss / double(n.window_steps);
        loss_curve.emplace_back(step, result.last_loss);
        log.line(progress.str());
        nlohmann::json record{{"type", "train"}, {"step", step}, {"epoch", batcher.epoch()},
                              {"loss", result.last_loss}, {"lr", lr}, {"grad_norm", norm},
                              {"tokens_per_s", tps}, {"tokens_seen", n.tokens_seen},
                              {"elapsed_s", elapsed()}};
        // Rank 0's time blocked on gradient all-reduces in the window (transfer not hidden
        // behind backward, and waiting for slower ranks).
        if (dist.world > 1) record["allreduce_wait_s"] = dp.wait_seconds() - window_wait;
        metrics << record.dump() << "\n" << std::flush;
        n.window_loss = n.window_tokens = 0, n.window_steps = 0;
        window_start = Clock::now(), window_wait = dp.wait_seconds();
      } else {
        log.live(progress.str());
      }
      const bool out_of_time = all.out_of_time;
      const bool eval_due = step % tc.eval_every == 0 || step == tc.max_steps || out_of_time;
      const bool improved = eval_due && run_eval();
      if ((eval_due || step % save_every == 0 || all.stop) && dist.root()) save(improved);
      if (all.stop) {
        result.stop_reason = "signal";
        log.line(StopSignal::name(stop.received()), ": saved step ", step, " in ", ckpts.dir(),
                 "; continue with: loom train ", recipe.source, " --resume auto --out ", out_dir);
        break;
      }
      if (tc.patience > 0 && n.evals_without_gain >= tc.patience) {
        result.stop_reason = "patience";
        break;
      }
      if (out_of_time) {
        result.stop_reason = "max_minutes";
        break;
      }
    }
  }
  result.steps = step;
  if (!dist.root()) return result;  // the plot and the test score are rank 0's
  plot_curves(out_dir, loss_curve, dev_curve, cfg.is_seq2seq() ? "dev BLEU" : "dev NLL");
  if (result.stop_reason == "signal") return result;

  // Final test-set score of the best checkpoint's weights.
  if (fs::exists(ckpts.best_path())) model.load_state_dict(load_checkpoint(ckpts.best_path()).model_state);
  model.eval();
  const data::Corpus test_set = data::load_corpus(recipe.data.test[0], recipe.data.test[1], encode,
                                                  cfg.max_len, data::LengthPolicy::Truncate);
  const EvalResult t = evaluate(model, test_set.examples, tokenizer,
                                data::read_lines(recipe.data.test[1]), recipe.data.max_tokens,
                                int64_t(test_set.examples.size()), decode);
  result.test_bleu = t.bleu, result.test_chrf = t.chrf;
  nlohmann::json record{{"type", "test"}, {"step", step}, {"test_loss", t.loss}, {"test_nll", t.nll},
                        {"test_ppl", t.ppl}, {"elapsed_s", elapsed()}};
  if (cfg.is_seq2seq()) record["test_bleu"] = t.bleu, record["test_chrf"] = t.chrf;
  metrics << record.dump() << "\n" << std::flush;
  if (cfg.is_seq2seq())
    log.line("done: ", step, " steps (", result.stop_reason, ") in ", fmt_duration(elapsed()),
             "; test BLEU ", std::fixed, std::setprecision(2), t.bleu, ", chrF ", t.chrf,
             std::defaultfloat, " (", test_set.examples.size(), " sentences, best checkpoint)");
  else
    log.line("done: ", step, " steps (", result.stop_reason, ") in ", fmt_duration(elapsed()),
             "; test NLL ", std::fixed, std::setprecision(4), t.nll, ", ppl ", std::setprecision(2),
             t.ppl, std::defaultfloat, " (", test_set.examples.size(), " lines, best checkpoint)");
  return result;
}

}  // namespace

TrainResult train(const Recipe& recipe, const std::string& out_dir, std::ostream& console,
                  const TrainOptions& options) {
  const Distributed dist = start_distributed(recipe.device);
  return or_abort_all_ranks(dist,
                            [&] { return train_rank(recipe, out_dir, console, options, dist); });
}

}  // namespace loom::recipes
