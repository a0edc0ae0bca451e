// Exact resume (issue 6): training N updates straight, or K, stopping (at max_steps, or by
// SIGTERM sent to a real `loom train` process), then resuming to N, gives bitwise the same
// weights, AdamW moments, RNG streams, loader position and logged loss sequence — with
// dropout on and gradient accumulation. Also: --resume auto skipping a truncated newest
// checkpoint, kill -9 during saves (three times, then resume to N bitwise), refusing a
// frozen-key change, and --init-from.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "common/run_metrics.h"
#include "common/temp_dir.h"
#include "common/tiny_corpus.h"
#include "recipes/checkpoint.h"
#include "recipes/h5.h"
#include "recipes/recipe.h"
#include "recipes/trainer.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;
using loom::test::losses;

const char* kModel =
    "d_model = 16\nheads = 2\nkv_heads = 1\nffn = 32\nencoder_layers = 1\ndecoder_layers = 1\n"
    "dropout = 0.1\nmax_len = 32\n";

std::string recipe_text(const fs::path& dir, int64_t max_steps, int64_t accumulate,
                        int64_t save_every = 2) {
  std::ostringstream rest;
  rest << "[optim]\nlr = 3e-3\nwarmup = 5\naccumulate = " << accumulate << "\n"
       << "[train]\nmax_steps = " << max_steps << "\nlog_every = 1\neval_every = 1000\n"
       << "eval_sentences = 2\nsamples = 0\nbeam = 1\nthreads = 1\nsave_every = " << save_every
       << "\n";
  return test::tiny_recipe(dir, kModel, rest.str());
}

TrainResult run(const fs::path& dir, const fs::path& out, int64_t max_steps, int64_t accumulate,
                const std::string& resume = "", std::string* console_text = nullptr,
                int64_t save_every = 2) {
  std::ostringstream console;
  const TrainResult r =
      train(parse_recipe(recipe_text(dir, max_steps, accumulate, save_every), "resume.toml"),
            out.string(), console, {resume});
  if (console_text) *console_text = console.str();
  return r;
}

// Every dataset's values, bitwise, except the dev-score bookkeeping (a run stopped at
// max_steps K evaluated at K, which the straight run did not).
void check_same_state(const std::string& a, const std::string& b) {
  const h5::File fa = h5::File::open(a), fb = h5::File::open(b);
  CHECK(fa.int_attr("step") == fb.int_attr("step"));
  const std::vector<std::string> names = fa.datasets();
  REQUIRE(names == fb.datasets());
  int compared = 0;
  for (const std::string& name : names) {
    if (name == "metrics/best_dev_score" || name == "metrics/evals_without_gain") continue;
    INFO(name);
    const h5::Dataset da = fa.dataset(name), db = fb.dataset(name);
    REQUIRE(da.type_name() == db.type_name());
    if (da.type_name() == "float32") CHECK(da.read<float>().data == db.read<float>().data);
    if (da.type_name() == "float64") CHECK(da.read<double>().data == db.read<double>().data);
    if (da.type_name() == "int64") CHECK(da.read<int64_t>().data == db.read<int64_t>().data);
    if (da.type_name() == "uint8") CHECK(da.read<uint8_t>().data == db.read<uint8_t>().data);
    ++compared;
  }
  CHECK(compared > 50);
}

TEST_CASE("resume: K updates then resume to N equals N straight bitwise with dropout and accumulation") {
  const test::TempDir tmp("resume");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  run(tmp.path, tmp.path / "straight", 9, 2);
  run(tmp.path, tmp.path / "split", 5, 2);
  std::string log;
  const TrainResult r = run(tmp.path, tmp.path / "split", 9, 2, "auto", &log);
  CHECK(r.steps == 9);
  CHECK(log.find("resumed from " + (tmp.path / "split/checkpoints/step-5.h5").string()) != std::string::npos);
  CHECK(log.find("resume: train.max_steps 5 -> 9") != std::string::npos);
  check_same_state((tmp.path / "straight/checkpoints/last.h5").string(),
                   (tmp.path / "split/checkpoints/last.h5").string());
  const auto a = losses(tmp.path / "straight"), b = losses(tmp.path / "split");
  REQUIRE(a.size() == 9);
  CHECK(a == b);  // exact doubles, as logged
  // keep_last = 3: step-4, 6, 8 and 9 were saved after the resume; 3 remain.
  std::vector<std::string> steps;
  for (const auto& e : fs::directory_iterator(tmp.path / "split/checkpoints"))
    steps.push_back(e.path().filename().string());
  std::sort(steps.begin(), steps.end());
  CHECK(steps == std::vector<std::string>{"best.h5", "last.h5", "step-6.h5", "step-8.h5", "step-9.h5"});
}

