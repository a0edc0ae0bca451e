// The Bible corpus: mod2imp dumps -> aligned, filtered, split verse pairs, documents and a
// joint SentencePiece model. See bible.h for the steps and the misalignment statistic.
// file-size: the whole corpus pipeline (markup, alignment, checks, splits, atomic writing)
// in one place; the OSIS markup part (~170 lines) can move to data/osis.cpp if it grows.
#include "data/bible.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "data/tokenizer.h"
#include "kernels/error.h"

namespace loom::data {
namespace fs = std::filesystem;
namespace {

// Elements dropped with everything inside them: footnotes, headings, speaker labels. A
// canonical title (a psalm's superscription) is scripture and kept: the Reina-Valera has it
// as the start of verse 1.
bool dropped_element(std::string_view name, std::string_view tag) {
  if (name == "title") return tag.find("canonical=\"true\"") == std::string_view::npos;
  return name == "note" || name == "speaker";
}

// Elements that only wrap words (their tags are not word boundaries).
bool inline_element(std::string_view name) {
  for (const char* n : {"w", "transChange", "q", "divineName", "foreign", "hi", "name", "seg",
                        "inscription", "catchWord", "rdg", "reference", "added"})
    if (name == n) return true;
  return false;
}

// One code point as UTF-8 (RFC 3629): a lead byte, then 6 bits per continuation byte.
void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) return void(out += static_cast<char>(cp));
  const int tails = cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;
  const unsigned lead[] = {0, 0xC0, 0xE0, 0xF0};
  out += static_cast<char>(lead[tails] | (cp >> (6 * tails)));
  for (int t = tails - 1; t >= 0; --t) out += static_cast<char>(0x80 | ((cp >> (6 * t)) & 0x3F));
}

// One tag starting at osis[at] == '<': its name and kind; end is one past its '>' (npos
// when the tag is cut off).
struct Tag {
  std::string_view name, body;
  bool closing = false, self_closing = false;
  std::size_t end = std::string_view::npos;
};
Tag parse_tag(std::string_view osis, std::size_t at) {
  Tag t;
  const std::size_t gt = osis.find('>', at);
  if (gt == std::string_view::npos) return t;
  t.body = osis.substr(at + 1, gt - at - 1);
  t.closing = t.body.starts_with('/');
  t.self_closing = t.body.ends_with('/');
  if (t.closing) t.body.remove_prefix(1);
  t.name = t.body.substr(0, t.body.find_first_of(" \t/"));
  t.end = gt + 1;
  return t;
}

// The whole of `text` as a number; false when empty or anything else is in it.
template <class T>
bool parse_number(std::string_view text, T& value, int base = 10) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// The entity body between '&' and ';' -> UTF-8, or false when it is not one we know.
bool unescape(std::string_view body, std::string& out) {
  if (body == "amp") return out += '&', true;
  if (body == "lt") return out += '<', true;
  if (body == "gt") return out += '>', true;
  if (body == "quot") return out += '"', true;
  if (body == "apos") return out += '\'', true;
  if (body.size() < 2 || body[0] != '#') return false;
  const bool hex = body[1] == 'x' || body[1] == 'X';
  uint32_t cp = 0;
  if (!parse_number(body.substr(hex ? 2 : 1), cp, hex ? 16 : 10) || cp == 0 || cp > 0x10FFFF)
    return false;
  append_utf8(out, cp);
  return true;
}

bool closing_punctuation(std::string_view rest) {
  if (rest.empty()) return true;
  if (std::string_view(",.;:!?)]").find(rest[0]) != std::string_view::npos) return true;
  for (std::string_view p : {"”", "’", "»", "…"})
    if (rest.starts_with(p)) return true;
  return false;
}

