#include "recipes/commands.h"

#include <iomanip>

#include "autograd/ops.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "recipes/checkpoint.h"
#include "recipes/evaluate.h"
#include "recipes/recipe.h"

namespace loom::recipes {
namespace {

struct Loaded {
  std::unique_ptr<nn::Transformer> model;
  data::Tokenizer tokenizer;
  Recipe recipe;
};

Loaded load(const std::string& path) {
  const Checkpoint c = load_checkpoint(path);
  Loaded l{std::make_unique<nn::Transformer>(c.model_config, 0),
           data::Tokenizer::from_serialized(c.tokenizer_bytes, path + " (tokenizer)"),
           parse_recipe(c.meta.config_toml, path + " (config)")};
  l.model->load_state_dict(c.model_state);
  l.model->eval();
  return l;
}

}  // namespace

void translate_stream(const std::string& checkpoint, const DecodeOptions& decode,
                      std::istream& in, std::ostream& out) {
  const Loaded l = load(checkpoint);
  LOOM_CHECK(l.model->config().is_seq2seq(), "translate: ", checkpoint,
             " is a language model (model.arch = \"decoder\"); translate needs a seq2seq checkpoint");
  std::vector<std::vector<int32_t>> sources;
  for (std::string line; std::getline(in, line);) {
    std::vector<int32_t> ids = l.tokenizer.encode(line);
    ids.push_back(nn::kEos);
    sources.push_back(std::move(ids));
  }
  for (const auto& ids : translate_ids(*l.model, sources, decode)) out << l.tokenizer.decode(ids) << "\n";
}

void eval_command(const std::string& checkpoint, const std::string& split,
                  const DecodeOptions& decode, bool json, std::ostream& out) {
  const Loaded l = load(checkpoint);
  std::vector<std::string> files;
  if (split == "dev") files = l.recipe.data.dev;
  else if (split == "test") files = l.recipe.data.test;
  else {
    const size_t comma = split.find(',');
    LOOM_CHECK(comma != std::string::npos, "eval: --split ", split,
               ": expected dev, test or SRC_FILE,TGT_FILE");
    files = {split.substr(0, comma), split.substr(comma + 1)};
  }
  const data::Encoder encode = [&](std::string_view s) { return l.tokenizer.encode(s); };
  const data::Corpus corpus = data::load_corpus(files[0], files[1], encode,
                                                l.model->config().max_len, data::LengthPolicy::Truncate);
  const EvalResult r = evaluate(*l.model, corpus.examples, l.tokenizer, data::read_lines(files[1]),
                                l.recipe.data.max_tokens, int64_t(corpus.examples.size()), decode);
  if (json) {
    out << eval_json(r) << "\n";
    return;
  }
  out << files[0] << " -> " << files[1] << " (" << r.sentences << " sentences, " << r.tokens
      << " target tokens)\n"
      << std::fixed << std::setprecision(4) << "loss " << r.loss << "  nll " << r.nll << "  ppl "
      << r.ppl << std::setprecision(2) << "  BLEU " << r.bleu << "  chrF " << r.chrf << "\n";
}

}  // namespace loom::recipes
