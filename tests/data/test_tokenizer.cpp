// Tokenizer: training a tiny joint model, loom's special ids, encode/decode round trips,
// serialized bytes as a checkpoint would hold them, and errors naming the file.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/temp_dir.h"
#include "data/tokenizer.h"
#include "kernels/error.h"

namespace loom::test {
namespace {

namespace fs = std::filesystem;
using data::Tokenizer;

// A fresh folder under the system temp dir, removed at the end of the test.
#define CHECK_ERROR(expr, text)                                        \
  do {                                                                 \
    const std::string message_ = error_of([&] { (void)(expr); });      \
    CHECK_MESSAGE(message_.find(text) != std::string::npos, message_); \
  } while (0)

// A few hundred generated lines from small English and Spanish word lists.
void write_corpus(const fs::path& en, const fs::path& es) {
  const char* en_words[] = {"the",   "light", "God",   "said", "and",    "there", "was", "earth",
                            "water", "day",   "night", "good", "heaven", "man",   "land"};
  const char* es_words[] = {"la",  "luz",   "Dios",  "dijo",   "y",      "fué",   "tierra", "aguas",
                            "día", "noche", "buena", "cielos", "hombre", "señor", "año"};
  std::ofstream fe(en), fs_(es);
  for (int line = 0; line < 300; ++line) {
    for (int w = 0; w < 4 + line % 7; ++w) {
      fe << (w ? " " : "") << en_words[(line * 7 + w * 3) % 15];
      fs_ << (w ? " " : "") << es_words[(line * 5 + w * 11) % 15];
    }
    fe << ".\n";
    fs_ << ".\n";
  }
}

TEST_CASE("tokenizer: a trained model keeps the id contract and round-trips text") {
  TempDir dir("tokenizer");
  write_corpus(dir.path / "train.en", dir.path / "train.es");
  std::ostringstream log;
  data::train_tokenizer({(dir.path / "train.en").string(), (dir.path / "train.es").string()},
                        (dir.path / "spm").string(), 60, log);
  CHECK(log.str().find("60 pieces (unigram) on 600 lines") != std::string::npos);
  REQUIRE(fs::exists(dir.path / "spm.model"));
  REQUIRE(fs::exists(dir.path / "spm.vocab"));

  const Tokenizer tok = Tokenizer::load((dir.path / "spm.model").string());
  CHECK(tok.vocab_size() == 60);
  std::ifstream vocab(dir.path / "spm.vocab");
  std::string line;
  std::vector<std::string> pieces;
  while (std::getline(vocab, line)) pieces.push_back(line.substr(0, line.find('\t')));
  REQUIRE(pieces.size() == 60);
  CHECK(pieces[0] == "<pad>");
  CHECK(pieces[1] == "<unk>");
  CHECK(pieces[2] == "<s>");
  CHECK(pieces[3] == "</s>");

  for (const std::string text :
       {"God said there was light.", "y dijo Dios la luz fué buena.", "the earth and the waters"}) {
    const auto ids = tok.encode(text);
    REQUIRE(!ids.empty());
    for (const int32_t id : ids) {
      CHECK(id >= data::kUnkId);
      CHECK(id != data::kBosId);
      CHECK(id != data::kEosId);
      CHECK(id < 60);
    }
    CHECK(tok.decode(ids) == text);
    // pad / bos / eos around and inside the ids are skipped by decode.
    std::vector<int32_t> framed = {data::kBosId};
    framed.insert(framed.end(), ids.begin(), ids.end());
    framed.insert(framed.end(), {data::kEosId, data::kPadId, data::kPadId});
    CHECK(tok.decode(framed) == text);
  }
  // A character never seen in training maps to unk.
  const auto unk = tok.encode("λ");
  CHECK(std::find(unk.begin(), unk.end(), data::kUnkId) != unk.end());

  // Checkpoint path: the bytes give the same model.
  const std::string bytes = tok.serialized();
  std::ifstream model_file(dir.path / "spm.model", std::ios::binary);
  const std::string on_disk((std::istreambuf_iterator<char>(model_file)), {});
  CHECK(bytes == on_disk);
  const Tokenizer again = Tokenizer::from_serialized(bytes);
  CHECK(again.vocab_size() == tok.vocab_size());
  CHECK(again.encode("the light was good.") == tok.encode("the light was good."));
  CHECK(again.serialized() == bytes);

  // Training is deterministic: the same files give the same bytes.
  data::train_tokenizer({(dir.path / "train.en").string(), (dir.path / "train.es").string()},
                        (dir.path / "spm2").string(), 60, log);
  CHECK(Tokenizer::load((dir.path / "spm2.model").string()).serialized() == bytes);

  CHECK_ERROR(tok.decode({60}), "id 60 is outside the vocabulary [0, 60)");
  CHECK_ERROR(tok.decode({-1}), "id -1 is outside");
}

TEST_CASE("tokenizer: errors name the file") {
  TempDir dir("tokenizer-errors");
  const std::string missing = (dir.path / "missing.model").string();
  CHECK_ERROR(Tokenizer::load(missing), "tokenizer: " + missing + ": no such file");

  const std::string junk = (dir.path / "junk.model").string();
  std::ofstream(junk) << "this is not a model";
  CHECK_ERROR(Tokenizer::load(junk), "tokenizer: " + junk + ": not a SentencePiece model");
  CHECK_ERROR(Tokenizer::from_serialized("junk", "ckpt.h5:/tokenizer"),
              "tokenizer: ckpt.h5:/tokenizer: not a SentencePiece");

  std::ostringstream log;
  CHECK_ERROR(data::train_tokenizer({missing}, (dir.path / "m").string(), 50, log),
              missing + ": cannot open for reading");
  CHECK_ERROR(data::train_tokenizer({}, (dir.path / "m").string(), 50, log), "no input files");
}

}  // namespace
}  // namespace loom::test
