// The Bible corpus: mod2imp dumps -> aligned, filtered, split verse pairs, documents and a
// joint SentencePiece model. See bible.h for the steps and the misalignment statistic.
#include "data/bible.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <random>
#include <sstream>
#include <unordered_map>

#include "data/tokenizer.h"
#include "kernels/error.h"

namespace loom::data {
namespace fs = std::filesystem;
namespace {

// Elements dropped with everything inside them: footnotes, headings, speaker labels.
bool dropped_element(std::string_view name) {
  return name == "note" || name == "title" || name == "speaker";
}

// Elements that only wrap words (their tags are not word boundaries).
bool inline_element(std::string_view name) {
  for (const char* n : {"w", "transChange", "q", "divineName", "foreign", "hi", "name", "seg",
                        "inscription", "catchWord", "rdg", "reference", "added"})
    if (name == n) return true;
  return false;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
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
  const std::string digits(body.substr(hex ? 2 : 1));
  if (digits.empty()) return false;
  std::size_t used = 0;
  unsigned long cp = 0;
  try {
    cp = std::stoul(digits, &used, hex ? 16 : 10);
  } catch (const std::exception&) {
    return false;
  }
  if (used != digits.size() || cp == 0 || cp > 0x10FFFF) return false;
  append_utf8(out, static_cast<uint32_t>(cp));
  return true;
}

bool closing_punctuation(std::string_view rest) {
  if (rest.empty()) return true;
  if (std::string_view(",.;:!?)]").find(rest[0]) != std::string_view::npos) return true;
  for (std::string_view p : {"”", "’", "»", "…"})
    if (rest.starts_with(p)) return true;
  return false;
}

std::size_t utf8_chars(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const std::size_t m = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + m, v.end());
  double hi = v[m];
  if (v.size() % 2 == 1) return hi;
  return (hi + *std::max_element(v.begin(), v.begin() + m)) / 2;
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

std::string Verse::ref() const {
  return book + " " + std::to_string(chapter) + ":" + std::to_string(verse);
}
std::string VersePair::ref() const {
  return book + " " + std::to_string(chapter) + ":" + std::to_string(verse);
}
std::string VersePair::chapter_ref() const { return book + " " + std::to_string(chapter); }

std::string osis_to_text(std::string_view osis) {
  std::string out;
  bool boundary = false;  // a word boundary is pending (dropped note, structural tag)
  std::size_t i = 0;
  while (i < osis.size()) {
    const char c = osis[i];
    if (c == '<') {
      const std::size_t end = osis.find('>', i);
      if (end == std::string_view::npos) break;  // a cut-off tag: drop the rest
      std::string_view tag = osis.substr(i + 1, end - i - 1);
      const bool closing = tag.starts_with('/');
      const bool self_closing = tag.ends_with('/');
      if (closing) tag.remove_prefix(1);
      const std::string_view name = tag.substr(0, tag.find_first_of(" \t/"));
      i = end + 1;
      if (!closing && !self_closing && dropped_element(name)) {
        // Skip to the matching close tag, counting nested elements of the same name.
        int depth = 1;
        while (depth > 0 && i < osis.size()) {
          const std::size_t lt = osis.find('<', i);
          if (lt == std::string_view::npos) { i = osis.size(); break; }
          const std::size_t gt = osis.find('>', lt);
          if (gt == std::string_view::npos) { i = osis.size(); break; }
          std::string_view inner = osis.substr(lt + 1, gt - lt - 1);
          const bool inner_close = inner.starts_with('/');
          if (inner_close) inner.remove_prefix(1);
          if (inner.substr(0, inner.find_first_of(" \t/")) == name && !inner.ends_with('/'))
            depth += inner_close ? -1 : 1;
          i = gt + 1;
        }
        boundary = true;
      } else if (!inline_element(name)) {
        boundary = true;
      }
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
      try {
        v.chapter = std::stoi(std::string(head.substr(space + 1, colon - space - 1)));
        v.verse = std::stoi(std::string(head.substr(colon + 1)));
      } catch (const std::exception&) {
        continue;
      }
      if (v.chapter <= 0 || v.verse <= 0) continue;
      verses.push_back(std::move(v));
      in_verse = true;
    } else if (in_verse) {
      std::string& text = verses.back().text;
      const std::string more = osis_to_text(line);
      if (!text.empty() && !more.empty()) text += ' ';
      text += more;
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
    if (c.pairs >= options.min_pairs && shifted < options.shift_margin * c.spread) {
      why.precision(3);
      why << "a one-verse shift fits better (spread " << c.spread << " -> " << shifted << ")";
    } else if (c.spread > bound) {
      why.precision(3);
      why << "length-ratio spread " << c.spread << " above " << bound;
    }
    c.reason = why.str();
  }
  return checks;
}

const char* split_name(Split s) {
  switch (s) {
    case Split::train: return "train";
    case Split::dev: return "dev";
    case Split::test: return "test";
  }
  LOOM_UNREACHABLE("split_name: unknown split");
}

Split chapter_split(std::string_view chapter_ref) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 (Fowler, Noll, Vo)
  for (const char c : chapter_ref) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  const uint64_t bucket = h % 1000;
  if (bucket < 15) return Split::dev;
  if (bucket < 30) return Split::test;
  return Split::train;
}

namespace {

// Runs `mod2imp MODULE` and returns its output.
std::string dump_module(const std::string& tool, const std::string& module,
                        const std::string& package) {
  const std::string command = tool + " " + module + " 2>/dev/null";
  const std::string fix = "; install the SWORD tools and texts: apt install libsword-utils "
                          "sword-text-web sword-text-sparv (this module is in " + package + ")";
  FILE* pipe = popen(command.c_str(), "r");
  LOOM_CHECK(pipe != nullptr, "prepare bible: `", command, "`: cannot start it", fix);
  std::string out;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  LOOM_CHECK(status == 0, "prepare bible: `", command, "` failed (status ", status, ")", fix);
  LOOM_CHECK(out.find("\n$$$") != std::string::npos || out.starts_with("$$$"),
             "prepare bible: `", command, "` printed no verses (module not installed?)", fix);
  return out;
}

// A folder inside out_dir that is removed unless commit() moved its files out.
class StagingDir {
 public:
  explicit StagingDir(const fs::path& out) : out_(out) {
    std::error_code ec;
    fs::create_directories(out, ec);
    LOOM_CHECK(!ec, "prepare bible: ", out.string(), ": cannot create the output folder (",
               ec.message(), "); pass --out with a writable folder");
    std::random_device rd;
    path_ = out / (".tmp-" + std::to_string(rd() % 1000000));
    fs::create_directory(path_, ec);
    LOOM_CHECK(!ec, "prepare bible: ", path_.string(), ": cannot write into the output folder (",
               ec.message(), "); pass --out with a writable folder");
  }
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  ~StagingDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path file(const std::string& name) const { return path_ / name; }
  // Renames the files into out_dir in the given order.
  void commit(const std::vector<std::string>& names) const {
    for (const auto& n : names) fs::rename(path_ / n, out_ / n);
  }

