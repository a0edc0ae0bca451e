// BLEU and chrF as sacreBLEU computes them by default (see metrics.h for the formulas).
// The 13a regular expressions are applied byte-wise: each rule's pattern is two
// characters of which the ASCII ones decide, so scanning UTF-8 bytes gives the same result
// as Python's re.sub over code points. chrF counts code points, decoded here.
#include "recipes/metrics.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "kernels/error.h"

namespace loom::recipes {
namespace {

constexpr int kBleuOrder = 4;
constexpr int kChrfOrder = 6;
constexpr double kChrfBeta = 2.0;

// UTF-8 -> code points; a byte that does not start a valid sequence becomes U+DC00+byte
// (Python's surrogateescape), so any input has a definite decoding.
std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xC0) == 0x80;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (ok) {
      out.push_back(cp);
      i += len;
    } else {
      out.push_back(0xDC00 + b);
      i += 1;
    }
  }
  return out;
}

// Python's str.isspace() (what str.split() splits on).
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Byte length of the Python whitespace character starting at s[i], or 0.
size_t space_at(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return is_space(b) ? 1 : 0;
  const size_t len = (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  const std::u32string cp = decode_utf8(s.substr(i, len));
  return cp.size() == 1 && is_space(cp[0]) ? len : 0;
}

// str.split(): the maximal runs of non-whitespace.
std::vector<std::string> split_whitespace(std::string_view s) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i < s.size();) {
    if (const size_t n = space_at(s, i)) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
      i += n;
    } else {
      cur.push_back(s[i++]);
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_comma(char c) { return c == '.' || c == ','; }

// 13a's symbol class [\{-\~\[-\` -\&\(-\+\:-\@\/]: { | } ~ [ \ ] ^ _ ` space ! " # $ % &
// ( ) * + : ; < = > ? @ /
bool is_13a_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// re.sub(r'(A)(B)', repl, s) for single-character classes A and B: scans left to right,
// a match consumes both characters; `emit` appends the replacement for (a, b).
template <class First, class Second, class Emit>
std::string sub_pairs(const std::string& s, First first, Second second, Emit emit) {
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

struct BleuStats {
  int64_t hyp_len = 0, ref_len = 0;
  std::array<int64_t, kBleuOrder> correct{}, total{};
};

std::vector<std::string> tokens_13a(const std::string& line) {
  return split_whitespace(tokenize_13a(line));
}

std::unordered_map<std::string, int64_t> ngram_counts(const std::vector<std::string>& toks, int n) {
  std::unordered_map<std::string, int64_t> counts;
  for (size_t i = 0; i + n <= toks.size(); ++i) {
    std::string key = toks[i];
    for (int k = 1; k < n; ++k) key += ' ' + toks[i + k];  // tokens hold no spaces
    ++counts[key];
  }
  return counts;
}

BleuStats bleu_stats(const std::string& hyp, const std::string& ref) {
  const std::vector<std::string> h = tokens_13a(hyp), r = tokens_13a(ref);
  BleuStats st;
  st.hyp_len = int64_t(h.size());
  st.ref_len = int64_t(r.size());
  for (int n = 1; n <= kBleuOrder; ++n) {
    const auto hc = ngram_counts(h, n), rc = ngram_counts(r, n);
    for (const auto& [gram, count] : hc) {
      st.total[n - 1] += count;
      if (const auto it = rc.find(gram); it != rc.end()) st.correct[n - 1] += std::min(count, it->second);
    }
  }
  return st;
}

// sacreBLEU's BLEU.compute_bleu with smooth_method="exp", effective_order=False.
BleuScore compute_bleu(const BleuStats& st) {
  BleuScore s;
  s.hyp_len = st.hyp_len;
  s.ref_len = st.ref_len;
  if (st.hyp_len < st.ref_len)
    s.bp = st.hyp_len > 0 ? std::exp(1.0 - double(st.ref_len) / double(st.hyp_len)) : 0.0;
  else
    s.bp = 1.0;
  if (std::all_of(st.correct.begin(), st.correct.end(), [](int64_t c) { return c == 0; }))
    return s;  // no match of any order: 0, precisions reported as 0
  double smooth = 1.0;
  for (int n = 0; n < kBleuOrder; ++n) {
    if (st.total[n] == 0) break;  // this and higher orders stay 0 (log taken as -inf)
    if (st.correct[n] == 0) {
      smooth *= 2.0;
      s.precisions[n] = 100.0 / (smooth * double(st.total[n]));
    } else {
      s.precisions[n] = 100.0 * double(st.correct[n]) / double(st.total[n]);
    }
  }
  if (std::any_of(s.precisions.begin(), s.precisions.end(), [](double p) { return p == 0.0; }))
    return s;
  double log_sum = 0.0;
  for (double p : s.precisions) log_sum += std::log(p);
  s.score = s.bp * std::exp(log_sum / kBleuOrder);
  return s;
}

void check_counts(const char* metric, size_t hyps, size_t refs) {
  LOOM_CHECK(hyps == refs, metric, ": ", hyps, " hypotheses but ", refs,
             " references: each hypothesis needs exactly one reference line");
}

// Per order n = 1..6: {hypothesis n-grams, reference n-grams, clipped matches}.
using ChrfStats = std::array<std::array<int64_t, 3>, kChrfOrder>;

std::u32string chars_without_space(const std::string& line) {
  std::u32string out;
  for (char32_t c : decode_utf8(line))
    if (!is_space(c)) out.push_back(c);
  return out;
}

void add_chrf_stats(const std::string& hyp, const std::string& ref, ChrfStats& st) {
  const std::u32string h = chars_without_space(hyp), r = chars_without_space(ref);
  for (int n = 1; n <= kChrfOrder; ++n) {
    std::unordered_map<std::u32string, int64_t> hc, rc;
    for (size_t i = 0; i + n <= h.size(); ++i) ++hc[h.substr(i, n)];
    for (size_t i = 0; i + n <= r.size(); ++i) ++rc[r.substr(i, n)];
    auto& [n_hyp, n_ref, n_match] = st[n - 1];
    n_hyp += h.size() >= size_t(n) ? int64_t(h.size()) - n + 1 : 0;
    n_ref += r.size() >= size_t(n) ? int64_t(r.size()) - n + 1 : 0;
    for (const auto& [gram, count] : hc)
      if (const auto it = rc.find(gram); it != rc.end()) n_match += std::min(count, it->second);
  }
}

}  // namespace

std::string tokenize_13a(std::string_view text) {
  std::string line(text);
  line = replace_all(std::move(line), "<skipped>", "");
  line = replace_all(std::move(line), "-\n", "");
  line = replace_all(std::move(line), "\n", " ");
  if (line.find('&') != std::string::npos) {
    line = replace_all(std::move(line), "&quot;", "\"");
    line = replace_all(std::move(line), "&amp;", "&");
    line = replace_all(std::move(line), "&lt;", "<");
    line = replace_all(std::move(line), "&gt;", ">");
  }
  line = ' ' + line + ' ';
  std::string spaced;
  for (char c : line) {
    if (is_13a_symbol(c)) {
      spaced += ' ';
      spaced += c;
      spaced += ' ';
    } else {
      spaced += c;
    }
  }
  // ([^0-9])([\.,]) -> '\1 \2 '
  spaced = sub_pairs(spaced, [](char c) { return !is_digit(c); }, is_period_comma,
                     [](std::string& o, char a, char b) { o += a, o += ' ', o += b, o += ' '; });
  // ([\.,])([^0-9]) -> ' \1 \2'
  spaced = sub_pairs(spaced, is_period_comma, [](char c) { return !is_digit(c); },
                     [](std::string& o, char a, char b) { o += ' ', o += a, o += ' ', o += b; });
  // ([0-9])(-) -> '\1 \2 '
  spaced = sub_pairs(spaced, is_digit, [](char c) { return c == '-'; },
                     [](std::string& o, char a, char b) { o += a, o += ' ', o += b, o += ' '; });
  std::string out;
  for (const std::string& w : split_whitespace(spaced)) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  check_counts("corpus_bleu", hyps.size(), refs.size());
  BleuStats total;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const BleuStats st = bleu_stats(hyps[i], refs[i]);
    total.hyp_len += st.hyp_len;
    total.ref_len += st.ref_len;
    for (int n = 0; n < kBleuOrder; ++n) {
      total.correct[n] += st.correct[n];
      total.total[n] += st.total[n];
    }
  }
  return compute_bleu(total);
}

