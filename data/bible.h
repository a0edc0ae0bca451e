// The default translation corpus: English (World English Bible, SWORD module engWEB2015eb)
// -> Spanish (Reina-Valera 1909, spaRV1909eb), dumped by SWORD's `mod2imp`, whose output is
//   $$$Book C:V            one header per verse ($$$Book C:0, $$$[ ... ] are headings)
//   <w ...>In</w> ...      the verse as one line of OSIS markup
// (OSIS 2.1.1 manual, https://crosswire.org/osis). Steps (DESIGN.md "Data"):
//   osis_to_text     markup -> plain text: tags removed, <note>, <title>, <speaker> dropped
//                    with their contents, entities unescaped, whitespace collapsed;
//   parse_imp        a dump -> verses (chapter and verse 0 skipped);
//   align_verses     English and Spanish verses paired by reference, empty pairs dropped;
//   find_misaligned_chapters  chapters whose versifications differ (the modules use NRSVA
//                    and KJV numbering), found from the log length ratios of their pairs;
//   chapter_split    whole chapters held out for dev and test by a stable hash;
//   prepare_bible    all of it, the text and .ref files, the document-level set and the
//                    joint SentencePiece model (data/tokenizer.h).
#pragma once

#include <array>
#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace loom::data {

struct BibleOptions {
  std::string out_dir = "data/bible";
  int vocab = 8000;
  std::string mod2imp = "mod2imp";           // the SWORD dump tool (package libsword-utils)
  std::string source_module = "engWEB2015eb";  // package sword-text-web
  std::string target_module = "spaRV1909eb";   // package sword-text-sparv
  int doc_min_verses = 4;                      // document-level set: runs of 4..64 verses
  int doc_max_verses = 64;
};

struct Verse {
  std::string book;  // SWORD's English book name, e.g. "1 Samuel"
  int chapter = 0;
  int verse = 0;
  std::string text;  // plain text, may be empty
  std::string ref() const;  // "1 Samuel 24:1"
};

struct VersePair {
  std::string book;
  int chapter = 0;
  int verse = 0;
  std::string src, tgt;  // English, Spanish
  std::string ref() const;
  std::string chapter_ref() const;  // "1 Samuel 24"
};

// OSIS markup of one verse -> plain text. A dropped note or a structural tag (div, l, lb,
// lg, chapter, milestone, ...) separates words: a space is put there unless whitespace or
// closing punctuation (, . ; : ! ? ) ] ” ’ » …) follows.
std::string osis_to_text(std::string_view osis);

// A whole mod2imp dump -> its verses in order; headings and chapter/verse 0 are skipped.
std::vector<Verse> parse_imp(std::string_view dump);

struct Alignment {
  std::vector<VersePair> pairs;  // in source order, both sides non-empty
  std::size_t dropped_empty = 0;     // references present on both sides with an empty side
  std::size_t unpaired_source = 0;   // source references missing from the target
  std::size_t unpaired_target = 0;
};
Alignment align_verses(const std::vector<Verse>& source, const std::vector<Verse>& target);

// The misalignment test. For chapter c and a shift k in {-1, 0, +1}, pair source verse i
// with target verse i+k (by position in the chapter) and let r = log(chars(tgt)/chars(src))
// per pair; spread(k) = mean |r - median(r)|, the mean absolute deviation of the log length
// ratio. A faithful verse pair has a nearly constant ratio (spread ~0.1); pairs of unrelated
// verses do not. Chapter c is misaligned when
//   (a) a one-verse shift fits better: min(spread(-1), spread(+1)) < shift_margin*spread(0)
//       (needs at least min_pairs pairs), or
//   (b) spread(0) is an outlier among chapters: above median + outlier_mads * 1.4826 MAD
//       of all chapters' spread(0) (a partial shift, a merged or split verse).
struct ChapterCheck {
  std::string chapter;  // "Jonah 2"
  std::size_t pairs = 0;
  double spread = 0, spread_prev = 0, spread_next = 0;  // spread(0), spread(-1), spread(+1)
  std::string reason;  // empty when kept
};
struct MisalignOptions {
  double shift_margin = 1.0;
  double outlier_mads = 6.0;
  std::size_t min_pairs = 4;
};
// One entry per chapter in order; `threshold` receives the outlier bound of (b).
std::vector<ChapterCheck> find_misaligned_chapters(const std::vector<VersePair>& pairs,
                                                   const MisalignOptions& options,
                                                   double* threshold = nullptr);

enum class Split { train = 0, dev = 1, test = 2 };
const char* split_name(Split s);
// Stable across runs and machines: FNV-1a 64 of "Book C"; 15 per mille of chapters go to
// dev, 15 to test.
Split chapter_split(std::string_view chapter_ref);

struct PrepareReport {
  std::array<std::size_t, 3> verses{};     // per Split
  std::array<std::size_t, 3> documents{};  // per Split
  std::size_t dropped_empty = 0, unpaired_source = 0, unpaired_target = 0;
  std::vector<ChapterCheck> dropped_chapters;
  std::size_t dropped_chapter_verses = 0;
  int vocab = 0;
  double seconds_extract = 0, seconds_tokenizer = 0;
};

// Runs mod2imp for both modules and writes into options.out_dir:
//   {train,dev,test}.{en,es,ref}          one verse per line, .ref "Genesis 1:1"
//   docs.{train,dev,test}.{en,es,ref}     runs of consecutive verses of one chapter,
//                                         .ref "Genesis 1:1-Genesis 1:12"
//   spm.model, spm.vocab                  joint SentencePiece model on train.en + train.es
// Everything is written to out_dir/.tmp-* first and renamed into place at the end, spm.model
// last, so an interrupted run leaves no half corpus. Counts go to `log`.
PrepareReport prepare_bible(const BibleOptions& options, std::ostream& log);

}  // namespace loom::data