 private:
  fs::path out_, path_;
};

std::ofstream open_out(const fs::path& p) {
  std::ofstream f(p, std::ios::binary);
  LOOM_CHECK(f.good(), "prepare bible: ", p.string(), ": cannot open for writing");
  return f;
}

}  // namespace

PrepareReport prepare_bible(const BibleOptions& options, std::ostream& log) {
  using clock = std::chrono::steady_clock;
  LOOM_CHECK(options.doc_min_verses >= 1 && options.doc_max_verses >= options.doc_min_verses,
             "prepare bible: document sizes ", options.doc_min_verses, "..",
             options.doc_max_verses, ": need 1 <= min <= max");
  const auto t0 = clock::now();
  StagingDir stage(options.out_dir);
  const auto source = parse_imp(dump_module(options.mod2imp, options.source_module,
                                            "sword-text-web"));
  const auto target = parse_imp(dump_module(options.mod2imp, options.target_module,
                                            "sword-text-sparv"));
  log << "prepare bible: " << source.size() << " " << options.source_module << " verses, "
      << target.size() << " " << options.target_module << " verses\n";
  Alignment aligned = align_verses(source, target);
  PrepareReport report;
  report.dropped_empty = aligned.dropped_empty;
  report.unpaired_source = aligned.unpaired_source;
  report.unpaired_target = aligned.unpaired_target;
  log << "  aligned " << aligned.pairs.size() << " pairs; dropped " << aligned.dropped_empty
      << " empty, unpaired " << aligned.unpaired_source << " " << options.source_module
      << " and " << aligned.unpaired_target << " " << options.target_module << " verses\n";

  double threshold = 0;
  const auto checks = find_misaligned_chapters(aligned.pairs, MisalignOptions{}, &threshold);
  std::map<std::string, std::string> dropped;  // chapter -> reason
  for (const auto& c : checks)
    if (!c.reason.empty()) {
      dropped.emplace(c.chapter, c.reason);
      report.dropped_chapters.push_back(c);
      report.dropped_chapter_verses += c.pairs;
    }
  log << "  misaligned chapters: " << report.dropped_chapters.size() << " of " << checks.size()
      << " dropped (" << report.dropped_chapter_verses << " pairs; spread outlier bound "
      << threshold << ")\n";
  for (const auto& c : report.dropped_chapters)
    log << "    " << c.chapter << " (" << c.pairs << " pairs): " << c.reason << "\n";

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

  // Verses, and per chapter its runs of consecutive verses cut into documents.
  auto write_docs = [&](const std::vector<const VersePair*>& run, int s) {
    const auto n = static_cast<long>(run.size());
    if (n < options.doc_min_verses) return;
    const long parts = (n + options.doc_max_verses - 1) / options.doc_max_verses;
    for (long p = 0; p < parts; ++p) {
      const long b = n * p / parts, e = n * (p + 1) / parts;
      std::string en, es;
      for (long i = b; i < e; ++i) {
        en += (i > b ? " " : "") + run[i]->src;
        es += (i > b ? " " : "") + run[i]->tgt;
      }
      docs[s][0] << en << '\n';
      docs[s][1] << es << '\n';
      docs[s][2] << run[b]->ref() << '-' << run[e - 1]->ref() << '\n';
      ++report.documents[s];
    }
  };
  std::vector<const VersePair*> run;
  int run_split = 0;
  for (const auto& p : aligned.pairs) {
    const std::string chapter = p.chapter_ref();
    if (dropped.count(chapter)) continue;
    const int s = static_cast<int>(chapter_split(chapter));
    files[s][0] << p.src << '\n';
    files[s][1] << p.tgt << '\n';
    files[s][2] << p.ref() << '\n';
    ++report.verses[s];
    const VersePair* last = run.empty() ? nullptr : run.back();
    if (last && (last->book != p.book || last->chapter != p.chapter || last->verse + 1 != p.verse)) {
      write_docs(run, run_split);
      run.clear();
    }
    run.push_back(&p);
    run_split = s;
  }
  write_docs(run, run_split);
  for (auto* group : {&files, &docs})
    for (auto& split : *group)
      for (auto& f : split) {
        f.close();
        LOOM_CHECK(!f.fail(), "prepare bible: ", stage.file("").string(),
                   ": writing failed (disk full?)");
      }
  for (int s = 0; s < 3; ++s)
    log << "  " << split_name(static_cast<Split>(s)) << ": " << report.verses[s]
        << " verses, " << report.documents[s] << " documents\n";
  const auto t1 = clock::now();
  report.seconds_extract = std::chrono::duration<double>(t1 - t0).count();

  train_tokenizer({stage.file("train.en").string(), stage.file("train.es").string()},
                  stage.file("spm").string(), options.vocab, log);
  report.vocab = Tokenizer::load(stage.file("spm.model").string()).vocab_size();
  report.seconds_tokenizer = std::chrono::duration<double>(clock::now() - t1).count();
  names.push_back("spm.vocab");
  names.push_back("spm.model");  // last: its presence marks a complete corpus
  stage.commit(names);
  log << "  wrote " << options.out_dir << " (vocab " << report.vocab << ") in "
      << report.seconds_extract << " s extract + " << report.seconds_tokenizer
      << " s tokenizer\n";
  return report;
}

}  // namespace loom::data
