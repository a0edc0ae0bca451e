#include "recipes/model_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "kernels/error.h"

namespace loom::recipes {
namespace {

constexpr std::initializer_list<const char*> kModelKeys = {
    "arch", "vocab", "d_model", "heads", "kv_heads", "ffn", "encoder_layers",
    "decoder_layers", "activation", "norm", "tie_embeddings", "dropout",
    "label_smoothing", "position", "max_len", "rope"};
constexpr std::initializer_list<const char*> kRopeKeys = {
    "base", "scaling", "factor", "original_max_len", "beta_fast", "beta_slow", "mscale"};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Reads one typed value; a wrong type names the key and what was expected.
struct Reader {
  const std::string& source;
  const toml::table& table;
  std::string prefix;

  void check_keys(std::initializer_list<const char*> valid) const {
    for (const auto& [k, v] : table) {
      const std::string key(k.str());
      if (std::find_if(valid.begin(), valid.end(), [&](const char* s) { return key == s; }) ==
          valid.end())
        throw Error(detail::cat(source, ": ", prefix, key, ": unknown key; did you mean ",
                                prefix, nearest_key(key, valid), "?"));
    }
  }
  template <class T> void get(const char* key, T& out, const char* type_name) const {
    const toml::node* n = table.get(key);
    if (n == nullptr) return;
    if constexpr (std::is_same_v<T, double>) {
      if (auto v = n->value<double>()) {  // integers are accepted for floats
        out = *v;
        return;
      }
    } else if constexpr (std::is_same_v<T, int64_t>) {
      if (n->is_integer()) {
        out = n->as_integer()->get();
        return;
      }
    } else if (auto v = n->value_exact<T>()) {
      out = *v;
      return;
    }
    throw Error(detail::cat(source, ": ", prefix, key, ": expected ", type_name));
  }
};

}  // namespace

std::string nearest_key(const std::string& key, std::initializer_list<const char*> valid) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const char* v : valid) {
    const size_t d = edit_distance(key, v);
    if (d < best_d) best_d = d, best = v;
  }
  return best;
}

nn::ModelConfig parse_model_config(std::string_view toml_text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    throw Error(detail::cat(source, ":", e.source().begin.line, ":", e.source().begin.column,
                            ": TOML syntax error: ", e.description()));
  }
  nn::ModelConfig cfg;
  const toml::table* model = root["model"].as_table();
  LOOM_CHECK(model != nullptr, source, ": no [model] section");
  const Reader r{source, *model, "model."};
  r.check_keys(kModelKeys);
  r.get("arch", cfg.arch, "a string");
  r.get("vocab", cfg.vocab, "an integer");
  r.get("d_model", cfg.d_model, "an integer");
  r.get("heads", cfg.heads, "an integer");
  r.get("kv_heads", cfg.kv_heads, "an integer");
  r.get("ffn", cfg.ffn, "an integer");
  r.get("encoder_layers", cfg.encoder_layers, "an integer");
  r.get("decoder_layers", cfg.decoder_layers, "an integer");
  r.get("activation", cfg.activation, "a string");
  r.get("norm", cfg.norm, "a string");
  r.get("tie_embeddings", cfg.tie_embeddings, "a boolean");
  r.get("dropout", cfg.dropout, "a number");
  r.get("label_smoothing", cfg.label_smoothing, "a number");
  r.get("position", cfg.position, "a string");
  r.get("max_len", cfg.max_len, "an integer");
  if (const toml::node* rope = model->get("rope")) {
    LOOM_CHECK(rope->is_table(), source, ": model.rope: expected a table ([model.rope])");
    const Reader rr{source, *rope->as_table(), "model.rope."};
    rr.check_keys(kRopeKeys);
    rr.get("base", cfg.rope.base, "a number");
    rr.get("scaling", cfg.rope.scaling, "a string");
    rr.get("factor", cfg.rope.factor, "a number");
    rr.get("original_max_len", cfg.rope.original_max_len, "an integer");
    rr.get("beta_fast", cfg.rope.beta_fast, "a number");
    rr.get("beta_slow", cfg.rope.beta_slow, "a number");
    double mscale = 0;
    if (rope->as_table()->contains("mscale")) {
      rr.get("mscale", mscale, "a number");
      cfg.rope.mscale = mscale;
    }
  }
  try {
    cfg.validate();
  } catch (const Error& e) {
    throw Error(detail::cat(source, ": ", e.what()));
  }
  return cfg;
}

std::string model_config_to_toml(const nn::ModelConfig& c) {
  std::ostringstream os;
  os.precision(17);
  os << "[model]\n"
     << "arch = \"" << c.arch << "\"\nvocab = " << c.vocab << "\nd_model = " << c.d_model
     << "\nheads = " << c.heads << "\nkv_heads = " << c.kv_heads << "\nffn = " << c.ffn
     << "\nencoder_layers = " << c.encoder_layers << "\ndecoder_layers = " << c.decoder_layers
     << "\nactivation = \"" << c.activation << "\"\nnorm = \"" << c.norm
     << "\"\ntie_embeddings = " << (c.tie_embeddings ? "true" : "false")
     << "\ndropout = " << c.dropout << "\nlabel_smoothing = " << c.label_smoothing
     << "\nposition = \"" << c.position << "\"\nmax_len = " << c.max_len << "\n\n[model.rope]\n"
     << "base = " << c.rope.base << "\nscaling = \"" << c.rope.scaling
     << "\"\nfactor = " << c.rope.factor << "\noriginal_max_len = " << c.rope.original_max_len
     << "\nbeta_fast = " << c.rope.beta_fast << "\nbeta_slow = " << c.rope.beta_slow << "\n";
  if (c.rope.mscale) os << "mscale = " << *c.rope.mscale << "\n";
  return os.str();
}

}  // namespace loom::recipes