// The Reina-Valera prints a chapter's opening word in capitals ("EN el principio", "Y
// ACONTECIÓ que", "De SIETE años"): in verse 1, the first word, or else the second, that is
// all capitals (A-Z and Latin-1 Á, Ñ, ...) and two or more letters long keeps its first
// letter and lowercases the rest.
void recase_chapter_opening(std::string& text) {
  auto capital = [&](std::size_t i) -> int {  // byte length of a capital letter at i, else 0
    if (i >= text.size()) return 0;
    if (text[i] >= 'A' && text[i] <= 'Z') return 1;
    const auto b = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    return text[i] == '\xC3' && b >= 0x80 && b <= 0x9E && b != 0x97 ? 2 : 0;
  };
  auto recase_word = [&](std::size_t start) {
    std::size_t end = start, letters = 0;
    for (int n; (n = capital(end)) > 0; end += n) ++letters;
    if (letters < 2 || (end < text.size() && text[end] != ' ' &&
                        !std::ispunct(static_cast<unsigned char>(text[end]))))
      return false;
    for (std::size_t i = start + capital(start); i < end;) {
      const int n = capital(i);
      if (n == 1)
        text[i] = static_cast<char>(text[i] + ('a' - 'A'));
      else
        text[i + 1] = static_cast<char>(text[i + 1] + 0x20);  // U+00C0.. -> U+00E0..
      i += n;
    }
    return true;
  };
  const std::size_t second = text.find(' ');
  if (!recase_word(0) && second != std::string::npos) recase_word(second + 1);
}

std::size_t utf8_chars(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const std::size_t m = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + m, v.end());
  if (v.size() % 2 == 1) return v[m];
  return (v[m] + *std::max_element(v.begin(), v.begin() + m)) / 2;
}

// spread(k) of one chapter (bible.h): pairs[i].src with pairs[i+k].tgt.
double spread(const std::vector<const VersePair*>& ch, int k) {
  std::vector<double> r;
  for (std::size_t i = 0; i < ch.size(); ++i) {
    const long j = static_cast<long>(i) + k;
    if (j < 0 || j >= static_cast<long>(ch.size())) continue;
    r.push_back(std::log(static_cast<double>(utf8_chars(ch[j]->tgt)) /
                         static_cast<double>(utf8_chars(ch[i]->src))));
  }
  if (r.empty()) return 0;
  const double m = median(r);
  double s = 0;
  for (double x : r) s += std::abs(x - m);
  return s / static_cast<double>(r.size());
}

}  // namespace

std::string Verse::ref() const { return VersePair{book, chapter, verse, "", ""}.ref(); }
std::string VersePair::chapter_ref() const { return book + " " + std::to_string(chapter); }
std::string VersePair::ref() const { return chapter_ref() + ":" + std::to_string(verse); }

