// BLEU and chrF with sacreBLEU's default settings (Post 2018, "A Call for Clarity in
// Reporting BLEU Scores"; ../shared/specs/metrics.md), so loom's numbers compare with
// published ones.
//
// BLEU (Papineni et al. 2002), corpus level, one reference, case-sensitive:
//   tokens: the mteval-v13a tokenizer (tokenize_13a);
//   p_n = clipped n-gram matches / hypothesis n-grams, summed over the corpus, n = 1..4;
//     "exp" smoothing: the k-th order with zero matches gets p_n = 1 / (2^k * total_n);
//     no match of any order gives BLEU 0;
//   BP = exp(1 - r / c) if c < r else 1   (c, r: hypothesis and reference token counts);
//   BLEU = 100 * BP * exp(mean_n log p_n).
// chrF (Popović 2015): character n-grams n = 1..6 of each line with all whitespace removed
// (Unicode code points); hypothesis, reference and clipped match counts summed over the
// corpus; P and R averaged over the orders with hypothesis and reference n-grams;
//   chrF = 100 * (1 + b^2) P R / (b^2 P + R),  b = 2.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom::recipes {

struct BleuScore {
  double score = 0.0;                    // 0..100
  std::array<double, 4> precisions{};   // smoothed n-gram precisions, 0..100
  double bp = 0.0;                       // brevity penalty
  int64_t hyp_len = 0;                   // hypothesis tokens (13a), whole corpus
  int64_t ref_len = 0;                   // reference tokens (13a), whole corpus
};

// mteval-v13a tokenization as sacreBLEU's "13a": unescape &quot; &amp; &lt; &gt;, split
// punctuation and symbols from words (not a period or comma between digits, nor a dash
// after a digit), collapse whitespace. Tokens are joined by single spaces.
std::string tokenize_13a(std::string_view line);

// Corpus BLEU of hyps against refs (one reference per hypothesis; the counts must match).
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);

// BLEU of one sentence, same tokenizer and smoothing, without effective order
// (sacreBLEU's BLEU().sentence_score): a hypothesis under 4 tokens scores 0.
double sentence_bleu(const std::string& hyp, const std::string& ref);

// Corpus chrF of hyps against refs (the counts must match).
double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);

}  // namespace loom::recipes
