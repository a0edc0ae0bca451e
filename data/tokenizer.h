// Tokenizer: a SentencePiece model (Kudo & Richardson 2018, "SentencePiece: A simple and
// language independent subword tokenizer", arXiv:1808.06226) used through the library,
// never a subprocess. loom's id contract, checked on every load: pad 0, unk 1, bos 2,
// eos 3. The model's bytes travel inside checkpoints (serialized / from_serialized).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace loom::data {

inline constexpr int32_t kPadId = 0;
inline constexpr int32_t kUnkId = 1;
inline constexpr int32_t kBosId = 2;
inline constexpr int32_t kEosId = 3;

class Tokenizer {
 public:
  // A model file written by train_tokenizer (or any SentencePiece model with loom's ids).
  static Tokenizer load(const std::string& path);
  // The bytes serialized() returned; `source` names them in errors (e.g. a checkpoint).
  static Tokenizer from_serialized(const std::string& bytes,
                                   const std::string& source = "serialized tokenizer");

  // Text -> piece ids, without bos/eos (the caller adds them where the model wants them).
  std::vector<int32_t> encode(std::string_view text) const;
  // Ids -> text; pad, bos and eos are skipped, an id outside [0, vocab_size) is an error.
  std::string decode(const std::vector<int32_t>& ids) const;
  int vocab_size() const;
  // The model file's bytes, for checkpoints.
  std::string serialized() const;

 private:
  friend void train_tokenizer(const std::vector<std::string>&, const std::string&, int,
                              std::ostream&);
  Tokenizer(std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp, std::string source);
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;
  std::string source_;
};

// Trains one unigram model on the lines of `files` and writes MODEL_PREFIX.model and
// MODEL_PREFIX.vocab: `vocab` pieces, ids pad 0 / unk 1 / bos 2 / eos 3, full character
// coverage, every input line used (no sampling) and a fixed seed, so the same files give
// the same model. Progress and a summary go to `log`.
void train_tokenizer(const std::vector<std::string>& files, const std::string& model_prefix,
                     int vocab, std::ostream& log);

}  // namespace loom::data
