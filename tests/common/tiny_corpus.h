// A parallel corpus small enough for unit tests (number words, English -> Spanish, 2..5
// words a sentence), its SentencePiece model and a recipe over it: what the trainer tests
// train on in a second.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "data/tokenizer.h"

namespace loom::test {

inline void write_number_corpus(const std::filesystem::path& dir, const std::string& split, int n,
                                uint64_t seed) {
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

// train/dev/test splits and spm.model (vocabulary 36) in `dir`.
inline void make_tiny_corpus(const std::filesystem::path& dir, int train = 400, int dev = 20,
                             int test = 20) {
  write_number_corpus(dir, "train", train, 1);
  write_number_corpus(dir, "dev", dev, 2);
  write_number_corpus(dir, "test", test, 3);
  std::ostringstream tok_log;
  data::train_tokenizer({(dir / "train.en").string(), (dir / "train.es").string()},
                        (dir / "spm").string(), 36, tok_log);
}

// A recipe over make_tiny_corpus(dir): the [model] of the caller (TOML lines), the data
// keys, then `rest` (e.g. "[optim]\nlr = 3e-3\n[train]\nmax_steps = 10\n").
inline std::string tiny_recipe(const std::filesystem::path& dir, const std::string& model,
                               const std::string& rest) {
  const std::string d = dir.string();
  std::ostringstream r;
  r << "[model]\n"
    << model << "[data]\ntrain = [\"" << d << "/train.en\", \"" << d << "/train.es\"]\n"
    << "dev = [\"" << d << "/dev.en\", \"" << d << "/dev.es\"]\n"
    << "test = [\"" << d << "/test.en\", \"" << d << "/test.es\"]\n"
    << "tokenizer = \"" << d << "/spm.model\"\nmax_tokens = 600\n"
    << rest;
  return r.str();
}

}  // namespace loom::test
