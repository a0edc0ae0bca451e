// ModelConfig: DESIGN.md's [model] section (keys and defaults as there). Strings keep
// the TOML spelling; validate() checks every value and names the key and the fix.
#pragma once

#include <cstdint>
#include <string>

#include "nn/positions.h"

namespace loom::nn {

// [model.attention]: the pattern of self-attention (cross-attention stays full). A sliding
// window (Longformer, Beltagy et al. 2020; Mistral 7B) lets each query see `window` keys on
// each side of it (before it only, in the causal decoder) and itself: work and memory grow
// linearly in the length, and incremental decoding keeps only the last `window` keys.
struct AttentionPattern {
  std::string kind = "full";    // full | sliding_window
  int64_t window = 0;           // sliding_window: keys per side, >= 1
  std::string layers = "both";  // encoder | decoder | both: the self-attentions it applies to
  bool windowed(bool encoder) const {
    return kind == "sliding_window" &&
           (layers == "both" || layers == (encoder ? "encoder" : "decoder"));
  }
};

struct ModelConfig {
  std::string arch = "seq2seq";  // seq2seq | decoder (language model, no encoder)
  int64_t vocab = 8000;
  int64_t d_model = 256;
  int64_t heads = 4;
  int64_t kv_heads = 4;  // heads: MHA; 1: MQA; between: GQA
  int64_t ffn = 1024;
  int64_t encoder_layers = 3;
  int64_t decoder_layers = 3;
  std::string activation = "relu";  // relu | gelu
  std::string norm = "pre";         // pre | post
  bool tie_embeddings = true;
  double dropout = 0.1;
  double label_smoothing = 0.1;
  std::string position = "sinusoidal";  // sinusoidal | rope | alibi | none
  int64_t max_len = 256;
  RopeConfig rope;
  AttentionPattern attention;

  int64_t head_dim() const { return d_model / heads; }
  bool is_seq2seq() const { return arch == "seq2seq"; }
  // Throws loom::Error naming the first bad key, e.g.
  // "model.kv_heads = 3: heads (4) must be a multiple of kv_heads".
  void validate() const;
};

}  // namespace loom::nn
