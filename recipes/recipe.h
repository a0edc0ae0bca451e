// A training recipe: the TOML file `loom train RECIPE` reads (DESIGN.md "CLI and
// recipes"), with [model], [data], [optim], [train] and [device] sections. Every key has a
// default here; unknown keys and wrong types are errors naming the file, the key and the
// nearest valid key. `--set section.key=value` overrides are applied to the TOML tree
// before reading, so they obey the same rules.
#pragma once

#include <string>
#include <vector>

#include "kernels/device.h"
#include "nn/config.h"

namespace loom::recipes {

// Each split is [source_file, target_file]; a language model (model.arch = "decoder")
// may name one text file, read as both.
struct DataConfig {
  std::vector<std::string> train = {"data/bible/train.en", "data/bible/train.es"};
  std::vector<std::string> dev = {"data/bible/dev.en", "data/bible/dev.es"};
  std::vector<std::string> test = {"data/bible/test.en", "data/bible/test.es"};
  std::string tokenizer = "data/bible/spm.model";
  int64_t max_tokens = 4000;  // padded tokens per batch (max(src, tgt) length x sentences)
};

struct OptimConfig {
  double lr = 5e-4;
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-9;
  double weight_decay = 0.01;
  bool decay_embeddings = false;
  std::string schedule = "inverse_sqrt";  // inverse_sqrt | cosine | constant
  int64_t warmup = 1000;
  double min_lr = 0.0;  // cosine floor
  double clip_norm = 1.0;  // 0 disables clipping
  int64_t accumulate = 1;  // micro-batches per update
};

struct TrainConfig {
  uint64_t seed = 1;
  int64_t max_steps = 20000;  // updates
  double max_minutes = 0;     // 0: no time limit
  int64_t log_every = 50;
  int64_t eval_every = 1000;
  int64_t eval_sentences = 300;  // dev sentences decoded for BLEU at each evaluation
  int64_t samples = 3;           // sample translations printed at each evaluation
  int64_t patience = 0;          // evaluations without dev-BLEU improvement; 0: never stop early
  int64_t beam = 4;
  int64_t threads = 0;           // 0: OpenMP's default (OMP_NUM_THREADS or all cores)
  int64_t max_bad_steps = 5;     // non-finite losses in a row before stopping
  int64_t save_every = 0;        // checkpoint cadence in updates; 0: at each evaluation
  int64_t keep_last = 3;         // step-N.h5 files kept (last.h5 and best.h5 are links)
  std::string init_from;         // a checkpoint whose weights start a new run (fine-tuning)
  // "f32"; on cuda also "tf32" (float32 GEMMs on TF32 tensor cores) or "bf16" (linear
  // layers' GEMMs with bfloat16 operands and float32 results, as torch.autocast; weights,
  // optimizer, norms, attention and the loss stay float32). See autograd/autocast.h.
  std::string precision = "f32";
};

struct DeviceConfig {
  std::string type = "cpu";  // "cpu", "cuda" (cuda:0) or "cuda:N"
  kernels::Device device() const;  // the spelling checked
  kernels::Device open() const;    // also checked to exist on this machine (run start)
};

struct Recipe {
  std::string source;  // the file it came from, for messages
  nn::ModelConfig model;
  DataConfig data;
  OptimConfig optim;
  TrainConfig train;
  DeviceConfig device;
  std::string resolved_toml;  // the full resolved config, saved in checkpoints
};

// Reads and validates a recipe file; `overrides` are "section.key=value" strings whose
// value is TOML (numbers, true/false, "strings", [arrays]; a bare word is taken as a
// string).
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});
Recipe parse_recipe(std::string_view text, const std::string& source,
                    const std::vector<std::string>& overrides = {});

}  // namespace loom::recipes
