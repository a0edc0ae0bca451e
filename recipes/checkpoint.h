// HDF5 checkpoints in DESIGN.md's layout ("Checkpoints"), readable with h5ls/h5dump/h5py:
//
//   / (attrs)            format = "loom-checkpoint", format_version = 1, step, epoch,
//                        tokens_seen, loom_version, created, config (resolved TOML text),
//                        checksum = "crc32", world_size (ranks of the run that saved it;
//                        absent in older files, which were all written by one process)
//   /model/<name>        one float32 dataset per parameter, state_dict names
//   /tokenizer/model     the SentencePiece model bytes (uint8)
//   -- training state (absent in model-only files) --
//   /optim (attrs)       type = "adamw", lr (of the last update), params (states saved)
//   /optim/step/<name>   int64 scalar: updates applied to that parameter
//   /optim/exp_avg/<name>, /optim/exp_avg_sq/<name>   AdamW's m and v, float32
//   /rng/rank0/<stream>/{seed,offset}   every RNG stream (Philox key and counter)
//   /data/rank0/{seed,epoch,cursor}     the loader's exact position
//   /metrics/<name>      float64 scalars: best dev score, early-stopping counters, ...
//
// Every dataset carries an attribute `crc32`: zlib's CRC-32 of its row-major
// little-endian bytes (in Python: zlib.crc32(arr.tobytes())). Reading a dataset checks
// it, so a flipped byte is reported with the file and the dataset's path; a dataset
// without one is an error (the file was not written by loom, or was edited).
//
// Saving is atomic: the file is written under a temporary name in the same folder,
// closed and fsync'ed, every dataset is read back and checked one at a time, then it is
// renamed over the destination; a crash, kill -9 or full disk at any point leaves
// existing checkpoints untouched. Tensors are written straight from their memory, so a
// save holds no copy of the parameters beyond HDF5's own buffers and, while verifying,
// one dataset.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/named_tensor.h"
#include "data/batcher.h"
#include "nn/config.h"
#include "recipes/crc32.h"

namespace loom::recipes {

constexpr int64_t kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  int64_t step = 0, epoch = 0, tokens_seen = 0;
  int64_t world_size = 1;   // data-parallel ranks: the loader position depends on it
  std::string config_toml;  // the full resolved recipe
  // Filled when reading (written from the build and the clock when saving).
  int64_t format_version = kCheckpointFormatVersion;
  std::string loom_version, created;
};

// AdamW's state of one parameter (optim::AdamW::State, by name).
struct ParamOptimState {
  std::string name;
  int64_t step = 0;
  ag::Tensor exp_avg, exp_avg_sq;
};

// A Philox stream (kernels::Generator): key and counters consumed.
struct RngStream {
  std::string name;  // "dropout"
  uint64_t seed = 0, offset = 0;
};

// Everything beyond the weights that an exact resume needs.
struct TrainingState {
  std::string optimizer = "adamw";
  double lr = 0;  // the learning rate of the last update
  std::vector<ParamOptimState> params;
  std::vector<RngStream> rng;   // rank 0's streams
  data::BatcherState loader;    // rank 0's position
  std::vector<std::pair<std::string, double>> metrics;  // name -> value

  double metric(const std::string& name) const;  // an error naming a missing one
};

struct Checkpoint {
  CheckpointMeta meta;
  nn::ModelConfig model_config;  // parsed from meta.config_toml's [model] (when loading)
  ag::NamedTensors model_state;
  std::string tokenizer_bytes;
  std::optional<TrainingState> training;  // absent: weights only
};

// Writes `c` atomically to `path` (model_config is not written: config_toml has it).
void save_checkpoint(const std::string& path, const Checkpoint& c);
// A weights-only checkpoint.
void save_checkpoint(const std::string& path, const ag::NamedTensors& model_state,
                     const std::string& tokenizer_bytes, const CheckpointMeta& meta);

enum class LoadParts { Model, Everything };
// Reads and checks a checkpoint (checksums of what it reads included); every problem
// names the file and the object. Everything: also the training state, which must be
// present and consistent (every parameter with a step has both moments, and so on).
Checkpoint load_checkpoint(const std::string& path, LoadParts parts = LoadParts::Model);

// One line per problem found by reading every dataset and checking its checksum and
// the root attributes; empty when the file is sound.
std::vector<std::string> verify_checkpoint(const std::string& path);


}  // namespace loom::recipes
