// ModelConfig: DESIGN.md's [model] section (keys and defaults as there). Strings keep
// the TOML spelling; validate() checks every value and names the key and the fix.
#pragma once

#include <cstdint>
#include <string>

#include "nn/positions.h"

namespace loom::nn {

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

  int64_t head_dim() const { return d_model / heads; }
  bool is_seq2seq() const { return arch == "seq2seq"; }
  // Throws loom::Error naming the first bad key, e.g.
  // "model.kv_heads = 3: heads (4) must be a multiple of kv_heads".
  void validate() const;
};

}  // namespace loom::nn
