// Parallel corpus reading and encoding: the bos/eos layout, original line indices, the
// max_len skip and truncate counts, line endings, and the exact messages for a missing
// file and for files with different line counts.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "data/corpus.h"
#include "kernels/error.h"

namespace loom::test {
namespace {

using namespace loom::data;
namespace fs = std::filesystem;

// A toy encoder: each space-separated word becomes the id 4 + its length in bytes.
std::vector<int32_t> word_lengths(std::string_view text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) ids.push_back(4 + int32_t(end - start));
    start = end + 1;
  }
  return ids;
}

TEST_CASE("corpus: src = pieces + eos, tgt_in = bos + pieces, tgt_out = pieces + eos") {
  const TempDir dir("layout");
  const std::string en = dir.write("a.en", "a bb\nccc\n");
  const std::string es = dir.write("a.es", "dddd\ne ff ggg\n");
  const Corpus c = load_corpus(en, es, word_lengths, 16, LengthPolicy::Skip);
  REQUIRE(c.examples.size() == 2);
  CHECK(c.lines == 2);
  const Example& e = c.examples[0];
  CHECK(e.src == std::vector<int32_t>{5, 6, 3});
  CHECK(e.tgt == std::vector<int32_t>{2, 8, 3});  // tgt_in = {2, 8}, tgt_out = {8, 3}
  CHECK(e.src_len() == 3);
  CHECK(e.tgt_len() == 2);
  CHECK(c.examples[1].src == std::vector<int32_t>{7, 3});
  CHECK(c.examples[1].tgt == std::vector<int32_t>{2, 5, 6, 7, 3});
  CHECK(c.examples[1].line == 1);
}

TEST_CASE("corpus: line endings and an empty line") {
  const TempDir dir("endings");
  // CRLF endings, a final line without newline, and an empty middle line.
  const std::string en = dir.write("b.en", "aa\r\n\r\nbbb");
  CHECK(read_lines(en) == std::vector<std::string>{"aa", "", "bbb"});
  const std::string es = dir.write("b.es", "x\ny\nz\n");
  const Corpus c = load_corpus(en, es, word_lengths, 8, LengthPolicy::Skip);
  REQUIRE(c.examples.size() == 3);
  CHECK(c.examples[1].src == std::vector<int32_t>{3});  // empty line: eos only
}

TEST_CASE("corpus: missing file and line-count mismatch name the files") {
  const TempDir dir("errors");
  const std::string en = dir.write("c.en", "one\ntwo\nthree\n");
  const std::string es = dir.write("c.es", "uno\ndos\n");
  const std::string missing = (dir.path / "nope.es").string();
  CHECK_THROWS_WITH_AS(load_corpus(en, missing, word_lengths, 8, LengthPolicy::Skip),
                       ("corpus: cannot open '" + missing + "'; check the path").c_str(),
                       loom::Error);
  CHECK_THROWS_WITH_AS(load_corpus(en, es, word_lengths, 8, LengthPolicy::Skip),
                       ("corpus: '" + en + "' has 3 lines but '" + es +
                        "' has 2; a parallel corpus needs one target line per source line")
                           .c_str(),
                       loom::Error);
  CHECK_THROWS_WITH_AS(make_corpus({{4}}, {{4}}, 0, LengthPolicy::Skip),
                       "corpus: max_len 0: must be at least 1", loom::Error);
}

TEST_CASE("corpus: max_len skips (training) or truncates (evaluation), counted") {
  // Piece counts per line, source / target: 1/1, 3/1, 2/2, 1/4, 2/3. With max_len 3 a side
  // may hold 2 pieces (plus eos, or bos), so lines 1, 3 and 4 are too long.
  const std::vector<std::vector<int32_t>> src = {{10}, {10, 11, 12}, {10, 11}, {10}, {10, 11}};
  const std::vector<std::vector<int32_t>> tgt = {{20}, {20}, {20, 21}, {20, 21, 22, 23}, {20, 21, 22}};

  const Corpus skip = make_corpus(src, tgt, 3, LengthPolicy::Skip);
  CHECK(skip.lines == 5);
  CHECK(skip.skipped == 3);
  CHECK(skip.truncated == 0);
  REQUIRE(skip.examples.size() == 2);
  CHECK(skip.examples[0].line == 0);
  CHECK(skip.examples[1].line == 2);
  CHECK(skip.examples[1].src == std::vector<int32_t>{10, 11, 3});
  CHECK(skip.examples[1].tgt == std::vector<int32_t>{2, 20, 21, 3});
  CHECK(skip.summary("train", 3) == "train: 5 pairs, 2 kept, 3 longer than 3 tokens skipped");

  const Corpus cut = make_corpus(src, tgt, 3, LengthPolicy::Truncate);
  CHECK(cut.skipped == 0);
  CHECK(cut.truncated == 3);
  REQUIRE(cut.examples.size() == 5);
  CHECK(cut.examples[1].src == std::vector<int32_t>{10, 11, 3});
  CHECK(cut.examples[1].tgt == std::vector<int32_t>{2, 20, 3});
  CHECK(cut.examples[3].tgt == std::vector<int32_t>{2, 20, 21, 3});
  CHECK(cut.examples[4].line == 4);
  for (const Example& e : cut.examples) {
    CHECK(e.src_len() <= 3);
    CHECK(e.tgt_len() <= 3);
    CHECK(e.src.back() == Example::kEos);
  }
  CHECK(cut.summary("test", 3) == "test: 5 pairs, 5 kept, 3 truncated to 3 tokens");
}

}  // namespace
}  // namespace loom::test
