#include "recipes/model_config.h"

#include <sstream>

#include "recipes/toml_reader.h"

namespace loom::recipes {

void read_model_table(const toml::table& model, const std::string& source, nn::ModelConfig& cfg) {
  const TomlReader r(source, model, "model.");
  r.check_keys({"arch", "vocab", "d_model", "heads", "kv_heads", "ffn", "encoder_layers",
                "decoder_layers", "activation", "norm", "tie_embeddings", "dropout",
                "label_smoothing", "position", "max_len", "rope", "attention"});
  r.get("arch", cfg.arch);
  r.get("vocab", cfg.vocab);
  r.get("d_model", cfg.d_model);
  r.get("heads", cfg.heads);
  r.get("kv_heads", cfg.kv_heads);
  r.get("ffn", cfg.ffn);
  r.get("encoder_layers", cfg.encoder_layers);
  r.get("decoder_layers", cfg.decoder_layers);
  r.get("activation", cfg.activation);
  r.get("norm", cfg.norm);
  r.get("tie_embeddings", cfg.tie_embeddings);
  r.get("dropout", cfg.dropout);
  r.get("label_smoothing", cfg.label_smoothing);
  r.get("position", cfg.position);
  r.get("max_len", cfg.max_len);
  if (const toml::table* rope = r.subtable("rope")) {
    const TomlReader rr(source, *rope, "model.rope.");
    rr.check_keys(
        {"base", "scaling", "factor", "original_max_len", "beta_fast", "beta_slow", "mscale"});
    rr.get("base", cfg.rope.base);
    rr.get("scaling", cfg.rope.scaling);
    rr.get("factor", cfg.rope.factor);
    rr.get("original_max_len", cfg.rope.original_max_len);
    rr.get("beta_fast", cfg.rope.beta_fast);
    rr.get("beta_slow", cfg.rope.beta_slow);
    rr.get("mscale", cfg.rope.mscale);
  }
  if (const toml::table* attention = r.subtable("attention")) {
    const TomlReader ra(source, *attention, "model.attention.");
    ra.check_keys({"kind", "window", "block", "global", "segment", "delta_rule", "layers"});
    ra.get("kind", cfg.attention.kind);
    ra.get("window", cfg.attention.window);
    ra.get("block", cfg.attention.block);
    ra.get("global", cfg.attention.global);
    ra.get("segment", cfg.attention.segment);
    ra.get("delta_rule", cfg.attention.delta_rule);
    ra.get("layers", cfg.attention.layers);
  }
}

nn::ModelConfig parse_model_config(std::string_view toml_text, const std::string& source) {
  const toml::table root = parse_toml(toml_text, source);
  const toml::table* model = root["model"].as_table();
  LOOM_CHECK(model != nullptr, source, ": no [model] section");
  nn::ModelConfig cfg;
  read_model_table(*model, source, cfg);
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
  if (c.attention.kind != "full")  // full attention writes no table: older configs read alike
    os << "\n[model.attention]\nkind = \"" << c.attention.kind
       << "\"\nwindow = " << c.attention.window << "\nblock = " << c.attention.block
       << "\nglobal = " << c.attention.global << "\nsegment = " << c.attention.segment
       << "\ndelta_rule = " << (c.attention.delta_rule ? "true" : "false") << "\nlayers = \""
       << c.attention.layers << "\"\n";
  return os.str();
}

}  // namespace loom::recipes
