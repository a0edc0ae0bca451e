// End to end in seconds: a tiny generated parallel corpus, its SentencePiece model, a
// recipe, `train` for a few dozen updates with evaluations and checkpoints, then
// `translate` and `eval` from the checkpoint — the path `loom train` / `loom translate` /
// `loom eval` take, on a corpus small enough for a unit test.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/temp_dir.h"
#include "common/tiny_corpus.h"
#include "recipes/commands.h"
#include "recipes/recipe.h"
#include "recipes/trainer.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;

TEST_CASE("train then translate and eval end to end on a tiny corpus") {
  const test::TempDir tmp("smoke");
  const fs::path& dir = tmp.path;
  test::make_tiny_corpus(dir);
  const Recipe r = parse_recipe(
      test::tiny_recipe(dir,
                        "d_model = 32\nheads = 2\nkv_heads = 2\nffn = 64\nencoder_layers = 1\n"
                        "decoder_layers = 1\ndropout = 0.0\nmax_len = 32\n",
                        "[optim]\nlr = 3e-3\nwarmup = 10\n[train]\nmax_steps = 60\nlog_every = 10\n"
                        "eval_every = 30\neval_sentences = 10\nbeam = 2\n"),
      "smoke.toml");
  std::ostringstream console;
  const TrainResult result = train(r, (dir / "run").string(), console);
  INFO(console.str());
  CHECK(result.steps == 60);

  // metrics.jsonl: train lines with a falling loss, two evaluations, one test line.
  std::ifstream metrics(dir / "run" / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string l; std::getline(metrics, l);) lines.push_back(nlohmann::json::parse(l));
  std::vector<double> losses;
  int evals = 0, tests = 0;
  for (const auto& j : lines) {
    if (j["type"] == "train") losses.push_back(j["loss"].get<double>());
    evals += j["type"] == "eval";
    tests += j["type"] == "test";
  }
  REQUIRE(losses.size() == 6);
  CHECK(losses.back() < 0.6 * losses.front());
  CHECK(evals == 2);
  CHECK(tests == 1);
  CHECK(fs::exists(dir / "run" / "checkpoints" / "last.h5"));
  CHECK(fs::exists(dir / "run" / "checkpoints" / "best.h5"));
  CHECK(fs::exists(dir / "run" / "train.log"));
  CHECK(fs::exists(dir / "run" / "curves.png"));  // gnuplot-nox is installed by install-deps.sh

  // translate and eval read the checkpoint alone.
  std::istringstream in("one two three\nfour\n");
  std::ostringstream out;
  DecodeOptions decode;
  decode.beam = 2;
  translate_stream((dir / "run" / "checkpoints" / "best.h5").string(), decode, in, out);
  int out_lines = 0;
  for (char c : out.str()) out_lines += c == '\n';
  CHECK(out_lines == 2);
  std::ostringstream eval_out;
  EvalOptions eval;
  eval.decode = decode;
  eval.json = true;
  eval_command((dir / "run" / "checkpoints" / "best.h5").string(), eval, eval_out);
  const auto e = nlohmann::json::parse(eval_out.str());
  CHECK(e["sentences"] == 20);
  CHECK(std::isfinite(e["ppl"].get<double>()));
  CHECK(e["bleu"].get<double>() >= 0.0);
}

TEST_CASE("train a decoder-only language model on one text file") {
  const test::TempDir tmp("smoke-lm");
  test::make_tiny_corpus(tmp.path);
  const std::string d = tmp.path.string();
  const std::string text = "[model]\narch = \"decoder\"\nd_model = 32\nheads = 2\nkv_heads = 1\n"
                           "ffn = 64\nencoder_layers = 0\ndecoder_layers = 1\ndropout = 0.0\n"
                           "max_len = 32\nposition = \"rope\"\n"
                           "[data]\ntrain = [\"" + d + "/train.es\"]\ndev = [\"" + d + "/dev.es\"]\n"
                           "test = [\"" + d + "/test.es\"]\ntokenizer = \"" + d + "/spm.model\"\n"
                           "max_tokens = 600\n[optim]\nlr = 3e-3\nwarmup = 10\n"
                           "[train]\nmax_steps = 40\nlog_every = 10\neval_every = 20\n";
  std::ostringstream console;
  const TrainResult r = train(parse_recipe(text, "lm.toml"), (tmp.path / "run").string(), console);
  INFO(console.str());
  CHECK(r.steps == 40);
  std::ifstream metrics(tmp.path / "run" / "metrics.jsonl");
  std::vector<double> losses;
  nlohmann::json test_record;
  int evals = 0;
  for (std::string l; std::getline(metrics, l);) {
    const auto j = nlohmann::json::parse(l);
    if (j["type"] == "train") losses.push_back(j["loss"].get<double>());
    if (j["type"] == "eval") {
      ++evals;
      CHECK_FALSE(j.contains("dev_bleu"));  // nothing to translate
    }
    if (j["type"] == "test") test_record = j;
  }
  REQUIRE(losses.size() == 4);
  CHECK(losses.back() < 0.7 * losses.front());
  CHECK(evals == 2);
  CHECK(std::isfinite(test_record["test_ppl"].get<double>()));
  CHECK_FALSE(test_record.contains("test_bleu"));
  CHECK(console.str().find("test NLL ") != std::string::npos);
  CHECK(fs::exists(tmp.path / "run" / "checkpoints" / "best.h5"));
  // A one-file split is only for language models.
  CHECK(test::error_of([&] {
          parse_recipe("[data]\ntrain = [\"a.txt\"]\n", "t.toml");
        }) == "t.toml: data.train: expected [source_file, target_file] (a one-file text is for "
              "model.arch = \"decoder\")");
}

}  // namespace
}  // namespace loom::recipes
