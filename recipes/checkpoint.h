// HDF5 checkpoints in DESIGN.md's layout ("Checkpoints"), readable with h5ls/h5dump/h5py:
//
//   / (attrs)        format = "loom-checkpoint", format_version = 1, step, epoch,
//                    tokens_seen, loom_version, created, config (resolved TOML text)
//   /model/<name>    one float32 dataset per parameter, state_dict names
//   /tokenizer/model the SentencePiece model bytes (uint8)
//
// Saving is atomic: the file is written under a temporary name in the same folder,
// closed, read back and checked, then renamed over the destination, so a crash or a full
// disk never damages an existing checkpoint. (Optimizer state, RNG streams, the loader's
// position and checksums are issue 6.)
#pragma once

#include <string>

#include "autograd/named_tensor.h"
#include "nn/config.h"

namespace loom::recipes {

constexpr int64_t kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  int64_t step = 0, epoch = 0, tokens_seen = 0;
  std::string config_toml;  // the full resolved recipe
};

void save_checkpoint(const std::string& path, const ag::NamedTensors& model_state,
                     const std::string& tokenizer_bytes, const CheckpointMeta& meta);

struct Checkpoint {
  CheckpointMeta meta;
  nn::ModelConfig model_config;  // parsed from meta.config_toml's [model]
  ag::NamedTensors model_state;
  std::string tokenizer_bytes;
};

// Reads and checks a checkpoint; every problem names the file and the object.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace loom::recipes
