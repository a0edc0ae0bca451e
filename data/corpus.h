// A parallel corpus: two text files, one sentence per line, line i of the source file
// translating line i of the target file. Each line pair becomes an Example of token ids
// (DESIGN.md "Data"; the layout of fairseq's LanguagePairDataset):
//   src     = pieces(source) + [eos]                   (length S)
//   tgt_in  = [bos] + pieces(target)                   (length T, the decoder's input)
//   tgt_out = pieces(target) + [eos]                   (length T, the labels)
// Lengths count these ids. A pair whose S or T exceeds max_len is skipped (training) or
// cut to max_len pieces-plus-eos (evaluation, so every line still gets a translation);
// both are counted. The encoder is passed in (a tokenizer's encode), so this file does not
// depend on SentencePiece.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace loom::data {

// Text -> piece ids without bos/eos (e.g. Tokenizer::encode).
using Encoder = std::function<std::vector<int32_t>(std::string_view)>;

struct Example {
  static constexpr int32_t kBos = 2;  // loom's id contract: pad 0, unk 1, bos 2, eos 3
  static constexpr int32_t kEos = 3;

  std::vector<int32_t> src;  // pieces + [eos]
  std::vector<int32_t> tgt;  // [bos] + pieces + [eos]: tgt_in = tgt[0, T), tgt_out = tgt[1, T]
  int64_t line = 0;          // 0-based line index in the corpus files

  int64_t src_len() const { return int64_t(src.size()); }
  int64_t tgt_len() const { return int64_t(tgt.size()) - 1; }
};

// What to do with a pair longer than max_len.
enum class LengthPolicy { Skip, Truncate };

struct Corpus {
  std::vector<Example> examples;
  int64_t lines = 0;      // line pairs read
  int64_t skipped = 0;    // pairs dropped for length (LengthPolicy::Skip)
  int64_t truncated = 0;  // pairs cut to max_len (LengthPolicy::Truncate)

  // e.g. "train.en/train.es: 1000 pairs, 990 kept, 10 longer than 128 tokens skipped".
  std::string summary(const std::string& name, int64_t max_len) const;
};

// The lines of a text file (a final line without newline counts; "\r\n" endings are
// accepted). A file that cannot be opened is an error naming its path.
std::vector<std::string> read_lines(const std::string& path);

// Builds the examples from already-encoded pieces (one vector per line; the counts must
// match). max_len >= 1 bounds S and T.
Corpus make_corpus(const std::vector<std::vector<int32_t>>& src_pieces,
                   const std::vector<std::vector<int32_t>>& tgt_pieces, int64_t max_len,
                   LengthPolicy policy);

// Reads src_path and tgt_path, checks they have the same number of lines (the error names
// both files and both counts), encodes every line with `encode` and builds the examples.
Corpus load_corpus(const std::string& src_path, const std::string& tgt_path,
                   const Encoder& encode, int64_t max_len, LengthPolicy policy);

}  // namespace loom::data
