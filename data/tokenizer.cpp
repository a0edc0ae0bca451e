// Tokenizer: SentencePiece load / encode / decode / train behind loom's id contract
// (pad 0, unk 1, bos 2, eos 3). See tokenizer.h.
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <chrono>
#include <filesystem>
#include <ostream>
#include <unordered_map>

#include "kernels/error.h"

namespace loom::data {
namespace {

// Seed for the trainer's random generator; training reads every line (no sampling), so
// the seed only pins down anything SentencePiece might still randomize.
constexpr unsigned kTrainSeed = 1234;

std::shared_ptr<const sentencepiece::SentencePieceProcessor> checked(
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp, const std::string& source) {
  const int pad = sp->pad_id(), unk = sp->unk_id(), bos = sp->bos_id(), eos = sp->eos_id();
  LOOM_CHECK(pad == kPadId && unk == kUnkId && bos == kBosId && eos == kEosId,
             "tokenizer: ", source, ": special ids are pad ", pad, ", unk ", unk, ", bos ", bos,
             ", eos ", eos, " but loom needs pad 0, unk 1, bos 2, eos 3; retrain it with "
             "`loom prepare` (pad_id=0 unk_id=1 bos_id=2 eos_id=3)");
  return sp;
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp,
                     std::string source)
    : sp_(std::move(sp)), source_(std::move(source)) {}

Tokenizer Tokenizer::load(const std::string& path) {
  LOOM_CHECK(std::filesystem::is_regular_file(path), "tokenizer: ", path,
             ": no such file; run `loom prepare bible` or pass the path of a SentencePiece model");
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->Load(path);
  LOOM_CHECK(status.ok(), "tokenizer: ", path, ": not a SentencePiece model (",
             status.ToString(), ")");
  return Tokenizer(checked(std::move(sp), path), path);
}

Tokenizer Tokenizer::from_serialized(const std::string& bytes, const std::string& source) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(bytes);
  LOOM_CHECK(status.ok(), "tokenizer: ", source, ": not a SentencePiece model (",
             status.ToString(), ")");
  return Tokenizer(checked(std::move(sp), source), source);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  LOOM_CHECK(status.ok(), "tokenizer: ", source_, ": encode failed (", status.ToString(), ")");
  return {ids.begin(), ids.end()};
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const int32_t n = vocab_size();
  std::vector<int> pieces;
  pieces.reserve(ids.size());
  for (const int32_t id : ids) {
    LOOM_CHECK(id >= 0 && id < n, "tokenizer: ", source_, ": id ", id,
               " is outside the vocabulary [0, ", n, ")");
    if (id != kPadId && id != kBosId && id != kEosId) pieces.push_back(id);
  }
  std::string text;
  const auto status = sp_->Decode(pieces, &text);
  LOOM_CHECK(status.ok(), "tokenizer: ", source_, ": decode failed (", status.ToString(), ")");
  return text;
}

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::string Tokenizer::serialized() const { return sp_->serialized_model_proto(); }

void train_tokenizer(const std::vector<std::string>& files, const std::string& model_prefix,
                     int vocab, std::ostream& log) {
  LOOM_CHECK(!files.empty(), "train_tokenizer: ", model_prefix, ": no input files");
  LOOM_CHECK(vocab > 4, "train_tokenizer: ", model_prefix, ": vocab ", vocab,
             " leaves no room beside the 4 special pieces");
  std::string inputs;
  for (const auto& f : files) {
    LOOM_CHECK(std::filesystem::is_regular_file(f), "train_tokenizer: ", f, ": no such file");
    LOOM_CHECK(f.find(',') == std::string::npos, "train_tokenizer: ", f,
               ": SentencePiece cannot read a path containing ','; rename it");
    inputs += (inputs.empty() ? "" : ",") + f;
  }
  const std::unordered_map<std::string, std::string> args = {
      {"input", inputs},
      {"model_prefix", model_prefix},
      {"vocab_size", std::to_string(vocab)},
      {"model_type", "unigram"},
      {"character_coverage", "1.0"},
      {"pad_id", "0"}, {"unk_id", "1"}, {"bos_id", "2"}, {"eos_id", "3"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"num_threads", "2"},
      {"minloglevel", "1"},
  };
  sentencepiece::SetRandomGeneratorSeed(kTrainSeed);
  const auto start = std::chrono::steady_clock::now();
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  LOOM_CHECK(status.ok(), "train_tokenizer: ", model_prefix, ": SentencePiece training failed (",
             status.ToString(), ")");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log << "tokenizer: " << model_prefix << ".model, " << vocab << " pieces (unigram), trained in "
      << seconds << " s\n";
}

}  // namespace loom::data