std::string osis_to_text(std::string_view osis) {
  std::string out;
  bool boundary = false;  // a word boundary is pending (dropped note, structural tag)
  std::size_t i = 0;
  while (i < osis.size()) {
    const char c = osis[i];
    if (c == '<') {
      const Tag tag = parse_tag(osis, i);
      if (tag.end == std::string_view::npos) break;  // a cut-off tag: drop the rest
      i = tag.end;
      if (!tag.closing && !tag.self_closing && dropped_element(tag.name, tag.body)) {
        // Skip to the matching close tag, counting nested elements of the same name.
        for (int depth = 1; depth > 0;) {
          const std::size_t lt = osis.find('<', i);
          const Tag inner = lt == std::string_view::npos ? Tag{} : parse_tag(osis, lt);
          i = std::min(inner.end, osis.size());  // unclosed: nothing after it is text
          if (inner.end == std::string_view::npos) break;
          if (inner.name == tag.name && !inner.self_closing) depth += inner.closing ? -1 : 1;
        }
      }
      boundary = boundary || !inline_element(tag.name);
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      boundary = false;
      ++i;
      continue;
    }
    if (boundary && !out.empty() && out.back() != ' ' && !closing_punctuation(osis.substr(i)))
      out += ' ';
    boundary = false;
    if (c == '&') {
      const std::size_t semi = osis.find(';', i);
      if (semi != std::string_view::npos && semi - i <= 10 &&
          unescape(osis.substr(i + 1, semi - i - 1), out)) {
        i = semi + 1;
        continue;
      }
    }
    out += c;
    ++i;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<Verse> parse_imp(std::string_view dump) {
  std::vector<Verse> verses;
  bool in_verse = false;  // the lines after the current header belong to a verse
  std::size_t pos = 0;
  while (pos < dump.size()) {
    std::size_t eol = dump.find('\n', pos);
    if (eol == std::string_view::npos) eol = dump.size();
    const std::string_view line = dump.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.starts_with("$$$")) {
      in_verse = false;
      const std::string_view head = line.substr(3);
      const std::size_t space = head.rfind(' ');
      const std::size_t colon = head.rfind(':');
      if (head.starts_with('[') || space == std::string_view::npos ||
          colon == std::string_view::npos || colon < space)
        continue;
      Verse v;
      v.book = std::string(head.substr(0, space));
      if (!parse_number(head.substr(space + 1, colon - space - 1), v.chapter) ||
          !parse_number(head.substr(colon + 1), v.verse) || v.chapter <= 0 || v.verse <= 0)
        continue;
      verses.push_back(std::move(v));
      in_verse = true;
    } else if (in_verse) {
      std::string& text = verses.back().text;
      const std::string more = osis_to_text(line);
      if (!text.empty() && !more.empty()) text += ' ';
      text += more;
      if (verses.back().verse == 1) recase_chapter_opening(text);
    }
  }
  return verses;
}

Alignment align_verses(const std::vector<Verse>& source, const std::vector<Verse>& target) {
  std::unordered_map<std::string, const Verse*> by_ref;
  for (const auto& v : target) by_ref.emplace(v.ref(), &v);
  Alignment a;
  std::size_t matched = 0;
  for (const auto& s : source) {
    const auto it = by_ref.find(s.ref());
    if (it == by_ref.end()) {
      ++a.unpaired_source;
      continue;
    }
    ++matched;
    if (s.text.empty() || it->second->text.empty()) {
      ++a.dropped_empty;
      continue;
    }
    a.pairs.push_back({s.book, s.chapter, s.verse, s.text, it->second->text});
  }
  a.unpaired_target = by_ref.size() - matched;
  return a;
}

std::vector<ChapterCheck> find_misaligned_chapters(const std::vector<VersePair>& pairs,
                                                   const MisalignOptions& options,
                                                   double* threshold) {
  std::vector<ChapterCheck> checks;
  std::vector<const VersePair*> chapter;
  auto flush = [&] {
    if (chapter.empty()) return;
    checks.push_back({chapter.front()->chapter_ref(), chapter.size(), spread(chapter, 0),
                      spread(chapter, -1), spread(chapter, +1), ""});
    chapter.clear();
  };
  for (const auto& p : pairs) {
    if (!chapter.empty() &&
        (p.chapter != chapter.front()->chapter || p.book != chapter.front()->book))
      flush();
    chapter.push_back(&p);
  }
  flush();

  std::vector<double> spreads;
  for (const auto& c : checks) spreads.push_back(c.spread);
  const double mid = median(spreads);
  std::vector<double> dev;
  for (double s : spreads) dev.push_back(std::abs(s - mid));
  const double bound = mid + options.outlier_mads * 1.4826 * median(dev);
  if (threshold) *threshold = bound;

  for (auto& c : checks) {
    const double shifted = std::min(c.spread_prev, c.spread_next);
    std::ostringstream why;
    why.precision(3);
    if (c.pairs >= options.min_pairs && shifted < options.shift_margin * c.spread)
      why << "a one-verse shift fits better (spread " << c.spread << " -> " << shifted << ")";
    else if (c.spread > bound)
      why << "length-ratio spread " << c.spread << " above " << bound;
    c.reason = why.str();
  }
  return checks;
}

const char* split_name(Split s) {
  switch (s) {
    case Split::train:
      return "train";
    case Split::dev:
      return "dev";
    case Split::test:
      return "test";
  }
  LOOM_UNREACHABLE("split_name: unknown split");
}

std::vector<Split> chapter_splits(const std::vector<std::string>& chapters, double held_out) {
  // FNV-1a 64 (Fowler, Noll, Vo) of the name, then MurmurHash3's fmix64 finalizer: FNV alone
  // keeps "Job 3" and "Job 4" close in the high bits, which would hold out runs of chapters.
  auto hash = [](std::string_view text) {
    uint64_t h = 14695981039346656037ull;
    for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
  };
  std::vector<std::pair<uint64_t, std::size_t>> order;
  for (std::size_t i = 0; i < chapters.size(); ++i) order.emplace_back(hash(chapters[i]), i);
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : chapters[a.second] < chapters[b.second];
  });
  const auto n = static_cast<std::size_t>(std::lround(held_out * chapters.size()));
  std::vector<Split> splits(chapters.size(), Split::train);
  for (std::size_t r = 0; r < std::min(2 * n, order.size()); ++r)
    splits[order[r].second] = r < n ? Split::dev : Split::test;
  return splits;
}

std::size_t drop_ratio_outliers(std::vector<VersePair>& pairs, double max_log_ratio) {
  auto log_ratio = [](const VersePair& p) {
    return std::log(static_cast<double>(utf8_chars(p.tgt)) / utf8_chars(p.src));
  };
  std::vector<double> r;
  for (const auto& p : pairs) r.push_back(log_ratio(p));
  const double m = median(r);
  const std::size_t before = pairs.size();
  std::erase_if(pairs,
                [&](const VersePair& p) { return std::abs(log_ratio(p) - m) > max_log_ratio; });
  return before - pairs.size();
}

