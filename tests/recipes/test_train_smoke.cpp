// End to end in seconds: a tiny generated parallel corpus, its SentencePiece model, a
// recipe, `train` for a few dozen updates with evaluations and checkpoints, then
// `translate` and `eval` from the checkpoint — the path `loom train` / `loom translate` /
// `loom eval` take, on a corpus small enough for a unit test.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "data/tokenizer.h"
#include "recipes/commands.h"
#include "recipes/recipe.h"
#include "recipes/trainer.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;

// Number words, English -> Spanish, 2..5 words per sentence.
void write_corpus(const fs::path& dir, const std::string& split, int n, uint64_t seed) {
  const char* en[] = {"one", "two", "three", "four", "five", "six", "seven", "eight"};
  const char* es[] = {"uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho"};
  std::mt19937_64 rng(seed);
  std::ofstream fen(dir / (split + ".en")), fes(dir / (split + ".es"));
  for (int i = 0; i < n; ++i) {
    const int len = 2 + int(rng() % 4);
    for (int j = 0; j < len; ++j) {
      const int w = int(rng() % 8);
      fen << (j ? " " : "") << en[w];
      fes << (j ? " " : "") << es[w];
    }
    fen << "\n";
    fes << "\n";
  }
}

TEST_CASE("train then translate and eval end to end on a tiny corpus") {
  const fs::path dir = fs::temp_directory_path() / ("loom-smoke-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_corpus(dir, "train", 400, 1);
  write_corpus(dir, "dev", 20, 2);
  write_corpus(dir, "test", 20, 3);
  std::ostringstream tok_log;
  data::train_tokenizer({(dir / "train.en").string(), (dir / "train.es").string()},
                        (dir / "spm").string(), 36, tok_log);
  const std::string d = dir.string();
  std::ostringstream recipe;
  recipe << "[model]\nd_model = 32\nheads = 2\nkv_heads = 2\nffn = 64\nencoder_layers = 1\n"
         << "decoder_layers = 1\ndropout = 0.0\nmax_len = 32\n"
         << "[data]\ntrain = [\"" << d << "/train.en\", \"" << d << "/train.es\"]\n"
         << "dev = [\"" << d << "/dev.en\", \"" << d << "/dev.es\"]\n"
         << "test = [\"" << d << "/test.en\", \"" << d << "/test.es\"]\n"
         << "tokenizer = \"" << d << "/spm.model\"\nmax_tokens = 600\n"
         << "[optim]\nlr = 3e-3\nwarmup = 10\n"
         << "[train]\nmax_steps = 60\nlog_every = 10\neval_every = 30\neval_sentences = 10\nbeam = 2\n";
  const Recipe r = parse_recipe(recipe.str(), "smoke.toml");
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
  eval_command((dir / "run" / "checkpoints" / "best.h5").string(), "test", decode, true, eval_out);
  const auto e = nlohmann::json::parse(eval_out.str());
  CHECK(e["sentences"] == 20);
  CHECK(std::isfinite(e["ppl"].get<double>()));
  CHECK(e["bleu"].get<double>() >= 0.0);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace loom::recipes
