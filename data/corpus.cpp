// Reading and encoding a parallel corpus (see corpus.h for the example layout).
#include "data/corpus.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "kernels/error.h"

namespace loom::data {
namespace {

// pieces + [eos], or [bos] + pieces + [eos], keeping at most `keep` pieces.
std::vector<int32_t> framed(const std::vector<int32_t>& pieces, size_t keep, bool bos) {
  std::vector<int32_t> ids;
  ids.reserve(keep + 2);
  if (bos) ids.push_back(Example::kBos);
  ids.insert(ids.end(), pieces.begin(), pieces.begin() + std::min(keep, pieces.size()));
  ids.push_back(Example::kEos);
  return ids;
}

}  // namespace

std::string Corpus::summary(const std::string& name, int64_t max_len) const {
  std::ostringstream os;
  os << name << ": " << lines << " pairs, " << examples.size() << " kept";
  if (skipped > 0) os << ", " << skipped << " longer than " << max_len << " tokens skipped";
  if (truncated > 0) os << ", " << truncated << " truncated to " << max_len << " tokens";
  return os.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LOOM_CHECK(in.is_open(), "corpus: cannot open '", path, "'; check the path");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  LOOM_CHECK(in.eof(), "corpus: '", path, "': read error after line ", lines.size());
  return lines;
}

Corpus make_corpus(const std::vector<std::vector<int32_t>>& src_pieces,
                   const std::vector<std::vector<int32_t>>& tgt_pieces, int64_t max_len,
                   LengthPolicy policy) {
  LOOM_CHECK(src_pieces.size() == tgt_pieces.size(), "corpus: ", src_pieces.size(),
             " source lines but ", tgt_pieces.size(), " target lines");
  LOOM_CHECK(max_len >= 1, "corpus: max_len ", max_len, ": must be at least 1");
  const size_t max_pieces = size_t(max_len - 1);  // room for eos (bos on tgt_in likewise)
  Corpus c;
  c.lines = int64_t(src_pieces.size());
  for (size_t i = 0; i < src_pieces.size(); ++i) {
    const std::vector<int32_t>& s = src_pieces[i];
    const std::vector<int32_t>& t = tgt_pieces[i];
    const bool too_long = s.size() > max_pieces || t.size() > max_pieces;
    if (too_long && policy == LengthPolicy::Skip) {
      ++c.skipped;
      continue;
    }
    if (too_long) ++c.truncated;
    c.examples.push_back({framed(s, max_pieces, false), framed(t, max_pieces, true), int64_t(i)});
  }
  return c;
}

Corpus load_corpus(const std::string& src_path, const std::string& tgt_path,
                   const Encoder& encode, int64_t max_len, LengthPolicy policy) {
  const std::vector<std::string> src = read_lines(src_path);
  const std::vector<std::string> tgt = read_lines(tgt_path);
  LOOM_CHECK(src.size() == tgt.size(), "corpus: '", src_path, "' has ", src.size(),
             " lines but '", tgt_path, "' has ", tgt.size(),
             "; a parallel corpus needs one target line per source line");
  std::vector<std::vector<int32_t>> src_pieces, tgt_pieces;
  src_pieces.reserve(src.size());
  tgt_pieces.reserve(tgt.size());
  for (const std::string& line : src) src_pieces.push_back(encode(line));
  for (const std::string& line : tgt) tgt_pieces.push_back(encode(line));
  return make_corpus(src_pieces, tgt_pieces, max_len, policy);
}

}  // namespace loom::data
