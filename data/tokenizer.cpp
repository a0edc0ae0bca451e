// Tokenizer: SentencePiece load / encode / decode / train behind loom's id contract
// (pad 0, unk 1, bos 2, eos 3). See tokenizer.h.
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
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
             ", eos ", eos,
             " but loom needs pad 0, unk 1, bos 2, eos 3; retrain it with "
             "`loom prepare` (pad_id=0 unk_id=1 bos_id=2 eos_id=3)");
  return sp;
}

// Every line of `files` in order, for the trainer.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::vector<std::string>& files) : files_(files) { Next(); }
  bool done() const override { return done_; }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return status_; }
  std::size_t count() const { return count_; }
  void Next() override {
    while (!std::getline(in_, line_)) {
      if (next_file_ == files_.size()) {
        done_ = true;
        return;
      }
      const std::string& f = files_[next_file_++];
      in_ = std::ifstream(f, std::ios::binary);
      if (!in_) {
        status_ = sentencepiece::util::Status(sentencepiece::util::StatusCode::kNotFound,
                                              f + ": cannot open for reading");
        done_ = true;
        return;
      }
    }
    ++count_;
  }

 private:
  std::vector<std::string> files_;
  std::size_t next_file_ = 0, count_ = 0;
  std::ifstream in_;
  std::string line_;
  bool done_ = false;
  sentencepiece::util::Status status_;
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  LOOM_CHECK(!f.fail(), "train_tokenizer: ", path, ": cannot write it");
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
  LOOM_CHECK(status.ok(), "tokenizer: ", path, ": not a SentencePiece model (", status.ToString(),
             ")");
  return Tokenizer(checked(std::move(sp), path), path);
}

Tokenizer Tokenizer::from_serialized(const std::string& bytes, const std::string& source) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(bytes);
  LOOM_CHECK(status.ok(), "tokenizer: ", source, ": not a SentencePiece model (", status.ToString(),
             ")");
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
  // No "input" or "model_prefix" here: the model stores its trainer options, and file
  // paths in them would make two trainings on the same text differ byte for byte.
  const std::unordered_map<std::string, std::string> args = {
      {"vocab_size", std::to_string(vocab)},
      {"model_type", "unigram"},
      {"character_coverage", "1.0"},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"num_threads", "2"},
      {"minloglevel", "1"},
  };
  sentencepiece::SetRandomGeneratorSeed(kTrainSeed);
  const auto start = std::chrono::steady_clock::now();
  LineIterator lines(files);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  LOOM_CHECK(lines.status().ok(), "train_tokenizer: ", lines.status().ToString());
  LOOM_CHECK(status.ok(), "train_tokenizer: ", model_prefix, ": SentencePiece training failed (",
             status.ToString(), ")");
  const Tokenizer tok = Tokenizer::from_serialized(model, model_prefix + ".model");
  write_file(model_prefix + ".model", model);
  std::ostringstream pieces;  // SentencePiece's .vocab format: piece <tab> score
  for (int id = 0; id < tok.vocab_size(); ++id)
    pieces << tok.sp_->IdToPiece(id) << '\t' << tok.sp_->GetScore(id) << '\n';
  write_file(model_prefix + ".vocab", pieces.str());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log << "tokenizer: " << vocab << " pieces (unigram) on " << lines.count() << " lines, trained in "
      << seconds << " s\n";
}

}  // namespace loom::data