namespace {

// Runs `mod2imp MODULE` and returns its output.
std::string dump_module(const std::string& tool, const std::string& module,
                        const std::string& package) {
  const std::string command = tool + " " + module + " 2>/dev/null";
  const std::string fix =
      "; install the SWORD tools and texts: apt install libsword-utils "
      "sword-text-web sword-text-sparv (this module is in " +
      package + ")";
  FILE* pipe = popen(command.c_str(), "r");
  LOOM_CHECK(pipe != nullptr, "prepare bible: `", command, "`: cannot start it", fix);
  std::string out;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  LOOM_CHECK(code == 0, "prepare bible: `", command, "` failed (",
             code == 127 ? "command not found" : "exit status " + std::to_string(code), ")", fix);
  LOOM_CHECK(out.find("\n$$$") != std::string::npos || out.starts_with("$$$"), "prepare bible: `",
             command, "` printed no verses (module not installed?)", fix);
  return out;
}

// OUT/.tmp-PID: the corpus is written here and its files renamed into OUT at the end; the
// folder is removed whatever happens (a leftover with our pid is stale).
struct StagingDir {
  fs::path out, path;
  explicit StagingDir(const fs::path& out_dir)
      : out(out_dir), path(out_dir / (".tmp-" + std::to_string(::getpid()))) {
    std::error_code ec;
    fs::create_directories(out, ec);
    LOOM_CHECK(!ec, "prepare bible: ", out.string(), ": cannot create the output folder (",
               ec.message(), "); pass --out with a writable folder");
    fs::remove_all(path, ec);
    fs::create_directory(path, ec);
    LOOM_CHECK(!ec, "prepare bible: ", path.string(), ": cannot write into the output folder (",
               ec.message(), "); pass --out with a writable folder");
  }
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  ~StagingDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path file(const std::string& name) const { return path / name; }
};

std::ofstream open_out(const fs::path& p) {
  std::ofstream f(p, std::ios::binary);
  LOOM_CHECK(f.good(), "prepare bible: ", p.string(), ": cannot open for writing");
  return f;
}

}  // namespace