TEST_CASE("resume: a real loom train process stopped by SIGTERM saves and resumes bitwise") {
  const test::TempDir tmp("sigterm");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  const int64_t n = 150;
  const std::string recipe = tmp.write("r.toml", recipe_text(tmp.path, n, 1));
  const fs::path out = tmp.path / "killed";
  fs::create_directories(out);
  const std::string console = (tmp.path / "console.txt").string();
  const char* argv[] = {LOOM_BINARY, "train", recipe.c_str(), "--out", out.c_str(), nullptr};
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the child only redirects its output and execs loom
    const int fd = ::open(console.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(LOOM_BINARY, const_cast<char* const*>(argv));
    _exit(127);
  }
  // Wait for a few logged updates, then ask it to stop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (;;) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    if (losses(out).size() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(kill(pid, SIGTERM) == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  std::ifstream in(console);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO(text);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(text.find("SIGTERM: saved step ") != std::string::npos);
  const int64_t stopped_at = h5::File::open((out / "checkpoints/last.h5").string()).int_attr("step");
  REQUIRE(stopped_at < n);  // the signal came mid-run
  CHECK(text.find("done:") == std::string::npos);  // no final test evaluation

  run(tmp.path, out, n, 1, "auto");
  run(tmp.path, tmp.path / "straight", n, 1);
  check_same_state((tmp.path / "straight/checkpoints/last.h5").string(),
                   (out / "checkpoints/last.h5").string());
  CHECK(losses(tmp.path / "straight") == losses(out));
}

