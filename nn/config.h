// ModelConfig: DESIGN.md's [model] section (keys and defaults as there). Strings keep
// the TOML spelling; validate() checks every value and names the key and the fix.
#pragma once

#include <cstdint>
#include <string>

#include "nn/positions.h"

namespace loom::nn {

// [model.attention]: the pattern of self-attention (cross-attention stays full).
//   sliding_window (Longformer, Beltagy et al. 2020; Mistral 7B): each query sees `window`
//     keys on each side of it (before it only, in the causal decoder) and itself; work and
//     memory grow linearly in the length, decoding keeps only the last `window` keys.
//   linear (Katharopoulos et al. 2020, nn/linear_attention.h): the kernel φ(q)·φ(k) with
//     φ = elu + 1 instead of softmax, O(T D²); decoding keeps a fixed (D, D) state. It has
//     no attention weights, hence no attention dropout, and no ALiBi. With Dynamic NTK a
//     key enters the sums rotated with its own step's frequencies (not re-rotated later).
//   block_sparse (BigBird, Zaheer et al. 2020, without its random blocks): positions in
//     blocks of `block`; a query sees its own block and the one on each side (the one
//     before, in the decoder) and the first `global` positions, which (in the encoder)
//     see every key; nn/block_sparse_attention.h. Decoding keeps the global keys and the
//     last two blocks. No ALiBi.
//   infini (Infini-attention, Munkhdalai et al. 2024): softmax attention inside segments
//     of `segment` positions plus a compressive linear-attention memory of the earlier
//     segments (`delta_rule` update), mixed by a learned gate per head
//     (self_attn.gate); nn/infini_attention.h. Decoding keeps the memory and the keys of
//     the current segment.
struct AttentionPattern {
  std::string kind = "full";    // full | sliding_window | block_sparse | linear | infini
  int64_t window = 0;           // sliding_window: keys per side, >= 1
  int64_t block = 0;            // block_sparse: positions per block, >= 1
  int64_t global = 0;           // block_sparse: leading global positions, >= 0
  int64_t segment = 0;          // infini: positions per segment, >= 1
  bool delta_rule = true;       // infini: the delta-rule memory update (else plain linear)
  std::string layers = "both";  // encoder | decoder | both: the self-attentions it applies to
  // Whether the encoder's (or the decoder's) self-attention uses `kind`.
  bool applies(bool encoder) const {
    return kind != "full" && (layers == "both" || layers == (encoder ? "encoder" : "decoder"));
  }
  bool windowed(bool encoder) const { return kind == "sliding_window" && applies(encoder); }
  bool linear(bool encoder) const { return kind == "linear" && applies(encoder); }
  bool block_sparse(bool encoder) const { return kind == "block_sparse" && applies(encoder); }
  bool infini(bool encoder) const { return kind == "infini" && applies(encoder); }
  // "block_sparse block 64 global 4 (both)": the kind, its sizes and the layers.
  std::string describe() const;
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