PrepareReport prepare_bible(const BibleOptions& options, std::ostream& log) {
  using clock = std::chrono::steady_clock;
  LOOM_CHECK(options.doc_min_verses >= 1 && options.doc_max_verses >= options.doc_min_verses &&
                 options.doc_max_train_verses >= options.doc_min_verses,
             "prepare bible: document sizes ", options.doc_min_verses, "..",
             options.doc_max_train_verses, " (train), ", options.doc_min_verses, "..",
             options.doc_max_verses, " (dev, test): need 1 <= min <= max");
  const auto t0 = clock::now();
  StagingDir stage(options.out_dir);
  const auto source =
      parse_imp(dump_module(options.mod2imp, options.source_module, "sword-text-web"));
  const auto target =
      parse_imp(dump_module(options.mod2imp, options.target_module, "sword-text-sparv"));
  log << "prepare bible: " << source.size() << " " << options.source_module << " verses, "
      << target.size() << " " << options.target_module << " verses\n";
  Alignment aligned = align_verses(source, target);
  PrepareReport report;
  report.dropped_empty = aligned.dropped_empty;
  report.unpaired_source = aligned.unpaired_source;
  report.unpaired_target = aligned.unpaired_target;
  log << "  aligned " << aligned.pairs.size() << " pairs; dropped " << aligned.dropped_empty
      << " empty, unpaired " << aligned.unpaired_source << " " << options.source_module << " and "
      << aligned.unpaired_target << " " << options.target_module << " verses\n";

  double threshold = 0;
  const auto checks = find_misaligned_chapters(aligned.pairs, MisalignOptions{}, &threshold);
  std::set<std::string> dropped;
  for (const auto& c : checks)
    if (!c.reason.empty()) {
      dropped.insert(c.chapter);
      report.dropped_chapters.push_back(c);
      report.dropped_chapter_verses += c.pairs;
    }
  log << "  misaligned chapters: " << report.dropped_chapters.size() << " of " << checks.size()
      << " dropped (" << report.dropped_chapter_verses << " pairs; spread outlier bound "
      << threshold << ")\n";
  for (const auto& c : report.dropped_chapters)
    log << "    " << c.chapter << " (" << c.pairs << " pairs): " << c.reason << "\n";
  std::erase_if(aligned.pairs, [&](const VersePair& p) { return dropped.count(p.chapter_ref()); });
  report.dropped_ratio = drop_ratio_outliers(aligned.pairs);
  log << "  dropped " << report.dropped_ratio << " pairs with an outlying length ratio\n";
  const auto& pairs = aligned.pairs;  // in chapter order
  std::vector<std::string> chapters;
  std::vector<std::size_t> starts;  // index of each chapter's first pair, then pairs.size()
  for (std::size_t i = 0; i < pairs.size(); ++i)
    if (chapters.empty() || chapters.back() != pairs[i].chapter_ref()) {
      chapters.push_back(pairs[i].chapter_ref());
      starts.push_back(i);
    }
  starts.push_back(pairs.size());
  const auto splits = chapter_splits(chapters, options.held_out);

  std::vector<std::string> names;
  std::array<std::array<std::ofstream, 3>, 3> files, docs;  // [split][en, es, ref]
  const char* ext[3] = {"en", "es", "ref"};
  for (int s = 0; s < 3; ++s)
    for (int e = 0; e < 3; ++e) {
      const std::string split = split_name(static_cast<Split>(s));
      names.push_back(split + "." + ext[e]);
      files[s][e] = open_out(stage.file(names.back()));
      names.push_back("docs." + split + "." + ext[e]);
      docs[s][e] = open_out(stage.file(names.back()));
    }
  // pairs[b, e) are consecutive verses: cut them into near-equal documents of at most
  // doc_max_train_verses or doc_max_verses (none when fewer than doc_min_verses).
  auto write_docs = [&](long b, long e, int s) {
    if (e - b < options.doc_min_verses) return;
    const long most = s == static_cast<int>(Split::train) ? options.doc_max_train_verses
                                                          : options.doc_max_verses;
    const long parts = (e - b + most - 1) / most;
    for (long p = 0, first = b; p < parts; ++p) {
      const long last = b + (e - b) * (p + 1) / parts;
      for (long i = first; i < last; ++i) {
        docs[s][0] << (i > first ? " " : "") << pairs[i].src;
        docs[s][1] << (i > first ? " " : "") << pairs[i].tgt;
      }
      docs[s][0] << '\n';
      docs[s][1] << '\n';
      docs[s][2] << pairs[first].ref() << '-' << pairs[last - 1].ref() << '\n';
      ++report.documents[s];
      first = last;
    }
  };
  for (std::size_t c = 0; c < chapters.size(); ++c) {
    const int s = static_cast<int>(splits[c]);
    for (std::size_t i = starts[c], run = starts[c]; i < starts[c + 1]; ++i) {
      files[s][0] << pairs[i].src << '\n';
      files[s][1] << pairs[i].tgt << '\n';
      files[s][2] << pairs[i].ref() << '\n';
      ++report.verses[s];
      if (i + 1 == starts[c + 1] || pairs[i + 1].verse != pairs[i].verse + 1) {  // run ends
        write_docs(static_cast<long>(run), static_cast<long>(i + 1), s);
        run = i + 1;
      }
    }
  }
  for (auto* group : {&files, &docs})
    for (auto& split : *group)
      for (auto& f : split) {
        f.close();
        LOOM_CHECK(!f.fail(), "prepare bible: ", stage.file("").string(),
                   ": writing failed (disk full?)");
      }
  for (int s = 0; s < 3; ++s)
    log << "  " << split_name(static_cast<Split>(s)) << ": " << report.verses[s] << " verses, "
        << report.documents[s] << " documents\n";
  const auto t1 = clock::now();
  report.seconds_extract = std::chrono::duration<double>(t1 - t0).count();

  train_tokenizer({stage.file("train.en").string(), stage.file("train.es").string()},
                  stage.file("spm").string(), options.vocab, log);
  report.vocab = Tokenizer::load(stage.file("spm.model").string()).vocab_size();
  report.seconds_tokenizer = std::chrono::duration<double>(clock::now() - t1).count();
  names.push_back("spm.vocab");
  names.push_back("spm.model");  // last: its presence marks a complete corpus
  for (const auto& n : names) fs::rename(stage.file(n), stage.out / n);
  log << "  wrote " << options.out_dir << " (vocab " << report.vocab << ") in "
      << report.seconds_extract << " s extract + " << report.seconds_tokenizer << " s tokenizer\n";
  return report;
}

}  // namespace loom::data