double sentence_bleu(const std::string& hyp, const std::string& ref) {
  return compute_bleu(bleu_stats(hyp, ref)).score;
}

double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  check_counts("corpus_chrf", hyps.size(), refs.size());
  ChrfStats st{};
  for (size_t i = 0; i < hyps.size(); ++i) add_chrf_stats(hyps[i], refs[i], st);
  // sacreBLEU's CHRF._compute_f_score (eps_smoothing=False): an order without hypothesis
  // or reference n-grams contributes eps to the sums but not to the count of orders.
  constexpr double kEps = 1e-16;
  double prec = 0.0, rec = 0.0;
  int effective = 0;
  for (const auto& [n_hyp, n_ref, n_match] : st) {
    prec += n_hyp > 0 ? double(n_match) / double(n_hyp) : kEps;
    rec += n_ref > 0 ? double(n_match) / double(n_ref) : kEps;
    if (n_hyp > 0 && n_ref > 0) ++effective;
  }
  if (effective == 0) return 0.0;
  prec /= effective;
  rec /= effective;
  if (prec + rec == 0.0) return 0.0;
  const double b2 = kChrfBeta * kChrfBeta;
  return 100.0 * (1.0 + b2) * prec * rec / (b2 * prec + rec);
}

}  // namespace loom::recipes
