// BLEU and chrF against sacreBLEU's outputs in ../shared/specs/metrics_golden.json (every
// case: score, precisions, BP, lengths, chrF, sentence BLEU, to 1e-4), plus hand-computed
// cases whose arithmetic is written next to them, the 13a tokenizer's rules one by one,
// and the error for mismatched line counts.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/specs.h"
#include "kernels/error.h"
#include "recipes/metrics.h"

namespace loom::test {
namespace {

using namespace loom::recipes;
using nlohmann::json;

const json& golden() {
  static const json data = [] {
    const std::string path = spec_path("metrics_golden.json");
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open the golden file ", path);
    return json::parse(in);
  }();
  return data;
}

TEST_CASE("metrics: every golden case matches sacreBLEU to 1e-4") {
  const json& cases = golden().at("cases");
  REQUIRE(cases.size() >= 8);
  for (const json& c : cases) {
    CAPTURE(c.at("name").get<std::string>());
    const auto hyps = c.at("hyp").get<std::vector<std::string>>();
    const auto refs = c.at("ref").get<std::vector<std::string>>();
    const BleuScore b = corpus_bleu(hyps, refs);
    CHECK(std::abs(b.score - c.at("bleu").get<double>()) < 1e-4);
    for (int n = 0; n < 4; ++n)
      CHECK(std::abs(b.precisions[n] - c.at("precisions")[n].get<double>()) < 1e-4);
    CHECK(std::abs(b.bp - c.at("bp").get<double>()) < 1e-4);
    CHECK(b.hyp_len == c.at("sys_len").get<int64_t>());
    CHECK(b.ref_len == c.at("ref_len").get<int64_t>());
    CHECK(std::abs(corpus_chrf(hyps, refs) - c.at("chrf").get<double>()) < 1e-4);
    const json& sent = c.at("sentence_bleu");
    REQUIRE(sent.size() == hyps.size());
    for (size_t i = 0; i < hyps.size(); ++i)
      CHECK(std::abs(sentence_bleu(hyps[i], refs[i]) - sent[i].get<double>()) < 1e-4);
  }
}

TEST_CASE("metrics: 13a tokenizer rules") {
  // Punctuation split off words; period and comma kept between digits; dash split only
  // after a digit; apostrophes and hyphens inside words kept; entities unescaped.
  CHECK(tokenize_13a("Hello, world.") == "Hello , world .");
  CHECK(tokenize_13a("pi is 3.14 and 1,000 too") == "pi is 3.14 and 1,000 too");
  CHECK(tokenize_13a("pages 2-3, well-known") == "pages 2 - 3 , well-known");
  CHECK(tokenize_13a("don't (yes) a/b") == "don't ( yes ) a / b");
  CHECK(tokenize_13a("&quot;x&quot; &amp; &lt;y&gt;") == "\" x \" & < y >");
  CHECK(tokenize_13a("  many   spaces\there ") == "many spaces here");
  CHECK(tokenize_13a("end-\nof<skipped> line\nnext") == "endof line next");
  // Non-ASCII letters stay inside their words; a period after one is split off.
  CHECK(tokenize_13a("Jehová: fué.") == "Jehová : fué .");
  CHECK(tokenize_13a("").empty());
}

TEST_CASE("metrics: hand-computed BLEU") {
  // hyp "a b c d e" vs ref "a b c d f": matches 4/5, 3/4, 2/3, 1/2; c = r = 5 so BP = 1;
  // BLEU = 100 * (4/5 * 3/4 * 2/3 * 1/2)^(1/4) = 100 * 0.2^0.25 = 66.87403...
  const BleuScore b = corpus_bleu({"a b c d e"}, {"a b c d f"});
  CHECK(b.score == doctest::Approx(100.0 * std::pow(0.2, 0.25)).epsilon(1e-12));
  CHECK(b.precisions[0] == doctest::Approx(80.0));
  CHECK(b.precisions[3] == doctest::Approx(50.0));
  CHECK(b.bp == 1.0);

  // hyp "a b c d" vs ref "a b x d e f": matches 3/4, 1/3, 0/2, 0/1; exp smoothing turns the
  // first zero order into 1/(2*2) and the second into 1/(4*1); BP = exp(1 - 6/4).
  // BLEU = 100 * exp(-0.5) * (3/4 * 1/3 * 1/4 * 1/4)^(1/4).
  const BleuScore s = corpus_bleu({"a b c d"}, {"a b x d e f"});
  CHECK(s.precisions[2] == doctest::Approx(25.0));
  CHECK(s.precisions[3] == doctest::Approx(25.0));
  CHECK(s.bp == doctest::Approx(std::exp(-0.5)));
  CHECK(s.score ==
        doctest::Approx(100.0 * std::exp(-0.5) * std::pow(0.75 / 3.0 / 16.0, 0.25)).epsilon(1e-12));

  // Three tokens have no 4-gram: precision 0 without effective order, so BLEU 0 even for
  // an exact match (sacreBLEU's default).
  CHECK(sentence_bleu("a b c", "a b c") == 0.0);
  // Case-sensitive: nothing matches.
  CHECK(sentence_bleu("A B C D", "a b c d") == 0.0);
}

TEST_CASE("metrics: hand-computed chrF") {
  // hyp "ab" vs ref "abc": 1-grams P = 2/2, R = 2/3; 2-grams P = 1/1, R = 1/2; higher
  // orders have no hypothesis n-gram and do not count. P = 1, R = 7/12;
  // chrF = 100 * 5 P R / (4 P + R) = 100 * (35/12) / (55/12) = 700/11.
  CHECK(corpus_chrf({"ab"}, {"abc"}) == doctest::Approx(700.0 / 11.0).epsilon(1e-12));
  // Whitespace is removed before counting, and accents are one character each.
  CHECK(corpus_chrf({"a b"}, {"ab"}) == doctest::Approx(100.0));
  // "fué" vs "fue": P = R per order: 2/3, 1/2, 0/1, so P = R = (7/6)/3 and chrF = P.
  CHECK(corpus_chrf({"fué"}, {"fue"}) == doctest::Approx(100.0 * 7.0 / 18.0).epsilon(1e-12));
  CHECK(corpus_chrf({""}, {""}) == 0.0);
}

TEST_CASE("metrics: hypothesis and reference counts must match") {
  CHECK_THROWS_WITH_AS(corpus_bleu({"a", "b"}, {"a"}),
                       "corpus_bleu: 2 hypotheses but 1 references: each hypothesis needs "
                       "exactly one reference line",
                       loom::Error);
  CHECK_THROWS_WITH_AS(corpus_chrf({"a"}, {}),
                       "corpus_chrf: 1 hypotheses but 0 references: each hypothesis needs "
                       "exactly one reference line",
                       loom::Error);
}

}  // namespace
}  // namespace loom::test
