#include "nn/config.h"

#include "kernels/error.h"

namespace loom::nn {
namespace {

void check_choice(const char* key, const std::string& value,
                  std::initializer_list<const char*> choices) {
  std::string list;
  for (const char* c : choices) {
    if (value == c) return;
    list += list.empty() ? c : std::string(", ") + c;
  }
  throw Error(detail::cat("model.", key, " = \"", value, "\": expected one of ", list));
}

}  // namespace

void ModelConfig::validate() const {
  check_choice("arch", arch, {"seq2seq", "decoder"});
  check_choice("activation", activation, {"relu", "gelu"});
  check_choice("norm", norm, {"pre", "post"});
  check_choice("position", position, {"sinusoidal", "rope", "alibi", "none"});
  LOOM_CHECK(vocab > 3, "model.vocab = ", vocab,
             ": must exceed the 4 special ids (pad, unk, bos, eos)");
  LOOM_CHECK(d_model > 0, "model.d_model = ", d_model, ": must be positive");
  LOOM_CHECK(heads > 0 && d_model % heads == 0, "model.heads = ", heads, ": d_model (", d_model,
             ") must be a positive multiple of heads");
  LOOM_CHECK(kv_heads > 0 && heads % kv_heads == 0, "model.kv_heads = ", kv_heads, ": heads (",
             heads, ") must be a multiple of kv_heads");
  LOOM_CHECK(ffn > 0, "model.ffn = ", ffn, ": must be positive");
  LOOM_CHECK(encoder_layers >= 0 && decoder_layers > 0, "model.encoder_layers = ", encoder_layers,
             ", model.decoder_layers = ", decoder_layers,
             ": need decoder_layers > 0 and encoder_layers >= 0");
  LOOM_CHECK(!is_seq2seq() || encoder_layers > 0,
             "model.encoder_layers = 0: arch = \"seq2seq\" "
             "needs an encoder; use arch = \"decoder\" for a language model");
  LOOM_CHECK(dropout >= 0 && dropout < 1, "model.dropout = ", dropout, ": expected [0, 1)");
  LOOM_CHECK(label_smoothing >= 0 && label_smoothing <= 1,
             "model.label_smoothing = ", label_smoothing, ": expected [0, 1]");
  LOOM_CHECK(max_len > 0, "model.max_len = ", max_len, ": must be positive");
  if (position == "rope") check_rope_config(rope, head_dim());
  check_choice("attention.kind", attention.kind,
               {"full", "sliding_window", "block_sparse", "linear", "infini"});
  LOOM_CHECK(!(attention.kind == "linear" && position == "alibi"),
             "model.attention.kind = "
             "\"linear\" with position = \"alibi\": linear attention has no scores to bias; use "
             "position = \"rope\", \"sinusoidal\" or \"none\"");
  LOOM_CHECK(!(attention.kind == "block_sparse" && position == "alibi"),
             "model.attention.kind = \"block_sparse\" with position = \"alibi\": not "
             "implemented (the bias would be a full T x T matrix); use position = \"rope\", "
             "\"sinusoidal\" or \"none\"");
  check_choice("attention.layers", attention.layers, {"encoder", "decoder", "both"});
  LOOM_CHECK(attention.kind != "sliding_window" || attention.window >= 1,
             "model.attention.window = ", attention.window,
             ": a sliding window needs window >= 1 (keys on each side)");
  LOOM_CHECK(attention.kind != "block_sparse" || attention.block >= 1,
             "model.attention.block = ", attention.block,
             ": block_sparse needs block >= 1 (positions per block)");
  LOOM_CHECK(attention.global >= 0, "model.attention.global = ", attention.global,
             ": expected >= 0 (leading global positions)");
  LOOM_CHECK(attention.kind != "infini" || attention.segment >= 1,
             "model.attention.segment = ", attention.segment,
             ": infini needs segment >= 1 (positions per segment)");
}

std::string AttentionPattern::describe() const {
  std::string d = kind;
  if (kind == "sliding_window") d += " window " + std::to_string(window);
  if (kind == "block_sparse")
    d += " block " + std::to_string(block) + " global " + std::to_string(global);
  if (kind == "infini")
    d += " segment " + std::to_string(segment) + (delta_rule ? " delta rule" : " linear update");
  return d + " (" + layers + ")";
}

}  // namespace loom::nn