// `loom train RECIPE --out OUT [--resume auto]` as a child process, its output in `console`.
pid_t start_loom_train(const std::string& recipe, const fs::path& out, const std::string& console,
                       bool resume) {
  std::vector<std::string> args = {LOOM_BINARY, "train", recipe, "--out", out.string()};
  if (resume) args.insert(args.end(), {"--resume", "auto"});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {  // the child only redirects its output and execs loom
    const int fd = ::open(console.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(LOOM_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

// Complete lines in the run's metrics.jsonl (a line being written has no newline yet).
int64_t logged_lines(const fs::path& out) {
  std::ifstream in(out / "metrics.jsonl");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return std::count(text.begin(), text.end(), '\n');
}

bool saving_now(const fs::path& checkpoints) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(checkpoints, ec))
    if (e.path().filename().string().starts_with(".tmp-")) return true;
  return false;
}

TEST_CASE("resume: kill -9 in the middle of saves leaves valid checkpoints; auto resumes bitwise") {
  const test::TempDir tmp("sigkill");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  const int64_t n = 100;
  const std::string recipe = tmp.write("r.toml", recipe_text(tmp.path, n, 1, /*save_every=*/1));
  const fs::path out = tmp.path / "killed", checkpoints = out / "checkpoints";
  fs::create_directories(out);
  const std::string console = (tmp.path / "console.txt").string();
  for (int round = 0; round < 3; ++round) {  // the first run, then two resumed ones, all killed
    const int64_t before = logged_lines(out);
    const pid_t pid = start_loom_train(recipe, out, console, round > 0);
    REQUIRE(pid > 0);
    // A few updates in, SIGKILL the moment a save's temporary file exists.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!(logged_lines(out) >= before + 4 && saving_now(checkpoints))) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    REQUIRE(kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    // Every checkpoint left verifies; last.h5 is among them.
    CHECK(fs::exists(checkpoints / "last.h5"));
    for (const auto& e : fs::directory_iterator(checkpoints)) {
      const std::string name = e.path().filename().string();
      if (name.starts_with(".tmp-")) continue;
      INFO(name);
      CHECK(verify_checkpoint(e.path().string()).empty());
    }
  }
  run(tmp.path, out, n, 1, "auto", nullptr, 1);  // to the end
  CHECK_FALSE(saving_now(checkpoints));          // the killed saves' temporaries are gone
  run(tmp.path, tmp.path / "straight", n, 1, "", nullptr, 1);
  check_same_state((tmp.path / "straight/checkpoints/last.h5").string(),
                   (checkpoints / "last.h5").string());
  CHECK(losses(tmp.path / "straight") == losses(out));
}

TEST_CASE("resume: auto skips a truncated newest checkpoint and names it") {
  const test::TempDir tmp("truncated");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  const fs::path out = tmp.path / "run";
  run(tmp.path, out, 4, 1);  // step-2.h5, step-4.h5 (= last.h5, best.h5)
  const fs::path newest = out / "checkpoints/step-4.h5";
  fs::resize_file(newest, fs::file_size(newest) / 2);
  std::string log;
  run(tmp.path, out, 6, 1, "auto", &log);
  CHECK(log.find("resume: skipping " + newest.string()) != std::string::npos);
  CHECK(log.find("resumed from " + (out / "checkpoints/step-2.h5").string() + ": step 2") !=
        std::string::npos);
  // metrics.jsonl was rewound to step 2, then steps 3..6 logged once each.
  std::vector<int64_t> steps;
  for (const auto& [s, loss] : losses(out)) steps.push_back(s);
  CHECK(steps == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("resume: refusals: a new run over checkpoints, a frozen key, another tokenizer") {
  const test::TempDir tmp("refuse");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  const fs::path out = tmp.path / "run";
  run(tmp.path, out, 2, 1);
  CHECK(test::error_of([&] { run(tmp.path, out, 4, 1); }) ==
        (out / "checkpoints").string() + " already holds checkpoints (newest " +
            (out / "checkpoints/step-2.h5").string() +
            "); continue that run with --resume auto, or train into another --out folder");
  const std::string bigger = recipe_text(tmp.path, 4, 1);
  const Recipe r = parse_recipe(bigger, "r.toml", {"model.d_model=32", "optim.lr=1e-3"});
  std::ostringstream console;
  const std::string ckpt = (out / "checkpoints/step-2.h5").string();
  CHECK(test::error_of([&] { train(r, out.string(), console, {"auto"}); }) ==
        "cannot resume from " + ckpt + ": model.d_model 16 -> 32 (these keys fix the parameters' "
        "shapes or the batches and cannot change on resume; drop the --set / recipe change, or "
        "start a new run with --init-from " + ckpt + ")");
  // A different tokenizer (retrained with another vocabulary) is named.
  std::ostringstream tok_log;
  data::train_tokenizer({(tmp.path / "train.en").string(), (tmp.path / "train.es").string()},
                        (tmp.path / "other").string(), 30, tok_log);
  const Recipe other_tok = parse_recipe(bigger, "r.toml",
                                        {"data.tokenizer=\"" + (tmp.path / "other.model").string() + "\""});
  const std::string e = test::error_of([&] { train(other_tok, out.string(), console, {"auto"}); });
  INFO(e);
  CHECK(e.find("its tokenizer differs from " + (tmp.path / "other.model").string()) != std::string::npos);
}

TEST_CASE("init-from: a new run starts from another run's weights and reports them") {
  const test::TempDir tmp("init-from");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  run(tmp.path, tmp.path / "base", 2, 1);
  const std::string ckpt = (tmp.path / "base/checkpoints/last.h5").string();
  std::ostringstream console;
  const Recipe longer = parse_recipe(recipe_text(tmp.path, 1, 1), "r.toml",
                                     {"train.init_from=\"" + ckpt + "\"", "model.max_len=48"});
  train(longer, (tmp.path / "tuned").string(), console);
  CHECK(console.str().find("init from " + ckpt + " (step 2): loaded all ") != std::string::npos);
  CHECK(console.str().find("init from: model.max_len 32 -> 48") != std::string::npos);
  const Recipe wider = parse_recipe(recipe_text(tmp.path, 1, 1), "r.toml",
                                    {"train.init_from=\"" + ckpt + "\"", "model.ffn=40"});
  const std::string e = test::error_of([&] { train(wider, (tmp.path / "wide").string(), console); });
  INFO(e);
  CHECK(e.find("train.init_from " + ckpt + ": load_state_dict: ") == 0);
  CHECK(e.find("encoder.layers.0.ffn.fc1.weight: given [32,16], the model has [40,16]") != std::string::npos);
  // Infini-attention adds a gate per self-attention: new parameters, named, initial values.
  const Recipe infini = parse_recipe(
      recipe_text(tmp.path, 1, 1), "r.toml",
      {"train.init_from=\"" + ckpt + "\"", "model.attention.kind=\"infini\"",
       "model.attention.segment=8", "model.attention.layers=\"decoder\""});
  std::ostringstream infini_console;
  train(infini, (tmp.path / "infini").string(), infini_console);
  INFO(infini_console.str());
  CHECK(infini_console.str().find("new to this model keep their initial values "
                                  "(decoder.layers.0.self_attn.gate)") != std::string::npos);
  CHECK(infini_console.str().find(", self-attention infini segment 8 delta rule (decoder): ") !=
        std::string::npos);
}

}  // namespace
}  // namespace loom::recipes
