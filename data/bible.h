// The default translation corpus: English (World English Bible, SWORD module engWEB2015eb)
// -> Spanish (Reina-Valera 1909, spaRV1909eb), dumped by SWORD's `mod2imp`, whose output is
//   $$$Book C:V            one header per verse ($$$Book C:0, $$$[ ... ] are headings)
//   <w ...>In</w> ...      the verse as one line of OSIS markup
// (OSIS 2.1.1 manual, https://crosswire.org/osis). Steps (DESIGN.md "Data"):
//   osis_to_text     markup -> plain text: tags removed, <note>, <title>, <speaker> dropped
//                    with their contents, entities unescaped, whitespace collapsed;
//   parse_imp        a dump -> verses (chapter and verse 0 skipped, drop capitals recased);
//   align_verses     English and Spanish verses paired by reference, empty pairs dropped;
//   find_misaligned_chapters  chapters whose versifications differ (the modules use NRSVA
//                    and KJV numbering), found from the log length ratios of their pairs;
//   drop_ratio_outliers  single verse pairs of implausible length ratio dropped;
//   chapter_splits   whole chapters held out for dev and test by a stable hash;
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
  std::string mod2imp = "mod2imp";             // the SWORD dump tool (package libsword-utils)
  std::string source_module = "engWEB2015eb";  // package sword-text-web
  std::string target_module = "spaRV1909eb";   // package sword-text-sparv
  // Document-level set: runs of consecutive verses of one chapter, doc_min_verses at least.
  // Training documents hold at most doc_max_train_verses (12 verses: about 128-512 tokens, the
  // length a long-context fine-tune trains on); dev and test ones up to doc_max_verses, so that
  // an evaluation reaches past the fine-tuned length (up to about 2000 tokens).
  int doc_min_verses = 4;
  int doc_max_train_verses = 12;
  int doc_max_verses = 64;
  double held_out = 0.015;  // fraction of chapters for dev, and again for test
};

struct Verse {
  std::string book;  // SWORD's English book name, e.g. "1 Samuel"
  int chapter = 0;
  int verse = 0;
  std::string text;         // plain text, may be empty
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

// OSIS markup of one verse -> plain text. <title canonical="true"> (a psalm superscription)
// is kept, other titles are dropped. A dropped note or a structural tag (div, l, lb,
// lg, chapter, milestone, ...) separates words: a space is put there unless whitespace or
// closing punctuation (, . ; : ! ? ) ] ” ’ » …) follows.
std::string osis_to_text(std::string_view osis);

// A whole mod2imp dump -> its verses in order; headings and chapter/verse 0 are skipped. A
// chapter's first word printed in capitals ("Y ACONTECIÓ que") is recased ("Y Aconteció").
std::vector<Verse> parse_imp(std::string_view dump);

struct Alignment {
  std::vector<VersePair> pairs;     // in source order, both sides non-empty
  std::size_t dropped_empty = 0;    // references present on both sides with an empty side
  std::size_t unpaired_source = 0;  // source references missing from the target
  std::size_t unpaired_target = 0;
};
Alignment align_verses(const std::vector<Verse>& source, const std::vector<Verse>& target);

// The misalignment test. For chapter c and a shift k in {-1, 0, +1}, pair source verse i
// with target verse i+k (by position in the chapter) and let r = log(chars(tgt)/chars(src))
// per pair; spread(k) = mean |r - median(r)|, the mean absolute deviation of the log length
// ratio. A faithful verse pair has a nearly constant ratio (spread ~0.1); pairs of unrelated
// verses do not. Chapter c is misaligned when
//   (a) a one-verse shift fits clearly better: min(spread(-1), spread(+1)) < shift_margin *
//       spread(0) (needs at least min_pairs pairs; the margin keeps short chapters of
//       similar-length verses, e.g. Psalm 150, where a shift fits about as well), or
//   (b) spread(0) is an outlier among chapters: above median + outlier_mads * 1.4826 MAD
//       of all chapters' spread(0) (a partial shift, a merged or split verse).
struct ChapterCheck {
  std::string chapter;  // "Jonah 2"
  std::size_t pairs = 0;
  double spread = 0, spread_prev = 0, spread_next = 0;  // spread(0), spread(-1), spread(+1)
  std::string reason;                                   // empty when kept
};
struct MisalignOptions {
  double shift_margin = 0.8;
  double outlier_mads = 6.0;
  std::size_t min_pairs = 4;
};
// One entry per chapter in order; `threshold` receives the outlier bound of (b).
std::vector<ChapterCheck> find_misaligned_chapters(const std::vector<VersePair>& pairs,
                                                   const MisalignOptions& options,
                                                   double* threshold = nullptr);

enum class Split { train = 0, dev = 1, test = 2 };
const char* split_name(Split s);
// Whole chapters held out, deterministically and in exact proportion: chapters are ranked by
// a 64-bit hash of their name (FNV-1a + fmix64; ties by name); the first round(held_out * N) go to
// dev, the next as many to test, the rest to train. A chapter's rank depends only on its
// name, so the choice is the same on every machine and run.
std::vector<Split> chapter_splits(const std::vector<std::string>& chapters,
                                  double held_out = 0.015);

// Verse pairs whose log length ratio is further than `max_log_ratio` from the median of all
// pairs (a translation 2.7x longer or shorter than usual: an appended doxology or end
// matter, e.g. WEB's Romans 14:23) are dropped; returns how many.
std::size_t drop_ratio_outliers(std::vector<VersePair>& pairs, double max_log_ratio = 1.0);

struct PrepareReport {
  std::array<std::size_t, 3> verses{};     // per Split
  std::array<std::size_t, 3> documents{};  // per Split
  std::size_t dropped_empty = 0, unpaired_source = 0, unpaired_target = 0, dropped_ratio = 0;
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
