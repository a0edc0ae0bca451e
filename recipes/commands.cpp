#include "recipes/commands.h"

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "autograd/ops.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "recipes/checkpoint.h"
#include "recipes/context_sweep.h"
#include "recipes/evaluate.h"
#include "recipes/recipe.h"

namespace loom::recipes {
namespace {

struct Loaded {
  std::unique_ptr<nn::Transformer> model;
  data::Tokenizer tokenizer;
  Recipe recipe;
};

// The checkpoint's model (with `sets` applied to its config) in eval mode.
Loaded load(const std::string& path, const std::vector<std::string>& sets = {},
            int64_t min_max_len = 0) {
  const Checkpoint c = load_checkpoint(path);
  Recipe recipe = parse_recipe(c.meta.config_toml, path + " (config)", sets);
  recipe.model.max_len = std::max(recipe.model.max_len, min_max_len);
  Loaded l{std::make_unique<nn::Transformer>(recipe.model, 0),
           data::Tokenizer::from_serialized(c.tokenizer_bytes, path + " (tokenizer)"), recipe};
  try {
    l.model->load_state_dict(c.model_state);
  } catch (const Error& e) {
    throw Error(detail::cat(path, ": ", e.what(), " (check the --set options)"));
  }
  l.model->eval();
  return l;
}

}  // namespace

// The [source, target] files of an eval split (see EvalOptions::split).
std::vector<std::string> split_files(const std::string& split, const DataConfig& data) {
  namespace fs = std::filesystem;
  auto docs = [](const std::vector<std::string>& files) {
    std::vector<std::string> out;
    for (const std::string& f : files) {  // a recipe that trains on documents names them already
      const std::string name = fs::path(f).filename().string();
      out.push_back(
          name.starts_with("docs.") ? f : (fs::path(f).parent_path() / ("docs." + name)).string());
    }
    return out;
  };
  if (split == "dev") return data.dev;
  if (split == "test") return data.test;
  if (split == "docs-dev") return docs(data.dev);
  if (split == "docs-test") return docs(data.test);
  const size_t comma = split.find(',');
  if (comma == std::string::npos) return {split, split};  // one text: a language model's
  return {split.substr(0, comma), split.substr(comma + 1)};
}

void translate_stream(const std::string& checkpoint, const DecodeOptions& decode, std::istream& in,
                      std::ostream& out) {
  const Loaded l = load(checkpoint);
  LOOM_CHECK(
      l.model->config().is_seq2seq(), "translate: ", checkpoint,
      " is a language model (model.arch = \"decoder\"); translate needs a seq2seq checkpoint");
  std::vector<std::vector<int32_t>> sources;
  for (std::string line; std::getline(in, line);) {
    std::vector<int32_t> ids = l.tokenizer.encode(line);
    ids.push_back(nn::kEos);
    sources.push_back(std::move(ids));
  }
  for (const auto& ids : translate_ids(*l.model, sources, decode))
    out << l.tokenizer.decode(ids) << "\n";
}

void eval_command(const std::string& checkpoint, const EvalOptions& o, std::ostream& out) {
  const int64_t longest = o.context_sweep ? o.buckets.back() : 0;
  const Loaded l = load(checkpoint, o.sets, longest);
  const std::vector<std::string> files = split_files(o.split, l.recipe.data);
  if (files[0] == files[1])
    LOOM_CHECK(!l.model->config().is_seq2seq(), "eval: --split ", o.split,
               ": one file is a language model's text; a translation model needs SRC,TGT");
  const data::Encoder encode = [&](std::string_view s) { return l.tokenizer.encode(s); };
  // A sweep leaves out examples longer than its last bucket (a truncated document would be
  // decoded from part of its source and scored against all of its reference); a plain
  // evaluation truncates them to max_len.
  const data::Corpus corpus =
      data::load_corpus(files[0], files[1], encode, l.model->config().max_len,
                        o.context_sweep ? data::LengthPolicy::Skip : data::LengthPolicy::Truncate);
  const std::vector<std::string> references = data::read_lines(files[1]);
  if (o.context_sweep) {
    SweepOptions so;
    so.buckets = o.buckets;
    so.block = o.block;
    so.decode_options = o.decode;
    so.max_tokens = std::max(l.recipe.data.max_tokens, longest);
    const SweepResult r = context_sweep(*l.model, corpus.examples, l.tokenizer, references, so);
    const nn::RopeConfig& rope = l.model->config().rope;
    std::ostringstream method;
    method << l.model->config().position;
    if (l.model->config().position == "rope" && rope.scaling != "none")
      method << " " << rope.scaling << " x" << rope.factor << " (L " << rope.original_max_len
             << ")";
    if (o.json) {
      out << sweep_json(r, method.str()) << "\n";
    } else {
      print_sweep(r,
                  checkpoint + " on " + files[1] + ": " + method.str() + ", " +
                      std::to_string(corpus.skipped) + " of " + std::to_string(corpus.lines) +
                      " examples longer than " + std::to_string(l.model->config().max_len) +
                      " tokens left out",
                  out);
    }
    if (!o.out_prefix.empty()) {
      std::ofstream(o.out_prefix + ".csv") << sweep_csv(r, method.str());
      std::ofstream(o.out_prefix + ".json") << sweep_json(r, method.str()) << "\n";
    }
    return;
  }
  const EvalResult r =
      evaluate(*l.model, corpus.examples, l.tokenizer, references, l.recipe.data.max_tokens,
               int64_t(corpus.examples.size()), o.decode);
  if (o.json) {
    out << eval_json(r) << "\n";
    return;
  }
  out << files[0] << " -> " << files[1] << " (" << r.sentences << " sentences, " << r.tokens
      << " target tokens)\n"
      << std::fixed << std::setprecision(4) << "loss " << r.loss << "  nll " << r.nll << "  ppl "
      << r.ppl << std::setprecision(2);
  if (r.bleu >= 0) out << "  BLEU " << r.bleu << "  chrF " << r.chrf;
  out << "\n" << std::defaultfloat;
}

}  // namespace loom::recipes
